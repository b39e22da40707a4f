/**
 * Test seams for the kill-and-resume and full-disk tests, read from the environment in this one place
 * (both unset outside tests, where every call here is a no-op):
 *
 *   MCORE_TEST_CRASH_AT=NAME[:N]            SIGKILL this process the N-th time (default: the first)
 *                                           it reaches the crash point NAME, e.g. `checkpoint:weights:2`
 *   MCORE_TEST_FAIL_WRITE=CODE:BASENAME[:N] the N-th write (default: every write) to each file named
 *                                           BASENAME fails with the errno CODE, e.g. `ENOSPC:log.jsonl:3`
 *                                           (writes through src/io/atomic.ts)
 *
 * Crash points: `atomic:before-rename` (a temporary file is written, the rename is not done),
 * `checkpoint:weights` (weights written, optimizer not), `checkpoint:optimizer` (both written,
 * checkpoint.json not replaced), `checkpoint:json` (checkpoint.json replaced, the previous folder not
 * removed), `epoch:logged` (the epoch's log line appended), `bundle:swap` (the old bundle moved aside,
 * the new one not yet in its place).
 */
import path from 'node:path';

const counts = new Map<string, number>();

function parse(spec: string | undefined): { parts: string[]; nth?: number } | undefined {
  if (!spec) return undefined;
  const parts = spec.split(':');
  const last = parts[parts.length - 1];
  if (parts.length > 1 && /^\d+$/.test(last)) return { parts: parts.slice(0, -1), nth: Number(last) };
  return { parts };
}

/** Kills this process (SIGKILL: no cleanup, no finally) at crash point `name` when the test asks for it. */
export function crashPoint(name: string): void {
  const want = parse(process.env.MCORE_TEST_CRASH_AT);
  if (!want || want.parts.join(':') !== name) return;
  const n = (counts.get(`crash:${name}`) ?? 0) + 1;
  counts.set(`crash:${name}`, n);
  if (n === (want.nth ?? 1)) process.kill(process.pid, 'SIGKILL');
}

/** Throws an fs-style error (code, syscall 'write', path) when the test injects a failing write to `file`. */
export function injectedWriteFault(file: string): void {
  const want = parse(process.env.MCORE_TEST_FAIL_WRITE);
  if (want?.parts.length !== 2 || want.parts[1] !== path.basename(file)) return;
  const n = (counts.get(`write:${file}`) ?? 0) + 1;
  counts.set(`write:${file}`, n);
  if (want.nth !== undefined && n !== want.nth) return;
  const code = want.parts[0];
  const err = new Error(`${code}: injected write failure, write '${file}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = 'write';
  err.path = file;
  throw err;
}
