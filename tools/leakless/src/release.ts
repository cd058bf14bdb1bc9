// `leakless rebuild` and `leakless verify`: the two commands someone who did
// not build a release runs. rebuild is the independent rebuilder's contract
// (a checkout at the manifest's git revision + the manifest + its saved
// repository in, the ISO's sha256 out, exit 0 only when it matches); verify
// checks a downloaded ISO against SHA512SUMS and the release engineer's
// OpenPGP signature.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { buildIso, IsoBuildError, ReleaseSignError, verifyRelease, type VerifyResult } from '@leakless/image';
import { parseArgs, UsageError } from './args.js';
import { buildSource, installDeps, loadAssembly, requireRoot, type CommandIo } from './iso.js';
import { table } from './table.js';

export const REBUILD_HELP = `usage: leakless rebuild MANIFEST [--repo DIR] [--out DIR] [--cache DIR] [--work DIR] [--no-install] [--json]

Rebuilds the ISO a manifest describes, from its saved repository (leakless iso
--save-repo), in the recorded build environment (a chroot of the saved build
tools, in a network namespace with loopback only), and compares the sha256.
Run it from a checkout of the manifest's git revision; the policy file is the
one the manifest names (its sha256 must match).

  --repo DIR     the saved repository; default the manifest's directory
  --out DIR      where the rebuilt ISO goes; default dist/rebuild
  --cache DIR    scratch cache (the base is always rebuilt); default dist/rebuild/cache
  --json         print {ok, expected, sha256, ms} as JSON

exit codes: 0 the rebuilt ISO has the manifest's sha256, 1 it differs or the
rebuild failed, 2 bad input (no such manifest or repository, another revision)`;

export const VERIFY_HELP = `usage: leakless verify ISO --keyring FILE [--json]

Checks the OpenPGP signature of SHA512SUMS next to ISO (SHA512SUMS.sign) with
the release engineer's public key in FILE (gpgv: that key and no other), then
the sha512 of the ISO and of every other listed file present.

exit codes: 0 signature good and every sha512 matches, 1 verification failed, 2 bad input`;

interface RecordedManifest {
  readonly iso: { readonly sha256: string };
  readonly source?: { readonly revision: string; readonly dirty: boolean; readonly config: { readonly path: string; readonly sha256: string } };
}

export async function rebuildCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { repo: 'string', out: 'string', cache: 'string', work: 'string', 'no-install': 'boolean', json: 'boolean' });
  if (positionals.length !== 1) throw new UsageError('rebuild takes one argument, the manifest (leakless rebuild MANIFEST)');
  const manifestPath = resolve(positionals[0]!);
  if (!existsSync(manifestPath)) throw new UsageError(`MANIFEST: ${manifestPath} does not exist`);
  let m: RecordedManifest;
  try {
    m = JSON.parse(readFileSync(manifestPath, 'utf8')) as RecordedManifest;
  } catch {
    throw new UsageError(`MANIFEST: ${manifestPath} is not JSON`);
  }
  if (!/^[0-9a-f]{64}$/.test(m.iso?.sha256 ?? '')) throw new UsageError(`MANIFEST: ${manifestPath} records no ISO sha256`);
  if (!m.source) throw new UsageError(`MANIFEST: ${manifestPath} records no git revision (built outside a git checkout)`);
  const repo = resolve((flags.repo as string | undefined) ?? dirname(manifestPath));
  if (!existsSync(join(repo, 'image', 'Packages'))) throw new UsageError(`--repo: ${repo} is not a saved repository (leakless iso --save-repo makes one)`);
  const notRoot = requireRoot('leakless rebuild');
  if (notRoot) {
    io.err(`leakless: ${notRoot}`);
    return 2;
  }
  const top = await execa('git', ['rev-parse', '--show-toplevel'], { reject: false });
  if (top.exitCode !== 0) throw new UsageError(`MANIFEST: built from revision ${m.source.revision}; run leakless rebuild from a checkout of it`);
  const config = join(top.stdout.trim(), m.source.config.path);
  if (!existsSync(config)) throw new UsageError(`MANIFEST: the policy file ${m.source.config.path} is not in this checkout`);
  const ours = await buildSource(config);
  if (ours?.revision !== m.source.revision)
    throw new UsageError(
      `MANIFEST: built from revision ${m.source.revision}; this checkout is at ${ours?.revision ?? 'no revision'} (git checkout ${m.source.revision})`,
    );
  if (ours.config.sha256 !== m.source.config.sha256)
    throw new UsageError(
      `MANIFEST: the policy file ${m.source.config.path} has sha256 ${ours.config.sha256} here, the manifest records ${m.source.config.sha256}`,
    );
  const assembly = await loadAssembly(config, io);
  if (!assembly) return 2;
  if (!flags['no-install'] && !(await installDeps('e2e', io))) return 1;
  const out = resolve((flags.out as string | undefined) ?? join('dist', 'rebuild'));
  const started = Date.now();
  try {
    const r = await buildIso(assembly, {
      outDir: out,
      cacheDir: resolve((flags.cache as string | undefined) ?? join(out, 'cache')),
      workRoot: resolve((flags.work as string | undefined) ?? join(out, 'work')),
      fromRepo: repo,
      source: ours,
    });
    const ok = r.manifest.iso.sha256 === m.iso.sha256;
    const ms = Date.now() - started;
    if (flags.json) io.out(JSON.stringify({ ok, expected: m.iso.sha256, sha256: r.manifest.iso.sha256, iso: r.iso, ms }, null, 2));
    else {
      io.out(r.manifest.iso.sha256);
      io.err(
        ok
          ? `leakless rebuild: the same ISO, bit for bit (${r.iso})`
          : `leakless rebuild: DIFFERENT: the manifest records ${m.iso.sha256}, the rebuild gave ${r.manifest.iso.sha256} (${r.iso})`,
      );
    }
    return ok ? 0 : 1;
  } catch (e) {
    if (e instanceof IsoBuildError) {
      io.err(`leakless rebuild: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

export async function verifyCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { keyring: 'string', json: 'boolean' });
  if (positionals.length !== 1) throw new UsageError('verify takes one argument, the ISO (leakless verify ISO --keyring FILE)');
  if (typeof flags.keyring !== 'string') throw new UsageError('--keyring: the release public key is required (leakless verify ISO --keyring FILE)');
  const iso = resolve(positionals[0]!);
  if (!existsSync(iso)) throw new UsageError(`ISO: ${iso} does not exist`);
  let r: VerifyResult;
  try {
    r = await verifyRelease(iso, resolve(flags.keyring));
  } catch (e) {
    if (e instanceof ReleaseSignError) throw new UsageError(e.message);
    throw e;
  }
  if (flags.json) io.out(JSON.stringify(r, null, 2));
  else {
    io.out(
      table(
        ['file', 'check', ''],
        r.checks.map((c) => [c.what, c.detail, c.ok ? 'ok' : 'FAILED']),
      ),
    );
    io.out(r.ok ? '\nverified' : '\nVERIFICATION FAILED');
  }
  return r.ok ? 0 : 1;
}
