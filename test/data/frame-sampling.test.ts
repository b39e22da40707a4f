import { describe, expect, it } from 'vitest';
import { sampledTransitions, sampleIndices, transitionsFromLabels } from '../../src/data/frame-sampling.ts';

describe('sampleIndices', () => {
  it('is numpy linspace truncated', () => {
    // np.linspace(10, 20, 4) = [10, 13.333, 16.667, 20] -> [10, 13, 16, 20]
    expect(sampleIndices(10, 20, 4)).toEqual([10, 13, 16, 20]);
    // np.linspace(0, 5, 8).astype(int) = [0, 0, 1, 2, 2, 3, 4, 5]: short clips repeat frames
    expect(sampleIndices(0, 5, 8)).toEqual([0, 0, 1, 2, 2, 3, 4, 5]);
    expect(sampleIndices(3, 3, 1)).toEqual([3]);
  });
});

describe('sampledTransitions', () => {
  it('finds the first sampled frame at or after each transition', () => {
    const idx = [10, 13, 16, 20];
    expect(sampledTransitions(idx, [14, 17])).toEqual([2, 3]);
    expect(sampledTransitions(idx, [13, 16])).toEqual([1, 2]);
  });
  it('keeps transitions within [1, T-1] and ordered', () => {
    expect(sampledTransitions([10, 13, 16, 20], [5, 30])).toEqual([1, 3]);
  });
});

describe('transitionsFromLabels', () => {
  it('uses the 2nd distinct label and the last label on the sampled frames', () => {
    // frames 100..111, labels: take-off 3 (4 frames), somersault 12 (3), twist 20 (2), entry 36 (3)
    const labels = [3, 3, 3, 3, 12, 12, 12, 20, 20, 36, 36, 36];
    const idx = sampleIndices(100, 111, 6); // [100, 102, 104, 106, 108, 111]
    expect(idx).toEqual([100, 102, 104, 106, 108, 111]);
    // sampled labels: [3, 3, 12, 12, 20, 36] -> t0 = 2 (first 12), t1 = 5 (first 36)
    expect(transitionsFromLabels(idx, 100, labels, 3)).toEqual([2, 5]);
  });
});
