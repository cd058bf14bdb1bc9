// Debian's diffoscope on two images that should be bit-identical: when the
// reproducibility checks fail, its report says which file differs and how,
// and is kept next to the run's other output.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';

export async function diffoscope(a: string, b: string, report: string): Promise<void> {
  const r = await execa('diffoscope', ['--text', report, '--max-report-size', String(20 * 1024 * 1024), a, b], { reject: false, timeout: 900_000, all: true });
  const text = (() => {
    try {
      return readFileSync(report, 'utf8');
    } catch {
      return r.all ?? '';
    }
  })();
  console.log(`diffoscope (exit ${r.exitCode}), report kept: ${report}\n${text.slice(0, 4000)}`);
}
