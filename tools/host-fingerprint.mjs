#!/usr/bin/env node
// What a test run's result depends on besides the sources: who runs it, CI
// (which turns a missing prerequisite from a skip into a failure) and the
// versions of the Debian tools the tests drive. Nx hashes this line into the
// test target's cache key, so a non-root run full of skips is never replayed
// as a pass for root, nor a run before `install-deps.sh` as one after it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const script = readFileSync(new URL('./leakless/install-deps.sh', import.meta.url), 'utf8');
const pkgs = /^test_pkgs="([^"]*)"/m.exec(script)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} format, not a template
const q = spawnSync('dpkg-query', ['-W', '-f', '${Package}=${Version};', ...pkgs], { encoding: 'utf8' });
process.stdout.write(`uid=${process.getuid?.()} CI=${process.env.CI ?? ''} ${q.stdout ?? ''}\n`);
