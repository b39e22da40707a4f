/**
 * Errors that a user can cause carry a stable `code`, name the file or key at fault, and say how to
 * fix it. The CLI maps codes to one line and exit code 2; the library never prints or exits.
 */
export type McoreErrorCode =
  | 'E_CONFIG'
  | 'E_DATA_LAYOUT'
  | 'E_WEIGHTS'
  | 'E_SHAPE'
  | 'E_INPUT'
  | 'E_PICKLE'
  | 'E_BACKEND'
  /** A write failed for a reason the user can fix (full disk, permissions); see src/io/fs-errors.ts. */
  | 'E_IO'
  /** Another mcore process holds the lock of a run folder or bundle (src/io/lock.ts). */
  | 'E_BUSY'
  /** Training produced a non-finite loss. */
  | 'E_DIVERGED'
  /** A number the user's data or weights produced is NaN or infinite (a score is never printed so). */
  | 'E_NONFINITE';

export class McoreError extends Error {
  readonly code: McoreErrorCode;
  constructor(code: McoreErrorCode, message: string) {
    super(message);
    this.name = 'McoreError';
    this.code = code;
  }
}

/** Throws E_SHAPE unless `actual` equals `expected` (-1 in `expected` matches any size). */
export function assertShape(what: string, actual: readonly number[], expected: readonly number[]): void {
  const ok = actual.length === expected.length && expected.every((e, i) => e === -1 || e === actual[i]);
  if (!ok) {
    const fmt = (s: readonly number[]) => `[${s.map((d) => (d === -1 ? '*' : String(d))).join(', ')}]`;
    throw new McoreError('E_SHAPE', `${what}: expected shape ${fmt(expected)}, found ${fmt(actual)}`);
  }
}
