// The saved-repository rebuild, on the run's shared ISO: every .deb it was
// built from is saved as a local repository, and `leakless rebuild` makes the
// same ISO from it in the recorded build environment (a chroot of the saved
// tools, loopback-only namespace), with the host side varied and the host's
// own build tools made unusable (docs/design.md#reproducibility). The rebuild
// is the run's third cold build, beside the shared one and the varied second
// builder.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ISO_NAME } from '@leakless/image';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { diffoscope } from './diffoscope.js';
import { cache, cli, installHint, leakless, printFigures, repo, sharedIso, work } from './shared.js';

const skip = skipUnless(
  'the saved-repository rebuild',
  needRoot('it builds, mounts, makes namespaces and chroots'),
  needTool('debos', ['--help'], installHint),
  needTool('mmdebstrap', ['--version'], installHint),
);
const rel = join(work, 'rebuild');
const s = (ms: number) => `${(ms / 1000).toFixed(0)} s`;
const figures: Record<string, string> = {};

describe.skipIf(skip).sequential('release engineering: the saved-repository rebuild', () => {
  it('saves every .deb of the image and of the build tools, and leakless rebuild gives the same sha256 in the recorded build environment', async () => {
    const shared = await sharedIso();
    const saved = join(rel, 'repo');
    const pub = join(rel, 'published');
    // the published build: the shared ISO's base from the cache, its .debs and the build tools saved
    const p = await leakless(['iso', '--out', pub, '--cache', cache, '--work', join(work, 'work'), '--save-repo', saved, '--no-install', '--json']);
    expect(p.exitCode).toBe(0);
    const manifest = JSON.parse(readFileSync(join(pub, 'leakless-amd64.manifest.json'), 'utf8')) as Record<string, any>;
    expect(manifest.iso.sha256).toBe(shared.manifest.iso.sha256);
    expect(manifest.packages.every((x: { sha256: string }) => /^[0-9a-f]{64}$/.test(x.sha256))).toBe(true);
    const du = Number((await execa('du', ['-sb', saved])).stdout.split('\t')[0]);
    figures['saved repository'] =
      `${(du / 1e6).toFixed(0)} MB (${manifest.packages.length} image packages, ${manifest.buildEnv.packages.length} build-environment packages, ${manifest.buildEnv.substituted.length} supporting packages at the mirror's newer version)`;

    // the rebuilder: another directory, umask, time zone, locale and host name, and this
    // host's own build tools unusable (the recorded ones in the chroot must be used)
    const shims = join(rel, 'no-host-tools');
    mkdirSync(shims, { recursive: true });
    for (const tool of ['debos', 'mksquashfs', 'grub-mkimage', 'mkfs.msdos']) {
      writeFileSync(join(shims, tool), `#!/bin/sh\necho "the rebuild ran this host's ${tool}" >&2\nexit 97\n`);
      chmodSync(join(shims, tool), 0o755);
    }
    const other = join('/var/tmp', `leakless-rebuilder-${process.pid}`);
    rmSync(other, { recursive: true, force: true });
    mkdirSync(other, { recursive: true });
    onTestFinished(() => rmSync(other, { recursive: true, force: true }));
    const t = Date.now();
    const r = await execa(
      'unshare',
      [
        '--uts',
        'sh',
        '-c',
        'hostname rebuilder-elsewhere && umask 027 && exec "$@"',
        'sh',
        process.execPath,
        cli,
        'rebuild',
        join(pub, 'leakless-amd64.manifest.json'),
        '--repo',
        saved,
        '--out',
        join(other, 'out'),
        '--cache',
        join(other, 'cache'),
        '--work',
        join(other, 'work'),
        '--no-install',
        '--json',
      ],
      {
        cwd: repo,
        reject: false,
        stderr: 'inherit',
        env: { PATH: `${shims}:${process.env.PATH}`, TZ: 'Pacific/Chatham', LANG: 'de_DE.UTF-8', LC_ALL: '', LANGUAGE: 'de' },
      },
    );
    figures['saved-repo rebuild (chroot of the saved tools, loopback-only namespace)'] =
      `${s(Date.now() - t)} (cold build of the shared ISO: ${s(shared.buildMs)})`;
    const out = JSON.parse(r.stdout || '{}') as { ok?: boolean; sha256?: string; expected?: string };
    if (out.sha256 && out.sha256 !== out.expected) await diffoscope(shared.iso, join(other, 'out', ISO_NAME), join(rel, 'diffoscope-rebuild.txt'));
    expect(out.expected).toBe(shared.manifest.iso.sha256);
    expect(out.sha256).toBe(out.expected);
    expect(r.exitCode).toBe(0);
    const rebuilt = JSON.parse(readFileSync(join(other, 'out', 'leakless-amd64.manifest.json'), 'utf8')) as Record<string, any>;
    expect(rebuilt.buildEnv.rebuilt).toBe(true);
    expect(rebuilt.tools).toEqual(manifest.tools);
    printFigures('rebuild figures', figures);
  });
});
