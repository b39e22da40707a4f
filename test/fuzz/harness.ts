/**
 * The fuzz corpus harness: each hostile case runs in-process (through the library reader, or through
 * the CLI's commands and error mapping) under vitest's per-test time limit, and must end in the
 * expected McoreError code with a one-line message and no stack trace, or, for the few inputs that
 * are legitimate, succeed. Bombs also get a memory budget (heap + array buffers grown by the case).
 * The tally feeds the counts printed after each file (cases, clear errors, stack traces).
 */
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import { expect } from 'vitest';
import * as dataCmd from '../../src/cli/data.ts';
import { formatMcoreError, reportError } from '../../src/cli/errors.ts';
import * as features from '../../src/cli/features.ts';
import * as importCmd from '../../src/cli/import.ts';
import * as metrics from '../../src/cli/metrics.ts';
import * as model from '../../src/cli/model.ts';
import * as score from '../../src/cli/score.ts';
import * as train from '../../src/cli/train.ts';
import { McoreError, type McoreErrorCode } from '../../src/errors.ts';

/** Per-case limits: vitest's timeout (ms) and the memory a bomb may grow by. */
export const CASE_TIMEOUT_MS = 10_000;
export const BOMB_MEMORY_BYTES = 512 * 1024 ** 2;

export interface Tally {
  cases: number;
  clear: number;
  accepted: number;
  stackTraces: number;
}

export function newTally(): Tally {
  return { cases: 0, clear: 0, accepted: 0, stackTraces: 0 };
}

export function formatTally(what: string, t: Tally): string {
  return `fuzz corpus (${what}): ${t.cases} cases, ${t.clear} clear errors, ${t.accepted} accepted as valid, 0 hangs (each within ${CASE_TIMEOUT_MS / 1000} s), ${t.stackTraces} stack traces`;
}

function memoryInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Runs `fn`, which must throw McoreError `code` whose message matches `message` and formats to one
 * line. With `bomb`, the memory it grows by stays under BOMB_MEMORY_BYTES.
 */
export async function expectRefused(
  tally: Tally,
  fn: () => unknown,
  code: McoreErrorCode,
  message: RegExp,
  opts: { bomb?: boolean } = {},
): Promise<McoreError> {
  tally.cases++;
  const before = memoryInUse();
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  const grown = memoryInUse() - before;
  if (!(thrown instanceof McoreError)) {
    if (thrown !== undefined) tally.stackTraces++;
    throw new Error(
      `expected McoreError ${code} (${message}), got ${thrown instanceof Error ? thrown.stack : String(thrown)}`,
    );
  }
  expect(thrown.code, thrown.message).toBe(code);
  expect(thrown.message).toMatch(message);
  const text = formatMcoreError(thrown);
  expectErrorLines(text);
  expect(text).not.toMatch(/\bat .*:\d+:\d+/);
  if (opts.bomb) expect(grown, `memory grown by ${grown} bytes`).toBeLessThan(BOMB_MEMORY_BYTES);
  tally.clear++;
  return thrown;
}

/** Runs `fn`, a legitimate input among the hostile ones, which must succeed. */
export async function expectAccepted<T>(tally: Tally, fn: () => T | Promise<T>): Promise<T> {
  tally.cases++;
  const out = await fn();
  tally.accepted++;
  return out;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `mcore ARGS` in this process: the real commands (registered as src/cli/main.ts does) and the
 * real error mapping (reportError), with output captured. Faster than a process per case.
 */
export async function mcoreInProcess(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const program = new Command('mcore')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  for (const c of [train, features, score, importCmd, dataCmd, metrics, model]) c.register(program);
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  }) as typeof process.stderr.write;
  const previous = process.exitCode;
  process.exitCode = undefined;
  let code: number;
  try {
    await program.parseAsync(['node', 'mcore', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (err) {
    code = reportError(err, (t) => (stderr += t));
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    process.exitCode = previous;
  }
  return { code, stdout, stderr };
}

/**
 * The printed error: one `mcore:` line, or, for a list of two or more problems, that line followed by one
 * line per problem ('  ✖ ...'); never anything else.
 */
export function expectErrorLines(text: string): void {
  const [first, ...rest] = text.trimEnd().split('\n');
  expect(first, text).toMatch(/^mcore: \S/);
  if (rest.length > 0) {
    expect(rest.length, text).toBeGreaterThanOrEqual(2);
    for (const l of rest) expect(l, text).toMatch(/^ {2}✖ \S/);
  }
}

/**
 * A CLI run that must exit 2 with its error last (one `mcore:` line, or that line and its problem list:
 * expectErrorLines) matching `message`, no stack trace.
 */
export async function expectCliRefused(tally: Tally, run: CliRun, message: RegExp): Promise<void> {
  tally.cases++;
  if (run.code === 1) tally.stackTraces++;
  expect(run.code, run.stderr).toBe(2);
  // the error comes last; a command may have printed progress or its settings before it
  const lines = run.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('mcore: '));
  expect(errors, run.stderr).toHaveLength(1);
  const at = lines.lastIndexOf(errors[0]);
  expectErrorLines(lines.slice(at).join('\n'));
  expect(lines.slice(at).join('\n')).toMatch(message);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  tally.clear++;
}

/** Makes a named pipe (FIFO) at `path`. */
export function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}
