// The default profile this package falls back to ships inside it: a
// downstream project that installs @leakless/policy gets the same documented
// policy the repository builds (image-config/default.yaml, copied into the
// package by its build), with no path back into this repository.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readPolicyFile } from './load.js';
import type { PolicyResult } from './validate.js';

/** The shipped default profile (profiles/default.yaml beside src/ and dist/). */
export function defaultProfilePath(): string {
  return fileURLToPath(new URL('../profiles/default.yaml', import.meta.url));
}

/** The default profile, validated. Throws if the package was not built (the file is a build output). */
export async function readDefaultPolicy(): Promise<PolicyResult> {
  const file = defaultProfilePath();
  if (!existsSync(file))
    throw new Error(`@leakless/policy: the default profile ${file} is missing; run \`npm run build\` (it copies image-config/default.yaml into the package)`);
  return readPolicyFile(file);
}
