/**
 * How the CLI reports errors (style guide: known errors in one line, unknown ones with their stack):
 * McoreError -> `mcore: <message>` and the exit code of its `code` (2: the user can fix it); usage
 * errors from commander -> commander's message (already printed) and 2; a file-system error the user
 * can fix (full disk, quota, permissions, read-only, a file where a folder belongs: src/io/fs-errors.ts)
 * -> one line naming the path and 2; anything else -> the stack and 1 (a bug in mcore). E_SHAPE is
 * raised by the library's own shape checks (tensors between its layers), which no input can reach once
 * the readers have checked it: it is a bug, reported with its stack and exit 1 like any internal error.
 */
import { CommanderError } from 'commander';
import { McoreError, type McoreErrorCode } from '../errors.ts';
import { fsErrorMessage } from '../io/fs-errors.ts';

/** Exit code per McoreError code (typed against the code union: a new code must be listed). */
export const EXIT_CODES: Readonly<Record<McoreErrorCode, number>> = {
  E_CONFIG: 2,
  E_DATA_LAYOUT: 2,
  E_WEIGHTS: 2,
  E_SHAPE: 1,
  E_INPUT: 2,
  E_PICKLE: 2,
  E_BACKEND: 2,
  E_IO: 2,
  E_BUSY: 2,
  E_DIVERGED: 2,
  E_NONFINITE: 2,
};

/** Exit code for command-line usage errors (unknown command or option, missing argument). */
export const USAGE_EXIT_CODE = 2;

/**
 * The text printed for a known error: one line, except that a list of two or more problems (lines
 * starting with '✖', e.g. every problem of a manifest or a config) keeps one problem per line. A list of
 * one problem is folded into the one line like any other message.
 */
export function formatMcoreError(err: McoreError): string {
  const lines: string[] = [];
  for (const raw of err.message.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const last = lines[lines.length - 1];
    if (line.startsWith('✖')) lines.push(`  ${line}`);
    else if (last !== undefined && !last.startsWith('  ✖')) lines[lines.length - 1] = `${last} ${line}`;
    else lines.push(line);
  }
  if (lines.filter((l) => l.startsWith('  ✖')).length <= 1) {
    return `mcore: ${lines.map((l) => l.trim().replace(/^✖\s*/, '')).join(' ')}`;
  }
  return `mcore: ${lines.join('\n')}`;
}

/**
 * Writes `err` for the user (through `write`, default stderr) and returns the process exit code.
 * Commander has printed its own usage errors, and help or version output exits with 0.
 */
export function reportError(
  err: unknown,
  write: (text: string) => void = (t) => process.stderr.write(t),
): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
  if (err instanceof McoreError && EXIT_CODES[err.code] !== 1) {
    write(`${formatMcoreError(err)}\n`);
    return EXIT_CODES[err.code] ?? 2;
  }
  const fsMessage = fsErrorMessage(err);
  if (fsMessage !== undefined) {
    write(`mcore: ${fsMessage}\n`);
    return 2;
  }
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  write(`mcore: internal error (please report it)\n${text}\n`);
  return 1;
}
