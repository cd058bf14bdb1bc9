// Release checksums and their OpenPGP signature, the way Debian and Tails
// publish images: SHA512SUMS lists the release files ("<sha512>  <name>",
// sha512sum's format, so `sha512sum -c` works too) and SHA512SUMS.sign is a
// detached, ASCII-armoured signature by the release engineer's key. The
// verifier trusts a key only from a keyring the user passes (gpgv, no
// web of trust, no network): the signature proves who published the sums,
// the sums prove the bytes.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';

export const SUMS_NAME = 'SHA512SUMS';
export const SIGNATURE_NAME = 'SHA512SUMS.sign';

export class ReleaseSignError extends Error {
  override readonly name = 'ReleaseSignError';
}

export async function sha512File(path: string): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** SHA512SUMS text for files in one directory (sorted by name). */
export async function sha512Sums(dir: string, names: readonly string[]): Promise<string> {
  const lines: string[] = [];
  for (const n of [...names].sort()) {
    if (n.includes('/') || /\s/.test(n)) throw new ReleaseSignError(`${n}: a release file name must be a plain name without spaces`);
    lines.push(`${await sha512File(join(dir, n))}  ${n}`);
  }
  return lines.join('\n') + '\n';
}

export function parseSums(text: string): { name: string; sha512: string }[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = /^([0-9a-f]{128}) [ *](\S+)$/.exec(l);
      if (!m) throw new ReleaseSignError(`${SUMS_NAME}: not a sha512sum line: ${JSON.stringify(l.slice(0, 80))}`);
      return { sha512: m[1]!, name: m[2]! };
    });
}

export interface SignOptions {
  /** The signing key (fingerprint, key id or user id) in the release engineer's keyring. */
  readonly key: string;
  /** GnuPG home holding the key; default gpg's own ($GNUPGHOME or ~/.gnupg). */
  readonly gnupgHome?: string;
}

/** Write SHA512SUMS over `names` in `dir` and its detached signature. */
export async function signRelease(dir: string, names: readonly string[], o: SignOptions): Promise<{ sums: string; signature: string }> {
  const sums = join(dir, SUMS_NAME);
  const signature = join(dir, SIGNATURE_NAME);
  await writeFile(sums, await sha512Sums(dir, names));
  const r = await execa(
    'gpg',
    ['--batch', '--yes', '--no-tty', '--armor', '--local-user', o.key, '--digest-algo', 'SHA512', '--output', signature, '--detach-sign', sums],
    { reject: false, all: true, ...(o.gnupgHome ? { env: { GNUPGHOME: o.gnupgHome } } : {}) },
  );
  if (r.exitCode !== 0) throw new ReleaseSignError(`gpg could not sign with ${o.key}: ${(r.all ?? '').trim().split('\n').slice(-2).join(' ')}`);
  return { sums, signature };
}

export interface VerifyResult {
  readonly ok: boolean;
  /** One line per check: the signature, then each file. */
  readonly checks: readonly { readonly what: string; readonly ok: boolean; readonly detail: string }[];
}

/**
 * Check the signature of SHA512SUMS next to `iso` against `keyring` (an
 * exported public key, binary or armoured) and the sha512 of every file it
 * lists that is present; the ISO itself must be listed.
 */
export async function verifyRelease(iso: string, keyring: string): Promise<VerifyResult> {
  const dir = dirname(iso);
  const sums = join(dir, SUMS_NAME);
  const signature = join(dir, SIGNATURE_NAME);
  for (const [p, what] of [
    [sums, SUMS_NAME],
    [signature, SIGNATURE_NAME],
    [keyring, 'the keyring'],
  ] as const)
    if (!existsSync(p)) throw new ReleaseSignError(`${what}: ${p} does not exist`);
  const checks: { what: string; ok: boolean; detail: string }[] = [];
  // gpgv wants a keyring in keybox/binary form: dearmour an armoured export into a scratch copy
  const scratch = await mkdtemp(join(tmpdir(), 'leakless-verify-'));
  try {
    const keys = join(scratch, 'keyring.gpg');
    const raw = await readFile(keyring);
    if (raw.toString('latin1', 0, 40).includes('-----BEGIN PGP')) {
      const d = await execa('gpg', ['--batch', '--no-tty', '--dearmor', '--output', keys, keyring], { reject: false, all: true, env: { GNUPGHOME: scratch } });
      if (d.exitCode !== 0) throw new ReleaseSignError(`the keyring: ${keyring} is not an OpenPGP key (${(d.all ?? '').trim()})`);
    } else await writeFile(keys, raw);
    const v = await execa('gpgv', ['--keyring', keys, signature, sums], { reject: false, all: true });
    const good = v.exitCode === 0 && /Good signature/.test(v.all ?? '');
    const who = /Good signature from "([^"]*)"/.exec(v.all ?? '')?.[1];
    checks.push({
      what: SIGNATURE_NAME,
      ok: good,
      detail: good ? `good signature${who ? ` from ${who}` : ''}` : `bad or unknown signature: ${(v.all ?? '').trim().split('\n').slice(-1)[0]}`,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const listed = parseSums(await readFile(sums, 'utf8'));
  if (!listed.some((x) => x.name === basename(iso))) checks.push({ what: basename(iso), ok: false, detail: `not listed in ${SUMS_NAME}` });
  for (const x of listed) {
    const p = join(dir, x.name);
    if (!existsSync(p)) {
      if (x.name === basename(iso)) checks.push({ what: x.name, ok: false, detail: 'missing' });
      continue;
    }
    const got = await sha512File(p);
    checks.push({
      what: x.name,
      ok: got === x.sha512,
      detail: got === x.sha512 ? 'sha512 matches' : `sha512 ${got.slice(0, 16)}…, ${SUMS_NAME} says ${x.sha512.slice(0, 16)}…`,
    });
  }
  return { ok: checks.every((c) => c.ok), checks };
}
