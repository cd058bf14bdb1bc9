// The committed fixture is what Debian's NetworkManager really sends: record
// it again now (record.sh: NetworkManager unpacked, never installed, run with a
// private D-Bus in a namespace pair of its own) and compare byte for byte,
// with the fixture and with the request the pre-Tor check builds.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectivityRequest, parsePlainHttpUrl } from '@leakless/htpdate';
import { skipUnless } from '@leakless/testing';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { labNeeds } from '../lab/index.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const skip = skipUnless('the NetworkManager recording (e2e/src/time/nm-record)', ...labNeeds('apt-get', 'dpkg', 'dbus-daemon'));

describe.skipIf(skip)('NetworkManager connectivity-check request', () => {
  it('recorded live from Debian NetworkManager equals the fixture and the pre-Tor request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-nmtest-'));
    try {
      const out = join(dir, 'request.bin');
      const r = await execa(here('./nm-record/record.sh'), [out], { reject: false, timeout: 240_000 });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const live = readFileSync(out);
      const fixture = readFileSync(here('../../../packages/htpdate/fixtures/nm-connectivity-request.bin'));
      expect(live.toString('latin1')).toBe(fixture.toString('latin1'));
      const url = /^url (\S+)$/m.exec(readFileSync(`${out}.source`, 'utf8'))![1]!;
      expect(connectivityRequest(parsePlainHttpUrl(url)!).equals(live)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
