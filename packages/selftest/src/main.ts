// Entry point of the leakless-selftest bundle (the image's /usr/sbin/leakless-selftest).
// Node built-ins only: the bundle runs on Debian's nodejs without node_modules.
//   leakless-selftest [--assertions FILE] [--module NAME]... [--scope SCOPE]... [--destination NAME=ADDRESS[:PORT]]...
//                     [--destinations FILE] [--json] [--settle SECONDS] [--result-port PATH]
// Exit: 0 every assertion holds, 1 one failed (or could not be observed), 2 bad input.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { PATHS } from '@leakless/policy/names';
import type { Exec } from './evaluate.js';
import { formatReport, parseSelftestDocument, resultLine, runSelftest, SECURE_BOOT_EFIVAR, secureBootState } from './selftest.js';

/** Where the image builder puts the runtime assertions (the policy layer names the path for both). */
const DEFAULT_ASSERTIONS: string = PATHS.runtimeAssertions;

const USAGE = `usage: leakless-selftest [--assertions FILE] [--module NAME]... [--scope SCOPE]... [--destination NAME=ADDRESS[:PORT]]...
                         [--destinations FILE] [--json] [--settle SECONDS] [--result-port PATH]

Evaluates every runtime assertion this image carries (firewall, sysctls,
resolver, tor, units, users) on the running system and prints a table.
  --assertions FILE   default ${DEFAULT_ASSERTIONS}
  --module NAME       only this module's assertions (repeatable)
  --scope SCOPE       only assertions of this scope: system, netns or network (repeatable);
                      a boot without a network leaves out network (the active probes)
  --destination NAME=ADDRESS[:PORT]
                      where the active probes named NAME go (internet, lan-resolver,
                      internet-resolver …); a probe without its destination fails
  --destinations FILE the same, one NAME=ADDRESS[:PORT] per line (# comments)
  --json              print the JSON report instead of the table
  --settle SECONDS    re-check failing assertions for up to this long (boot)
  --result-port PATH  also write the JSON report, one marked line, to PATH if it exists
exit codes: 0 all hold, 1 a check failed, 2 bad input`;

/** Every observation: a real process, LC_ALL=C, bounded in time; a missing tool is exit 127. */
const exec: Exec = (cmd, args) =>
  new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: 20_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (!err) return resolve({ exitCode: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: string | number };
      const exitCode = typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1;
      resolve({ exitCode, stdout: String(stdout ?? ''), stderr: String(stderr ?? '') || e.message });
    });
  });

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

function uptime(): number | undefined {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

async function main(argv: string[]): Promise<number> {
  let file = DEFAULT_ASSERTIONS;
  let json = false;
  let settle = 0;
  let port: string | undefined;
  const modules: string[] = [];
  const scopes: string[] = [];
  const destinations: Record<string, string> = {};
  const destination = (spec: string, from: string) => {
    const m = /^([a-z][a-z0-9-]*)=(\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?)$/.exec(spec.trim());
    if (!m) throw new Error(`${from}: ${JSON.stringify(spec)} is not NAME=ADDRESS[:PORT]`);
    destinations[m[1]!] = m[2]!;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else if (a === '--assertions') file = value();
    else if (a === '--module') modules.push(value());
    else if (a === '--scope') {
      const v = value();
      if (!['system', 'netns', 'network'].includes(v)) throw new Error(`--scope: ${v} is not system, netns or network`);
      scopes.push(v);
    } else if (a === '--destination') destination(value(), '--destination');
    else if (a === '--destinations') {
      const f = value();
      // a file that is not there gives no destinations: the probes then fail, they never pass
      const lines = existsSync(f) ? readFileSync(f, 'utf8').split('\n') : [];
      for (const [i, l] of lines.entries()) if (l.trim() !== '' && !l.trim().startsWith('#')) destination(l, `--destinations ${f}:${i + 1}`);
    } else if (a === '--json') json = true;
    else if (a === '--settle') {
      settle = Number(value());
      if (!Number.isFinite(settle) || settle < 0) throw new Error('--settle needs a number of seconds');
    } else if (a === '--result-port') port = value();
    else throw new Error(`unknown argument ${a}`);
  }
  const doc = parseSelftestDocument(readFileSync(file, 'utf8'));
  const start = uptime();
  const evaluated = await runSelftest(doc, exec, { settleMs: settle * 1000, modules, scopes, destinations });
  const end = uptime();
  const timed = start !== undefined && end !== undefined ? { ...evaluated, uptime: { start, end } } : evaluated;
  const report = { ...timed, secureBoot: secureBootState(readOptional(SECURE_BOOT_EFIVAR), existsSync('/sys/firmware/efi')) };
  process.stdout.write((json ? JSON.stringify(report, null, 2) : formatReport(report)) + '\n');
  if (port !== undefined && existsSync(port)) writeFileSync(port, resultLine(report));
  return report.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`leakless-selftest: ${(e as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
  },
);
