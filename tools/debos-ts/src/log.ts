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
  let m: RegExpExecArray | null;
  if ((m = /^==== Recipe done( \(Dry run\))? ====$/.exec(body))) return { kind: 'done', dryRun: m[1] !== undefined };
  if ((m = /^==== (.*) ====$/.exec(body))) return { kind: 'action', name: m[1]! };
  if ((m = /^Action `(.*)` failed at stage (\w+), error: (.*)$/.exec(body))) return { kind: 'failed', action: m[1]!, stage: m[2]!, error: m[3]! };
  if (/^fakemachine not supported, running on the host!$/.test(body)) return { kind: 'host-mode' };
  // Only lines debos itself timestamped can be command output; a bare line with
  // " | " in it comes from elsewhere (e.g. a usage message).
  if (STAMP.test(line) && (m = /^(.*?) \| (.*)$/.exec(body))) return { kind: 'output', label: m[1]!, text: m[2]! };
  return { kind: 'message', text: body };
}
