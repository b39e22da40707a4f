import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_OBJECTS,
  DecodeBudget,
  decodedBytesLimit,
  resolveLimits,
} from '../../src/io/limits.ts';
import { parsePickle } from '../../src/io/pickle.ts';
import { deepLists } from '../fuzz/pickles.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const MiB = 1024 ** 2;

describe('read limits', () => {
  it('defaults, the environment and options, in that order of precedence', () => {
    expect(resolveLimits({}, {})).toEqual({ maxDepth: DEFAULT_MAX_DEPTH, maxObjects: DEFAULT_MAX_OBJECTS });
    const env = { MCORE_MAX_DEPTH: '5000', MCORE_MAX_OBJECTS: '12', MCORE_MAX_DECODED_BYTES: '1000' };
    expect(resolveLimits({}, env)).toEqual({ maxDepth: 5000, maxObjects: 12, maxDecodedBytes: 1000 });
    expect(resolveLimits({ maxDepth: 7 }, env).maxDepth).toBe(7);
    expectMcoreError(() => resolveLimits({}, { MCORE_MAX_DEPTH: '-3' }), 'E_CONFIG', 'MCORE_MAX_DEPTH=-3');
    expectMcoreError(() => resolveLimits({}, { MCORE_MAX_OBJECTS: 'lots' }), 'E_CONFIG', 'positive integer');
  });

  it('the decoded-bytes budget is 64 x the input, within [64 MiB, 4 GiB], unless set outright', () => {
    expect(decodedBytesLimit({ maxDepth: 1, maxObjects: 1 }, 1000)).toBe(64 * MiB);
    expect(decodedBytesLimit({ maxDepth: 1, maxObjects: 1 }, 10 * MiB)).toBe(640 * MiB);
    expect(decodedBytesLimit({ maxDepth: 1, maxObjects: 1 }, 1024 * MiB)).toBe(4 * 1024 * MiB);
    expect(decodedBytesLimit({ maxDepth: 1, maxObjects: 1, maxDecodedBytes: 5 }, 1024 * MiB)).toBe(5);
    const budget = new DecodeBudget(
      'f.bin',
      'E_WEIGHTS',
      { maxDepth: 1, maxObjects: 1, maxDecodedBytes: 100 },
      10,
    );
    budget.charge(60, 'a');
    expectMcoreError(
      () => budget.charge(50, 'tensor b'),
      'E_WEIGHTS',
      'f.bin: tensor b would decode to 50 bytes (110 in all), more than a file of 10 bytes may decode to (limit 100;',
      'MCORE_MAX_DECODED_BYTES',
    );
    expectMcoreError(() => budget.charge(Number.NaN, 'c'), 'E_WEIGHTS', 'c would decode');
  });

  it('a trusted file deeper than the default reads once its limit is raised', () => {
    const bytes = deepLists(2, 1500);
    expectMcoreError(
      () => parsePickle(bytes),
      'E_PICKLE',
      'nested deeper than 1000 levels',
      'MCORE_MAX_DEPTH',
    );
    let v = parsePickle(bytes, { limits: { maxDepth: 2000 } });
    let depth = 0;
    while (Array.isArray(v) && v.length > 0) {
      v = v[0];
      depth++;
    }
    expect(depth).toBe(1499);
  });
});
