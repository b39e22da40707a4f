/**
 * Assertions for the project's coded errors: the call must throw (or the promise reject) a McoreError
 * with `code` whose message contains every string part and matches every RegExp part. They fail when
 * nothing is thrown. Return the error for further checks.
 */
import { expect } from 'vitest';
import { McoreError } from '../../src/errors.ts';

function check(err: unknown, code: string, parts: readonly (string | RegExp)[]): McoreError {
  expect(err).toBeInstanceOf(McoreError);
  expect((err as McoreError).code).toBe(code);
  const msg = (err as McoreError).message;
  for (const p of parts) {
    if (typeof p === 'string') expect(msg).toContain(p);
    else expect(msg).toMatch(p);
  }
  return err as McoreError;
}

/** `fn()` throws McoreError `code` with `parts` in its message. */
export function expectMcoreError(fn: () => unknown, code: string, ...parts: (string | RegExp)[]): McoreError {
  try {
    fn();
  } catch (err) {
    return check(err, code, parts);
  }
  throw new Error(`expected a McoreError ${code} (${parts.join(', ')}), nothing was thrown`);
}

/** `p` (or the promise `p()` returns) rejects with McoreError `code` with `parts` in its message. */
export async function expectMcoreRejection(
  p: Promise<unknown> | (() => unknown),
  code: string,
  ...parts: (string | RegExp)[]
): Promise<McoreError> {
  const settled = await Promise.resolve()
    .then(() => (typeof p === 'function' ? p() : p))
    .then(
      () => ({ rejected: false as const }),
      (err: unknown) => ({ rejected: true as const, err }),
    );
  if (!settled.rejected) {
    throw new Error(`expected a McoreError ${code} (${parts.join(', ')}), the call succeeded`);
  }
  return check(settled.err, code, parts);
}
