#!/usr/bin/env node
// The npm registry reachable from these machines lacks some other-platform
// binaries (e.g. @nx/nx-darwin-arm64), so `npm install` writes a lockfile
// without their entries and `npm ci` then refuses it as out of sync. This adds
// the missing optional platform packages as lock entries with their os/cpu, so
// npm ci skips them on Linux exactly as it would with a complete lockfile.
// Run after any dependency change: `npm install && node tools/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const OS = ['darwin', 'freebsd', 'openbsd', 'netbsd', 'sunos', 'aix', 'android', 'openharmony', 'win32', 'windows', 'linux'];
const CPU = [
  ['arm64'],
  ['aarch64', 'arm64'],
  ['x64'],
  ['64', 'x64'],
  ['ia32'],
  ['ppc64'],
  ['s390x'],
  ['riscv64'],
  ['loong64'],
  ['mips64el'],
  ['arm', 'arm'],
  ['gnueabihf', 'arm'],
];

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = OS.find((o) => parts.includes(o));
  const cpu = CPU.find(([token]) => parts.includes(token))?.[1] ?? CPU.find(([token]) => parts.includes(token))?.[0];
  if (!os || !cpu) return undefined;
  const libc = parts.includes('musl') ? 'musl' : os === 'linux' && parts.some((p) => p.startsWith('gnu')) ? 'glibc' : undefined;
  return { os: os === 'windows' ? 'win32' : os, cpu, libc };
}

const added = [];
for (const pkg of Object.values(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key]) continue;
    const p = platformOf(dep);
    if (!p) continue;
    lock.packages[key] = { version, cpu: [p.cpu], optional: true, os: [p.os], ...(p.libc ? { libc: [p.libc] } : {}) };
    added.push(`${dep}@${version}`);
  }
}
const byKey = ([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0);
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(byKey));
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(added.length ? `complete-lockfile: added ${added.join(', ')}` : 'complete-lockfile: nothing missing');
