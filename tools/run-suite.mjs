#!/usr/bin/env node
// Runs a suite and prints the closing line CI reads: "N passed, N failed".
//   node tools/run-suite.mjs test   unit tests, static assertions, drift, the lab
//   node tools/run-suite.mjs e2e    the ISO build, QEMU boots
// Installs the Debian tools the suite needs first when running as root.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const mode = process.argv[2];
if (mode !== 'test' && mode !== 'e2e') {
  console.error('usage: run-suite.mjs test|e2e');
  process.exit(2);
}
// turbo must not try to phone home from CI (the network here is closed).
process.env.TURBO_TELEMETRY_DISABLED ??= '1';
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts }).status ?? 1;

if (process.getuid?.() === 0) {
  if (run('bash', ['tools/leakless/install-deps.sh', mode]) !== 0) {
    console.error('run-suite: installing the Debian tools failed');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
} else {
  console.error('run-suite: not root: Debian tools are not installed and root-only tests will skip (CI=true makes them fail)');
}

// Build through turbo's cached pipeline (the CLI tests run the built binary;
// CI using turbo keeps its task graph honest), typecheck everything the build
// leaves out (tests, test helpers, e2e/: vitest itself does not typecheck),
// then lint and check the formatting (Biome).
const steps = [
  ['npx', ['turbo', 'run', 'build', '--output-logs=errors-only']],
  ['npx', ['tsc', '-p', 'tsconfig.typecheck.json']],
  ['npx', ['biome', 'ci', '--colors=off', '.']],
];
for (const [cmd, args] of steps) {
  if (run(cmd, args) !== 0) {
    console.error(`run-suite: ${cmd} ${args.join(' ')} failed`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

const report = `.vitest-${mode}.json`;
rmSync(report, { force: true });
const projectArgs = mode === 'e2e' ? ['--project', 'iso'] : ['--project', '!iso'];
const status = run('npx', ['vitest', 'run', ...projectArgs, '--reporter=default', '--reporter=json', `--outputFile=${report}`]);
if (!existsSync(report)) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const r = JSON.parse(readFileSync(report, 'utf8'));
// A suite file that failed to load has no test results but must count.
const brokenFiles = r.testResults.filter((f) => f.status === 'failed' && f.assertionResults.length === 0).length;
const failed = r.numFailedTests + brokenFiles;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status === 0 && failed === 0 ? 0 : 1);
