// set-clock: the root clock-setting helper (Tails' tails-set-date).
//   set-clock [--config FILE] [--keep-tor] YYYY-MM-DDTHH:MM:SS+00:00
// Anything else is refused (exit 8) before any command runs.
import { spawn } from 'node:child_process';
import { DEFAULT_CONFIG } from '../runtime/config.js';
import { ToolFailure } from '../runtime/exit-codes.js';
import { loadConfig, log, runMain, uid } from '../runtime/proc.js';
import { applyClock, parseSetClockArgs } from '../runtime/set-clock.js';

const TOOL = 'set-clock';

function run(cmd: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, [...args], { cwd: '/', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (e) => {
      log(TOOL, `${cmd}: ${e.message}`);
      resolve(127);
    });
    child.on('close', (code) => resolve(code ?? 128));
  });
}

runMain(TOOL, async () => {
  const argv = process.argv.slice(2);
  let config: string | undefined;
  if (argv[0] === '--config') {
    config = argv[1];
    if (config === undefined) throw new ToolFailure('invalid-config', '--config needs a value');
    argv.splice(0, 2);
  }
  if (uid() !== 0) throw new ToolFailure('invalid-config', 'must run as root');
  const cfg = loadConfig(config ?? DEFAULT_CONFIG);
  const req = parseSetClockArgs(argv, cfg);
  if ('error' in req) throw new ToolFailure('invalid-config', req.error);
  return applyClock(req, cfg.torUnit, { uid: uid(), run, log: (l) => process.stderr.write(`${l}\n`) });
});
