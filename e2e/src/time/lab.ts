// A closed two-namespace lab for the time tools (until the shared lab in
// e2e/src/lab exists), made and removed by each test file:
//
//   lk-tsut-XXXX  lkt0 192.168.213.2/24, default via .1   (the machine under test:
//                 the emitted firewall ruleset, the emitted tools, real uids)
//       | veth
//   lk-tnet-XXXX  lkt1 192.168.213.1/24 (the LAN router)
//                 + 198.51.100.10-17, 203.0.113.20-49 ("Internet" hosts),
//                   203.0.113.53 (DNS), as /32s on the same interface
//
// Nothing is routed, bridged or NATed anywhere else; names are random so a
// leftover never collides; teardown kills what the lab started and deletes
// both namespaces, also when a test failed.
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SUT = '192.168.213.2';
export const ROUTER = '192.168.213.1';
export const DNS = '203.0.113.53';
/** Scenario hosts of the pre-Tor check. */
export const HTTP = {
  online: '198.51.100.10',
  redirect: '198.51.100.11',
  'portal-body': '198.51.100.12',
  silent: '198.51.100.13',
  'no-date': '198.51.100.14',
  'bad-date': '198.51.100.15',
  past: '198.51.100.16',
  closed: '198.51.100.17',
} as const;
/** Addresses for htpdate's pool hosts. */
export const poolAddress = (i: number): string => `203.0.113.${20 + i}`;

export interface Run {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface Ids {
  readonly uid: number;
  readonly gid: number;
}

export interface TimeLab {
  readonly id: string;
  readonly sut: string;
  readonly inet: string;
  /** A directory every uid can read (tools, configs, certificates live here). */
  readonly dir: string;
  file(name: string, content: string, mode?: number): string;
  /** Run in the sut namespace, optionally as uid:gid (no supplementary groups), optionally with `resolv` bind-mounted over /etc/resolv.conf. */
  run(cmd: string, args: readonly string[], opts?: { as?: Ids; resolv?: string; timeout?: number; input?: string }): Promise<Run>;
  /** Start a long-running process in a namespace; resolves (with a stop function) when it prints "ready". */
  start(ns: 'sut' | 'inet', cmd: string, args: readonly string[], opts?: { as?: Ids }): Promise<() => Promise<void>>;
  teardown(): Promise<void>;
}

async function must(cmd: string, args: readonly string[], input?: string): Promise<void> {
  const r = await execa(cmd, [...args], { reject: false, input: input ?? '', timeout: 30_000 });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.exitCode}: ${String(r.stderr).trim()}`);
}

const drop = (as?: Ids): string[] => (as ? ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', '--'] : []);

export async function createTimeLab(): Promise<TimeLab> {
  const id = randomBytes(2).toString('hex');
  const sut = `lk-tsut-${id}`;
  const inet = `lk-tnet-${id}`;
  const dir = mkdtempSync(join(tmpdir(), `lk-time-${id}-`));
  chmodSync(dir, 0o755);
  const procs: ResultPromise[] = [];

  const lab: TimeLab = {
    id,
    sut,
    inet,
    dir,
    file(name, content, mode = 0o644) {
      const p = join(dir, name);
      writeFileSync(p, content, { mode });
      chmodSync(p, mode);
      return p;
    },
    async run(cmd, args, opts = {}) {
      const inner = [...drop(opts.as), cmd, ...args];
      const argv = opts.resolv
        ? ['netns', 'exec', sut, 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', opts.resolv, ...inner]
        : ['netns', 'exec', sut, ...inner];
      const t0 = performance.now();
      const r = await execa('ip', argv, { reject: false, input: opts.input ?? '', timeout: opts.timeout ?? 60_000 });
      return { exitCode: r.exitCode ?? 128, stdout: String(r.stdout), stderr: String(r.stderr), ms: performance.now() - t0 };
    },
    async start(ns, cmd, args, opts = {}) {
      const p = execa('ip', ['netns', 'exec', ns === 'sut' ? sut : inet, ...drop(opts.as), cmd, ...args], { reject: false, stdin: 'ignore', buffer: false });
      procs.push(p);
      await new Promise<void>((resolve, reject) => {
        let out = '';
        let err = '';
        const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')} did not get ready: ${err}`)), 15_000);
        p.stdout!.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        p.stderr!.on('data', (d: Buffer) => (err += d));
        void p.then((r) => {
          clearTimeout(timer);
          reject(new Error(`${cmd} exited (${r.exitCode}) before it was ready: ${err}`));
        });
      });
      return async () => {
        p.kill('SIGKILL');
        await p.catch(() => {});
      };
    },
    async teardown() {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.allSettled(procs);
      await execa('ip', ['netns', 'del', sut], { reject: false });
      await execa('ip', ['netns', 'del', inet], { reject: false });
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await must('ip', ['netns', 'add', sut]);
    await must('ip', ['netns', 'add', inet]);
    await must('ip', ['link', 'add', 'lkt0', 'netns', sut, 'type', 'veth', 'peer', 'name', 'lkt1', 'netns', inet]);
    for (const ns of [sut, inet]) await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await must('ip', ['-n', sut, 'addr', 'add', `${SUT}/24`, 'dev', 'lkt0']);
    await must('ip', ['-n', sut, 'link', 'set', 'lkt0', 'up']);
    await must('ip', ['-n', sut, 'route', 'add', 'default', 'via', ROUTER]);
    await must('ip', ['-n', inet, 'addr', 'add', `${ROUTER}/24`, 'dev', 'lkt1']);
    await must('ip', ['-n', inet, 'link', 'set', 'lkt1', 'up']);
    // the "Internet" hosts are extra addresses of the router's own interface (no dummy module needed)
    const addrs = [...Object.values(HTTP), DNS, ...Array.from({ length: 30 }, (_, i) => poolAddress(i))];
    await must('ip', ['-n', inet, '-batch', '-'], addrs.map((a) => `addr add ${a}/32 dev lkt1`).join('\n') + '\n');
  } catch (e) {
    await lab.teardown();
    throw e;
  }
  return lab;
}

/** Root and the lab's tools, or why not. In CI a missing prerequisite fails instead of skipping. */
export async function labPrerequisites(tools: readonly string[]): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, nft, setpriv)';
  for (const t of tools) {
    const r = await execa('sh', ['-c', `command -v ${t}`], { reject: false });
    if (r.exitCode !== 0) return `needs ${t}`;
  }
  return undefined;
}

export async function requireLab(tools: readonly string[]): Promise<boolean> {
  const why = await labPrerequisites(tools);
  if (why === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`time lab: ${why} (CI=true: a missing prerequisite is a failure)`);
  console.warn(`\n*** SKIPPING the time lab: ${why} ***\n`);
  return false;
}
