import { describe, expect, it } from 'vitest';
import { EXIT_CODES, reportError } from '../../src/cli/errors.ts';
import { McoreError } from '../../src/errors.ts';

function report(err: unknown): { code: number; text: string } {
  let text = '';
  const code = reportError(err, (t) => {
    text += t;
  });
  return { code, text };
}

describe('one error path', () => {
  it('a user-caused error is exit 2 and one line without a stack', () => {
    for (const code of ['E_INPUT', 'E_CONFIG', 'E_PICKLE', 'E_WEIGHTS', 'E_NONFINITE'] as const) {
      const r = report(new McoreError(code, 'x.pkl: something\nwrong'));
      expect(r.code).toBe(2);
      expect(r.text).toBe('mcore: x.pkl: something wrong\n');
    }
  });

  it("E_SHAPE from the library's own checks is an internal error: exit 1 with the stack", () => {
    expect(EXIT_CODES.E_SHAPE).toBe(1);
    const r = report(new McoreError('E_SHAPE', 'stage pooling: 3 transition rows for 2 videos'));
    expect(r.code).toBe(1);
    expect(r.text).toMatch(
      /^mcore: internal error \(please report it\)\nMcoreError: stage pooling: 3 transition rows/,
    );
    expect(r.text).toMatch(/\n\s+at /);
    expect(report(new TypeError('x is undefined')).code).toBe(1);
  });
});
