// A turbo remote-cache server (turborepo-remote-cache, local storage) in a
// network namespace of its own with loopback only: builders reach it with
// `leakless iso --remote-cache URL --remote-cache-netns NS`. Nothing leaves
// the machine and nothing outside the namespace can reach the server.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export interface CacheServer {
  readonly url: string;
  readonly netns: string;
  readonly storage: string;
  /** What a builder needs in its environment. */
  readonly env: Readonly<Record<string, string>>;
  /** The stored artifact of a key (for the tamper anti-test). */
  artifactPath(key: string): string;
  stop(): Promise<void>;
}

const PORT = 3000;
const TEAM = 'leakless-e2e';

export async function startCacheServer(dir: string): Promise<CacheServer> {
  const netns = `lk-cache-${randomBytes(3).toString('hex')}`;
  const storage = join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const token = randomBytes(16).toString('hex');
  const signatureKey = randomBytes(32).toString('hex');
  const cli = join(dirname(createRequire(import.meta.url).resolve('turborepo-remote-cache/package.json')), 'dist', 'cli.js');
  let server: ResultPromise | undefined;
  const stop = async () => {
    if (server) {
      server.kill('SIGTERM');
      await server.catch(() => undefined);
    }
    await execa('ip', ['netns', 'del', netns], { reject: false });
  };
  try {
    await execa('ip', ['netns', 'add', netns]);
    await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    server = execa('ip', ['netns', 'exec', netns, process.execPath, cli], {
      reject: false,
      stdin: 'ignore',
      env: {
        NODE_ENV: 'production',
        PORT: String(PORT),
        TURBO_TOKEN: token,
        STORAGE_PROVIDER: 'local',
        STORAGE_PATH: storage,
        STORAGE_PATH_USE_TMP_FOLDER: 'false',
        // the server keeps each artifact's tag beside it only when it knows a signature key
        TURBO_REMOTE_CACHE_SIGNATURE_KEY: 'stored-not-checked-by-the-server',
        BODY_LIMIT: String(2 * 1024 ** 3),
      },
    });
    const url = `http://127.0.0.1:${PORT}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await execa(
        'ip',
        ['netns', 'exec', netns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${url}/v8/artifacts/status`, '-H', `Authorization: Bearer ${token}`],
        {
          reject: false,
        },
      );
      if (r.stdout === '200') break;
      if (Date.now() > deadline) throw new Error(`turborepo-remote-cache did not answer in 20 s (last: ${r.stdout || r.stderr})`);
      await new Promise((res) => setTimeout(res, 300));
    }
    return {
      url,
      netns,
      storage,
      env: { LEAKLESS_REMOTE_CACHE_TOKEN: token, LEAKLESS_REMOTE_CACHE_KEY: signatureKey, LEAKLESS_REMOTE_CACHE_TEAM: TEAM },
      artifactPath(key: string) {
        // local storage: <STORAGE_PATH>/<team>/<hash>, its tag beside it as <hash>.tag
        const p = join(storage, TEAM, key);
        if (!existsSync(p)) throw new Error(`no stored artifact for ${key} (${p})`);
        return p;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
