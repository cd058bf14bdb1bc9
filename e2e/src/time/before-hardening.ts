// The time tools as shipped before the control socket, SAFECOOKIE, the
// release ceiling, the bounded waits and the certificate usage checks, kept
// verbatim (the emitted bundles of that tree, fixtures/before-hardening/) as
// the planted weakness of the attacks on them: each attack must get through
// these, or the test that it is refused now proves nothing.
import { readFileSync } from 'node:fs';
import { confLines, type TimeConfig } from '@leakless/htpdate';

export const BEFORE_HARDENING = {
  htpdate: new URL('./fixtures/before-hardening/htpdate.cjs', import.meta.url),
  'pretor-time': new URL('./fixtures/before-hardening/pretor-time.cjs', import.meta.url),
  conf: new URL('./fixtures/before-hardening/time.conf', import.meta.url),
} as const;

/** Keys the old tools do not know (their parser refuses an unknown key). */
const NEW_KEYS = new Set(['release-ceiling', 'tor-control-socket', 'tor-control-cookie', 'tor-uid', 'htp-bootstrap-timeout']);

/** `c` in the old tools' time.conf: without the keys they do not know, with their TCP ControlPort. */
export function oldConf(c: TimeConfig, controlPort: { address: string; port: number }): string {
  return [
    ...confLines(c)
      .filter((l) => !NEW_KEYS.has(l.key))
      .map((l) => `${l.key}=${l.value}`),
    `tor-control=${controlPort.address}:${controlPort.port}`,
    '',
  ].join('\n');
}

export const oldTool = (name: 'htpdate' | 'pretor-time'): string => readFileSync(BEFORE_HARDENING[name], 'utf8');
