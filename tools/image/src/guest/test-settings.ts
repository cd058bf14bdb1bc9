// leakless-test-settings: the image's one reader of the test-only settings
// channel (docs/threat-model.md#test-settings-fw-cfg). Runs once at boot, in
// a virtual machine only (its unit's ConditionVirtualization=vm), before tor
// and the time tools start. Node built-ins only; bundled into the image.
//
// Absent (every real boot, and every VM whose hypervisor offers nothing):
// nothing is applied. Malformed: refused as a whole, nothing is applied, the
// reason is logged and the unit fails. Accepted: the torrc.d drop-in, the
// test CA appended to htpdate's trust anchors, the lab agent's flag.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseTestSettings, selftestFiles, TEST_SETTINGS_MAX_BYTES, TEST_SETTINGS_PATHS, TEST_SETTINGS_SYSFS, torrcDropIn } from '../test-channel.js';

const log = (s: string) => process.stdout.write(`leakless-test-settings: ${s}\n`);

/** A fw_cfg file, at most one byte more than the limit (so an oversized one is seen as such). */
function readRaw(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(TEST_SETTINGS_MAX_BYTES + 1);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function record(state: Record<string, unknown>): void {
  writeFileSync(TEST_SETTINGS_PATHS.state, `${JSON.stringify(state)}\n`, { mode: 0o644 });
}

function main(): number {
  for (const p of [TEST_SETTINGS_PATHS.state, TEST_SETTINGS_PATHS.agentFlag]) mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
  // The driver binds only to the device QEMU's ACPI tables announce (QEMU0002); on other machines it loads and finds nothing.
  try {
    execFileSync('modprobe', ['-q', 'qemu_fw_cfg'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    // no driver: then there is no channel either
  }
  if (!existsSync(TEST_SETTINGS_SYSFS)) {
    record({ status: 'absent' });
    log('absent: the hypervisor offers no test settings; nothing applied');
    return 0;
  }
  const parsed = parseTestSettings(readRaw(TEST_SETTINGS_SYSFS));
  if (!parsed.ok) {
    record({ status: 'refused', reason: parsed.reason });
    log(`REFUSED: ${parsed.reason}; nothing applied`);
    return 1;
  }
  const s = parsed.settings;
  writeFileSync(TEST_SETTINGS_PATHS.torrcDropIn, torrcDropIn(s), { mode: 0o644 });
  let ca: string | undefined;
  if (s.ca) {
    const bundle = existsSync(TEST_SETTINGS_PATHS.caBundle) ? readFileSync(TEST_SETTINGS_PATHS.caBundle, 'utf8') : '';
    if (!bundle.includes(s.ca.trim())) appendFileSync(TEST_SETTINGS_PATHS.caBundle, `${bundle === '' || bundle.endsWith('\n') ? '' : '\n'}${s.ca}`);
    ca = new X509Certificate(s.ca).subject.replace(/\n/g, ', ');
  }
  if (s.agent) writeFileSync(TEST_SETTINGS_PATHS.agentFlag, '', { mode: 0o644 });
  const selftest = selftestFiles(s);
  if (selftest) {
    writeFileSync(TEST_SETTINGS_PATHS.selftestDestinations, selftest.destinations, { mode: 0o644 });
    writeFileSync(TEST_SETTINGS_PATHS.selftestEnv, selftest.env, { mode: 0o644 });
  }
  const authorities = s.torrc.filter((l) => l.startsWith('DirAuthority ')).length;
  const probes = Object.keys(s.destinations ?? {});
  record({ status: 'accepted', authorities, ...(ca ? { ca } : {}), agent: s.agent, destinations: probes });
  log(
    `accepted: ${authorities} DirAuthority line(s) and TestingTorNetwork in ${TEST_SETTINGS_PATHS.torrcDropIn}` +
      `${ca ? `, CA "${ca}" added to ${TEST_SETTINGS_PATHS.caBundle}` : ''}${s.agent ? ', lab agent on' : ''}` +
      `${probes.length ? `, self-test destinations ${probes.join(', ')}` : ''}`,
  );
  return 0;
}

try {
  process.exitCode = main();
} catch (e) {
  log(`FAILED: ${(e as Error).message}`);
  process.exitCode = 1;
}
