// A clone in a directory other uids cannot traverse (`mktemp -d`, root's own
// 0700 home: where a newcomer clones by default) must run the lab like any
// other. Lab principals (the tor, htp and desktop uids) cannot read the
// checkout there, so whatever they run is staged in the lab's directory
// first. This test copies the lab's sources into a 0700 directory, loads the
// modules from the copy (so every helper path they compute points into it),
// and starts the principals' helpers the way the suites do: the SOCKS stand-in
// as the tor uid (which failed with "Cannot find module …/socks5-server.mjs")
// and the python probe runner as an unprivileged uid.
import { cpSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labNeeds } from './prereq.js';

const skip = skipUnless('a lab run from a clone other uids cannot traverse', ...labNeeds('nft', 'ss'));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const E2E_SRC = fileURLToPath(new URL('../', import.meta.url));

describe.skipIf(skip)('a clone in a directory other uids cannot traverse', () => {
  let clone = '';
  let repo = '';
  beforeAll(() => {
    clone = mkdtempSync(join(tmpdir(), 'lk-clone-')); // mode 0700, as mktemp -d makes it
    repo = join(clone, 'repo');
    cpSync(E2E_SRC, join(repo, 'e2e', 'src'), { recursive: true });
    // What root alone reads (dependencies, the workspace packages, the policy) may stay where it is.
    for (const d of ['node_modules', 'packages', 'image-config']) symlinkSync(join(ROOT, d), join(repo, d));
  });
  afterAll(() => {
    if (clone) rmSync(clone, { recursive: true, force: true });
  });

  it('the time lab starts its SOCKS stand-in as the tor uid, and the probe runner runs as another uid, from the copy', async () => {
    expect(statSync(clone).mode & 0o777).toBe(0o700);
    const lab = (await import(join(repo, 'e2e/src/lab/index.ts'))) as typeof import('./index.js');
    const time = (await import(join(repo, 'e2e/src/time/setup.ts'))) as typeof import('../time/setup.js');
    const inClone = fileURLToPath(time.SERVERS.socks5);
    expect(inClone.startsWith(`${repo}/`), `the helper the suite names is the copy's: ${inClone}`).toBe(true);
    const t = await time.startTimeLab();
    try {
      const tor = t.ids(t.policy.torUser.name);
      const socks = t.base.htp.socks;
      const spec = t.file('socks-spec.json', JSON.stringify({ dir: t.dir, listen: socks, names: {} }));
      // Control: the tor uid really cannot read the helper where it lies (the error a clone here used to give).
      expect(lab.unreachableByOthers(inClone), 'the copy is closed to other uids').toBeDefined();
      const direct = await t.run(lab.NODE, [inClone, spec], { as: tor, timeout: 10_000 });
      expect(direct.exitCode).not.toBe(0);
      expect(direct.stderr).toMatch(/Cannot find module/);

      // The way the suites start it: staged, then run as the tor uid; it listens, as that uid.
      const server = await t.startServer('sut', time.SERVERS.socks5, [spec], tor);
      expect(server.running()).toBe(true);
      const ss = await t.run('ss', ['-H', '-ltne', `sport = :${socks.port}`]);
      expect(ss.stdout, ss.stderr).toContain(`uid:${tor.uid}`);

      // The python probe runner (the firewall matrix's principals) from the same copy, as the htp uid.
      const htp = t.ids(t.policy.document.time.htpdate.user);
      const results = await lab.runProbes(t.lab, { ns: t.lab.sut, ...htp }, [
        { id: 'udp-lo', kind: 'udp', family: 4, dst: '127.0.0.1', port: 9, token: 'clone-anywhere', timeout: 1 },
      ]);
      expect(results.map((r) => r.id)).toEqual(['udp-lo']);
    } finally {
      await t.teardown();
    }
  });
});
