// A throwaway test CA made with openssl at test time (no key material is
// committed): `openssl ca` takes explicit start and end dates, so a test can
// have certificates that are valid, not yet valid, expired or for another host.
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

export interface TestCa {
  readonly dir: string;
  readonly certPem: string;
  issue(opts: { dns: readonly string[]; notBefore: number; notAfter: number; name?: string }): Issued;
  /** An intermediate CA signed by this one (its own issue() signs leaves). */
  intermediate(name: string): TestCa;
  remove(): void;
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
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::LK_SAN
`;

function openssl(args: readonly string[], env: Record<string, string> = {}): void {
  execFileSync('openssl', [...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LK_SAN: 'DNS:unused.invalid', ...env } });
}

function caIn(dir: string, certPem: string, keyFile: string, certFile: string): TestCa {
  let n = 0;
  const self: TestCa = {
    dir,
    certPem,
    issue({ dns, notBefore, notAfter, name }) {
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
          '-extensions',
          'v3_leaf',
          '-startdate',
          asn1Time(notBefore),
          '-enddate',
          asn1Time(notAfter),
        ],
        { LK_SAN: dns.map((d) => `DNS:${d}`).join(',') },
      );
      return { certPem: readFileSync(`${base}.pem`, 'utf8'), keyPem: readFileSync(`${base}.key`, 'utf8') };
    },
    intermediate(name) {
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
        '-extensions',
        'v3_ca',
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
export function makeTestCa(name = 'leakless test CA'): TestCa {
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
    '-extensions',
    'v3_ca',
    '-startdate',
    asn1Time(now - 3650 * DAY),
    '-enddate',
    asn1Time(now + 3650 * DAY),
  ]);
  return caIn(dir, readFileSync(join(dir, 'ca.pem'), 'utf8'), join(dir, 'ca.key'), join(dir, 'ca.pem'));
}

export const DAYS = DAY;
