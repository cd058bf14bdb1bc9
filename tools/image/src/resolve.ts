// What the base's package set resolves to on the mirror right now: every
// package apt would install into an empty system (the essential and
// required set mmdebstrap's minbase installs, plus the image's packages,
// without Recommends), with its version. It goes into the base's cache key,
// so a mirror that moved on (a security update of one library) is a new key
// and never hidden by a cache hit. apt runs with its own state directory
// and an empty dpkg status; the host's apt state is never touched.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { AptSources } from './sources.js';
import type { PackageId } from './saved-repo.js';

export class ResolveError extends Error {
  override readonly name = 'ResolveError';
}

/** The `Inst` lines of `apt-get -s install`: name, version, architecture. */
export function parseSimulation(text: string): PackageId[] {
  const out: PackageId[] = [];
  for (const line of text.split('\n')) {
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([^\]]+)\]\)/.exec(line);
    if (m) out.push({ name: m[1]!, version: m[2]!, arch: m[3]! });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface ResolveOptions {
  readonly sources: AptSources;
  readonly packages: readonly string[];
  /** apt's scratch state (lists kept between builds: apt update is then incremental). */
  readonly stateDir: string;
  readonly arch?: string;
}

export async function resolvePackages(o: ResolveOptions): Promise<PackageId[]> {
  const d = o.stateDir;
  for (const sub of ['lists/partial', 'cache/archives/partial', 'etc/parts', 'etc/apt.conf.d', 'etc/preferences.d'])
    await mkdir(join(d, sub), { recursive: true });
  await writeFile(join(d, 'status'), '');
  await writeFile(join(d, 'etc', 'parts', o.sources.name), o.sources.content);
  const opts = [
    `Dir::Etc=${join(d, 'etc')}`,
    'Dir::Etc::SourceList=/dev/null',
    `Dir::Etc::SourceParts=${join(d, 'etc', 'parts')}`,
    `Dir::State::Lists=${join(d, 'lists')}`,
    `Dir::State::status=${join(d, 'status')}`,
    `Dir::Cache=${join(d, 'cache')}`,
    'Dir::Etc::Trusted=/etc/apt/trusted.gpg',
    'Dir::Etc::TrustedParts=/etc/apt/trusted.gpg.d',
    `APT::Architecture=${o.arch ?? 'amd64'}`,
    // apt's _apt download sandbox cannot write this private state directory (a file: repository failed there)
    'APT::Sandbox::User=root',
    'Debug::NoLocking=1',
  ].flatMap((x) => ['-o', x]);
  const update = await execa('apt-get', [...opts, 'update'], { reject: false, all: true, env: { LC_ALL: 'C' } });
  if (update.exitCode !== 0 || /^(E|W): /m.test(update.all ?? ''))
    throw new ResolveError(`resolving the package set: apt-get update failed: ${(update.all ?? '').trim().split('\n').slice(-2).join(' | ')}`);
  const sim = await execa('apt-get', [...opts, '-s', 'install', '--no-install-recommends', '?essential', '?priority(required)', 'apt', ...o.packages], {
    reject: false,
    all: true,
    env: { LC_ALL: 'C' },
  });
  if (sim.exitCode !== 0) throw new ResolveError(`resolving the package set: ${(sim.all ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  const out = parseSimulation(sim.stdout);
  if (out.length === 0) throw new ResolveError('resolving the package set: apt would install nothing');
  return out;
}
