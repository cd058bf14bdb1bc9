// The ToolRunner static assertions use (nft -c, tor --verify-config …). A
// missing binary is reported as exit 127 so the assertion fails loudly.
import { execa } from 'execa';
import type { ToolRunner } from '@leakless/policy';

export const toolRunner: ToolRunner = async (cmd, args, opts) => {
  const r = await execa(cmd, [...args], { reject: false, input: opts?.input ?? '', timeout: 60_000 });
  if (r.exitCode === undefined) return { exitCode: 127, stdout: '', stderr: `${cmd}: ${r.shortMessage ?? 'could not run'}` };
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
};
