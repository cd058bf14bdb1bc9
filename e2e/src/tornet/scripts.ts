// The helper scripts run as other uids and inside namespaces: copy them where
// every uid can read them (the work tree may not be readable by them).
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NODE = process.execPath;
const SCRIPTS = ['http-server.mjs', 'socks-get.mjs', 'control.mjs'] as const;
export type Script = (typeof SCRIPTS)[number];

export interface Scripts {
  readonly dir: string;
  path(s: Script): string;
  remove(): void;
}

export function installScripts(): Scripts {
  const dir = mkdtempSync(join(tmpdir(), 'lk-tornet-scripts-'));
  chmodSync(dir, 0o755);
  for (const s of SCRIPTS) {
    copyFileSync(new URL(`./scripts/${s}`, import.meta.url), join(dir, s));
    chmodSync(join(dir, s), 0o644);
  }
  return { dir, path: (s) => join(dir, s), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
