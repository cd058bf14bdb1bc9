// Reading debos 1.1.1's log stream. debos logs with Go's `log` package
// ("2006/01/02 15:04:05 message"): "==== <action> ====" when an action
// starts (actions.go LogStart), "<label> | <line>" for the output of the
// commands it runs (commands.go commandWrapper), "Action `<action>` failed at
// stage <stage>, error: <err>" (cmd/debos/debos.go checkError) and
// "==== Recipe done ====" at the end.

export type DebosEvent =
  | { readonly kind: 'action'; readonly name: string }
  | { readonly kind: 'failed'; readonly action: string; readonly stage: string; readonly error: string }
  | { readonly kind: 'done'; readonly dryRun: boolean }
  | { readonly kind: 'host-mode' }
  | { readonly kind: 'output'; readonly label: string; readonly text: string }
  | { readonly kind: 'message'; readonly text: string };

const STAMP = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} /;

export function parseDebosLine(raw: string): DebosEvent {
  const line = raw.replace(/\r$/, '');
  const body = line.replace(STAMP, '');
  const done = /^==== Recipe done( \(Dry run\))? ====$/.exec(body);
  if (done) return { kind: 'done', dryRun: done[1] !== undefined };
  const action = /^==== (.*) ====$/.exec(body);
  if (action) return { kind: 'action', name: action[1]! };
  const failed = /^Action `(.*)` failed at stage (\w+), error: (.*)$/.exec(body);
  if (failed) return { kind: 'failed', action: failed[1]!, stage: failed[2]!, error: failed[3]! };
  if (/^fakemachine not supported, running on the host!$/.test(body)) return { kind: 'host-mode' };
  // Only lines debos itself timestamped can be command output; a bare line with
  // " | " in it comes from elsewhere (e.g. a usage message).
  const output = STAMP.test(line) ? /^(.*?) \| (.*)$/.exec(body) : null;
  if (output) return { kind: 'output', label: output[1]!, text: output[2]! };
  return { kind: 'message', text: body };
}
