// A TreeReader over a directory on disk (an emitted tree or a built rootfs).
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TreeReader } from '@leakless/policy';
import { byteOrder } from '@leakless/policy';

export function diskTree(root: string): TreeReader {
  const safe = (p: string) => join(root, p.replace(/^\/+/, ''));
  return {
    read(p) {
      try {
        const st = lstatSync(safe(p));
        return st.isFile() ? readFileSync(safe(p), 'utf8') : undefined;
      } catch {
        return undefined;
      }
    },
    mode(p) {
      try {
        return lstatSync(safe(p)).mode & 0o7777;
      } catch {
        return undefined;
      }
    },
    paths() {
      const out: string[] = [];
      const walk = (rel: string) => {
        for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
          const r = `${rel}/${e.name}`;
          if (e.isDirectory()) walk(r);
          else out.push(r);
        }
      };
      walk('');
      return out.sort(byteOrder);
    },
  };
}
