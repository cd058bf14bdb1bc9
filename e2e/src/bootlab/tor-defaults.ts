// Where the image's tor goes when nobody points it elsewhere: the directory
// authorities and fallback directories compiled into its binary. Read from
// the image itself (the ISO's base squashfs), so the boot without test
// settings is judged against the tor that really ran, not the host's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { must } from '../lab/index.js';
import type { Endpoint } from './classify.js';

/**
 * The endpoints in tor's compiled-in strings: an authority line
 * ("moria1 orport=9201 v3ident=… 128.31.0.39:9231 …", its ORPort and its
 * DirPort: the client may use either) or a fallback directory line
 * ("176.65.134.37 orport=443 id=… ipv6=[…]:443", tor 0.4.8's form without a
 * DirPort; older ones had "ADDRESS:DIRPORT orport=…").
 */
export function compiledEndpoints(binary: Buffer): Endpoint[] {
  const text = binary.toString('latin1');
  const out = new Map<string, Endpoint>();
  const add = (address: string, port: number) => out.set(`${address}:${port}`, { address, port });
  for (const m of text.matchAll(/[\x20-\x7e]{20,}/g)) {
    const s = m[0];
    const orport = /\borport=(\d{1,5})\b/.exec(s);
    if (!orport) continue;
    // the first IPv4 address, with its port if it has one (the IPv6 "ipv6=[…]:PORT" is never taken for it)
    const addr = /(?:^|[\s"])(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?(?=[\s"]|$)/.exec(s);
    if (!addr) continue;
    add(addr[1]!, Number(orport[1]));
    if (addr[2]) add(addr[1]!, Number(addr[2]));
  }
  return [...out.values()];
}

/**
 * tor's compiled-in directory endpoints, from the ISO's base squashfs. Read
 * with xorriso, not a loop mount: the kernel the suite runs on may have no
 * iso9660 driver (mount then fails with "unknown filesystem type").
 */
export async function imageTorDefaults(iso: string): Promise<Endpoint[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lk-iso-'));
  try {
    const squashfs = join(dir, 'filesystem.squashfs');
    await must('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/live/filesystem.squashfs', squashfs], { timeoutMs: 120_000 });
    const r = await must('sh', ['-c', 'unsquashfs -cat "$1" usr/bin/tor | base64 -w0', 'sh', squashfs], { timeoutMs: 120_000 });
    const eps = compiledEndpoints(Buffer.from(r.stdout, 'base64'));
    if (eps.length < 10) throw new Error(`only ${eps.length} directory endpoints found in the image's tor`);
    return eps;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
