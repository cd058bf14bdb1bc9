#!/usr/bin/env node
// Build step of @leakless/policy: the repository's documented default policy
// (image-config/default.yaml) becomes the profile the package ships
// (profiles/default.yaml, gitignored; policy.test.ts fails if the two differ).
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url));
const dir = fileURLToPath(new URL('../profiles/', import.meta.url));
mkdirSync(dir, { recursive: true });
copyFileSync(from, `${dir}default.yaml`);
chmodSync(`${dir}default.yaml`, 0o644);
process.stdout.write('@leakless/policy: profiles/default.yaml from image-config/default.yaml\n');
