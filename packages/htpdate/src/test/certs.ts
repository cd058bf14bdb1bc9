// A throwaway test CA made with openssl at test time (no key material is
// committed): `openssl ca` takes explicit start and end dates, so a test can
// have certificates that are valid, not yet valid, expired or for another host,
// and any X.509 v3 extension can be replaced (`ext`) to craft a chain a
// verifier must refuse (a sub-CA for e-mail only, a path length exceeded).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DAY = 86_400_000;

function asn1Time(ms: number): string {
  // GeneralizedTime YYYYMMDDHHMMSSZ
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Extension lines replacing the defaults (openssl x509v3_config syntax, e.g.
 * `{ extendedKeyUsage: 'emailProtection' }`); null drops the extension.
 */
export type ExtOverrides = Readonly<Record<string, string | null>>;

export interface TestCa {
  readonly dir: string;
  readonly certPem: string;
  issue(opts: { dns: readonly string[]; notBefore: number; notAfter: number; name?: string; ext?: ExtOverrides }): Issued;
  /** An intermediate CA signed by this one (its own issue() signs leaves). */
  intermediate(name: string, ext?: ExtOverrides): TestCa;
  remove(): void;
}

const CA_EXT: ExtOverrides = {
  basicConstraints: 'critical,CA:TRUE',
  keyUsage: 'critical,keyCertSign,cRLSign',
  subjectKeyIdentifier: 'hash',
  authorityKeyIdentifier: 'keyid',
};
const LEAF_EXT: ExtOverrides = {
  basicConstraints: 'critical,CA:FALSE',
  keyUsage: 'critical,digitalSignature',
  extendedKeyUsage: 'serverAuth',
  subjectKeyIdentifier: 'hash',
  authorityKeyIdentifier: 'keyid',
  subjectAltName: '$ENV::LK_SAN',
};

/** An -extfile holding one section `ext`: the defaults with the overrides applied. */
function extFile(dir: string, file: string, base: ExtOverrides, over: ExtOverrides = {}): string {
  const lines = Object.entries({ ...base, ...over })
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([k, v]) => `${k} = ${v}\n`);
  const path = join(dir, file);
  writeFileSync(path, `[ ext ]\n${lines.join('')}`);
  return path;
}

const CNF = (dir: string): string => `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
`;

function openssl(args: readonly string[], env: Record<string, string> = {}): void {
  execFileSync('openssl', [...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LK_SAN: 'DNS:unused.invalid', ...env } });
}

function caIn(dir: string, certPem: string, keyFile: string, certFile: string): TestCa {
  let n = 0;
  const self: TestCa = {
    dir,
    certPem,
    issue({ dns, notBefore, notAfter, name, ext }) {
      const base = join(dir, `leaf${++n}`);
      openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
        '-subj',
        `/CN=${name ?? dns[0]}`,
      ]);
      openssl(
        [
          'ca',
          '-batch',
          '-notext',
          '-config',
          join(dir, 'ca.cnf'),
          '-cert',
          certFile,
          '-keyfile',
          keyFile,
          '-in',
          `${base}.csr`,
          '-out',
          `${base}.pem`,
          '-extfile',
          extFile(dir, `leaf${n}.ext`, LEAF_EXT, ext),
          '-extensions',
          'ext',
          '-startdate',
          asn1Time(notBefore),
          '-enddate',
          asn1Time(notAfter),
        ],
        { LK_SAN: dns.map((d) => `DNS:${d}`).join(',') },
      );
      return { certPem: readFileSync(`${base}.pem`, 'utf8'), keyPem: readFileSync(`${base}.key`, 'utf8') };
    },
    intermediate(name, ext) {
      const sub = join(dir, `sub-${name}`);
      prepare(sub);
      openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(sub, 'ca.key'),
        '-out',
        join(sub, 'ca.csr'),
        '-subj',
        `/CN=${name}`,
      ]);
      const now = Date.now();
      openssl([
        'ca',
        '-batch',
        '-notext',
        '-config',
        join(dir, 'ca.cnf'),
        '-cert',
        certFile,
        '-keyfile',
        keyFile,
        '-in',
        join(sub, 'ca.csr'),
        '-out',
        join(sub, 'ca.pem'),
        '-extfile',
        extFile(sub, 'ca.ext', CA_EXT, ext),
        '-extensions',
        'ext',
        '-startdate',
        asn1Time(now - 3650 * DAY),
        '-enddate',
        asn1Time(now + 3650 * DAY),
      ]);
      return caIn(sub, readFileSync(join(sub, 'ca.pem'), 'utf8'), join(sub, 'ca.key'), join(sub, 'ca.pem'));
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}

function prepare(dir: string): void {
  mkdirSync(join(dir, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, 'index.txt'), '');
  // openssl reads the serial as hex bytes: always an even number of digits (4 here).
  writeFileSync(join(dir, 'serial'), `${(0x1000 + Math.floor(Math.random() * 0xefff)).toString(16)}\n`);
  writeFileSync(join(dir, 'ca.cnf'), CNF(dir));
}

/** A self-signed root valid for ten years either side of now (so it covers every leaf a test makes). */
export function makeTestCa(name = 'leakless test CA', ext?: ExtOverrides): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'lk-testca-'));
  prepare(dir);
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.csr'),
    '-subj',
    `/CN=${name}`,
  ]);
  const now = Date.now();
  openssl([
    'ca',
    '-batch',
    '-notext',
    '-selfsign',
    '-config',
    join(dir, 'ca.cnf'),
    '-keyfile',
    join(dir, 'ca.key'),
    '-in',
    join(dir, 'ca.csr'),
    '-out',
    join(dir, 'ca.pem'),
    '-extfile',
    extFile(dir, 'ca.ext', CA_EXT, ext),
    '-extensions',
    'ext',
    '-startdate',
    asn1Time(now - 3650 * DAY),
    '-enddate',
    asn1Time(now + 3650 * DAY),
  ]);
  return caIn(dir, readFileSync(join(dir, 'ca.pem'), 'utf8'), join(dir, 'ca.key'), join(dir, 'ca.pem'));
}

export const DAYS = DAY;
