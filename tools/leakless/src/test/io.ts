// The CLI tests run main() in-process: this is the io it writes to, kept so a
// test can count the lines (bad input is exactly one line on stderr).
export function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}
