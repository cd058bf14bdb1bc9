// The ToolRunner static assertions get on a real host (nft -c, tor
// --verify-config, sh -n): the command's own exit code and output, bounded in
// time. A command that cannot be started is exit 127 with the reason, so the
// assertion fails loudly instead of passing.
import { spawn } from 'node:child_process';
import type { ToolRunner } from './contract.js';

export const hostToolRunner: ToolRunner = (cmd, args, opts) =>
  new Promise((resolve) => {
    const child = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // a tool that exits without reading its input
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ exitCode: 127, stdout: '', stderr: `${cmd}: ${e.code ?? e.message}` }));
    child.on('close', (code, signal) =>
      resolve({
        exitCode: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8').replace(/\n$/, ''),
        stderr: Buffer.concat(err).toString('utf8').replace(/\n$/, '') + (signal ? `${cmd}: killed by ${signal}` : ''),
      }),
    );
    child.stdin.end(opts?.input ?? '');
  });
