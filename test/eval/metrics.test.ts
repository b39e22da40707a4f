import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aiou, averageRanks, mse, rl2, srcc, tiou } from '../../src/eval/metrics.ts';
import { readNpy } from '../../src/io/npy.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const expectInputError = (fn: () => unknown, ...parts: (string | RegExp)[]) =>
  expectMcoreError(fn, 'E_INPUT', ...parts);

const repoRoot = path.resolve(import.meta.dirname, '../..');
const official = path.resolve(repoRoot, '../shared/data/mcore-official');

describe('averageRanks', () => {
  it('gives tied values the mean of their ranks (scipy rankdata average)', () => {
    // scipy.stats.rankdata([3, 1, 4, 1, 5, 9, 2, 6]) = [4, 1.5, 5, 1.5, 6, 8, 3, 7]
    expect(Array.from(averageRanks([3, 1, 4, 1, 5, 9, 2, 6]))).toEqual([4, 1.5, 5, 1.5, 6, 8, 3, 7]);
    // three-way tie at the top: ranks 2, 3, 4 -> 3
    expect(Array.from(averageRanks([0, 7, 7, 7]))).toEqual([1, 3, 3, 3]);
  });
});

describe('srcc', () => {
  it('is 1 for a monotone relation and -1 for a reversed one', () => {
    expect(srcc([1, 2, 3, 4], [10, 100, 1000, 10000])).toBeCloseTo(1, 15);
    expect(srcc([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 15);
  });

  it('without ties equals 1 - 6 sum d^2 / (n (n^2 - 1))', () => {
    // ranks [1, 2, 3, 4] vs [1, 2, 4, 3]: sum d^2 = 2 -> 1 - 12 / 60 = 0.8
    expect(srcc([1, 2, 3, 4], [10, 20, 40, 30])).toBeCloseTo(0.8, 15);
  });

  it('handles ties with average ranks (hand computed, equals scipy.stats.spearmanr)', () => {
    // pred [1, 2, 2, 3, 5] -> ranks [1, 2.5, 2.5, 4, 5]; truth [2, 1, 4, 4, 6] -> [2, 1, 3.5, 3.5, 5].
    // Both means are 3; deviations x = [-2, -.5, -.5, 1, 2], y = [-1, -2, .5, .5, 2];
    // sxy = 2 + 1 - .25 + .5 + 4 = 7.25, sxx = syy = 9.5 -> 7.25 / 9.5 = 29/38 = 0.763157894736842
    // (scipy.stats.spearmanr gives 0.7631578947368421).
    expect(srcc([1, 2, 2, 3, 5], [2, 1, 4, 4, 6])).toBeCloseTo(29 / 38, 14);
    // scipy.stats.spearmanr([3,1,4,1,5,9,2,6], [2,7,1,8,2,8,1,8]) = 0.19885368120992467
    expect(srcc([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8])).toBeCloseTo(0.19885368120992467, 14);
  });

  it('is NaN when one side is constant (undefined, as scipy)', () => {
    expect(srcc([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  it('rejects mismatched lengths, empty input, a single value and NaN', () => {
    expectInputError(() => srcc([1, 2], [1, 2, 3]), /2 values but ground truth has 3/);
    expectInputError(() => srcc([], []), /empty input/);
    expectInputError(() => srcc([1], [2]), /at least 2/);
    expectInputError(() => srcc([1, Number.NaN], [1, 2]), /predictions\[1\] is NaN/);
    expectInputError(() => srcc([1, 2], [1, Number.POSITIVE_INFINITY]), /ground truth\[1\] is Infinity/);
  });
});

describe('rl2 and mse', () => {
  it('divide the error by the ground-truth range', () => {
    // truth range 10 - 0 = 10; errors [0, 1, -2] -> ((0)^2 + (0.1)^2 + (0.2)^2) / 3 = 0.05 / 3
    expect(rl2([0, 4, 12], [0, 5, 10])).toBeCloseTo(0.05 / 3, 15);
    expect(mse([0, 4, 12], [0, 5, 10])).toBeCloseTo(5 / 3, 14);
    // the range comes from the truth, not the predictions
    expect(rl2([100, -100], [1, 3])).toBeCloseTo(((1 - 100) ** 2 / 4 + (3 - -100) ** 2 / 4) / 2, 10);
  });

  it('rejects zero range, NaN, empty and mismatched input', () => {
    expectInputError(() => rl2([1, 2], [3, 3]), /zero range/);
    expectInputError(() => rl2([1, 2], [3]), /2 values but ground truth has 1/);
    expectInputError(() => mse([], []), /empty/);
    expectInputError(() => mse([Number.NaN], [1]), /NaN/);
  });
});

describe('tiou and aiou', () => {
  it('computes 1-D IoU with interval lengths e - s (reference segment_iou)', () => {
    expect(tiou([0, 10], [5, 15])).toBeCloseTo(5 / 15, 15);
    expect(tiou([0, 10], [0, 10])).toBe(1);
    expect(tiou([0, 4], [6, 9])).toBe(0);
    expect(tiou([2, 8], [0, 10])).toBeCloseTo(0.6, 15);
    expect(tiou([3, 3], [3, 3])).toBe(0);
    expectInputError(() => tiou([5, 1], [0, 1]), /start <= end/);
  });

  it('counts videos whose flight interval reaches the threshold (>=)', () => {
    const truth = [
      [10, 50],
      [20, 60],
      [0, 40],
      [30, 40],
    ];
    const pred = [
      [10, 50], // 1
      [30, 60], // 30 / 40 = 0.75
      [20, 40], // 20 / 40 = 0.5
      [0, 10], // 0
    ];
    expect(aiou(pred, truth, 0.5)).toBe(3 / 4);
    expect(aiou(pred, truth, 0.75)).toBe(2 / 4);
  });

  it('uses first..last transition for K > 3 stages', () => {
    // [10, 30, 50] -> [10, 50]; [10, 20, 30] -> [10, 30]: IoU 20 / 40 = 0.5
    expect(aiou([[10, 20, 30]], [[10, 30, 50]], 0.5)).toBe(1);
    expect(aiou([[10, 20, 30]], [[10, 30, 50]], 0.51)).toBe(0);
  });

  it('rejects mismatched and empty input', () => {
    expectInputError(() => aiou([[1, 2]], [], 0.5), /1 predicted videos but 0/);
    expectInputError(() => aiou([], [], 0.5), /empty/);
    expectInputError(() => aiou([[]], [[1, 2]], 0.5), /empty/);
  });
});

describe.skipIf(!existsSync(official))(
  `official MCoRe test predictions (749 videos; skipped when ${official} is absent)`,
  () => {
    it('reproduce SRCC 0.927014 and R-l2 0.0032757', async () => {
      const pred = await readNpy(path.join(official, 'pred.npy'));
      const truth = await readNpy(path.join(official, 'true.npy'));
      expect(pred.shape).toEqual([749]);
      const p = pred.data as Float64Array;
      const t = truth.data as Float64Array;
      // scipy.stats.spearmanr: 0.9270135084384711; numpy R-l2 0.0032756531968739723, MSE 35.702523427880294
      expect(srcc(p, t)).toBeCloseTo(0.927014, 6);
      expect(Math.abs(srcc(p, t) - 0.9270135084384711)).toBeLessThan(1e-13);
      expect(rl2(p, t)).toBeCloseTo(0.0032757, 6);
      expect(Math.abs(rl2(p, t) - 0.0032756531968739723)).toBeLessThan(1e-15);
      expect(mse(p, t)).toBeCloseTo(35.702523427880294, 10);
    });
  },
);
