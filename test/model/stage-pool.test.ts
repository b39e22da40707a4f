import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { McoreError } from '../../src/errors.ts';
import { interpolationMatrix } from '../../src/model/interpolation.ts';
import { stagePool } from '../../src/model/stage-pool.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

/** F[v][t] = [t + 100 v, 10 t] so that an interpolated position p reads back as [p + 100 v, 10 p]. */
function ramp(V: number, T: number): tf.Tensor3D {
  return tf.tensor3d(
    Array.from({ length: V }, (_, v) => Array.from({ length: T }, (_, t) => [t + 100 * v, 10 * t])),
  );
}

describe('stagePool', () => {
  it('resamples each stage with aligned corners, incl. n = 1 and n = 2 (T = 6, L = 5)', () => {
    // Transitions [1, 3]: stages [0] (n = 1), [1, 2] (n = 2), [3, 4, 5] (n = 3).
    // Sample i of a stage of n frames starting at a sits at a + i (n - 1) / 4.
    const out = stagePool(ramp(1, 6), [[1, 3]], 5);
    expect(out.shape).toEqual([1, 15, 2]);
    const positions = [0, 0, 0, 0, 0, 1, 1.25, 1.5, 1.75, 2, 3, 3.5, 4, 4.5, 5];
    const got = out.arraySync()[0];
    positions.forEach((p, i) => {
      expect(got[i][0]).toBeCloseTo(p, 5);
      expect(got[i][1]).toBeCloseTo(10 * p, 4);
    });
    out.dispose();
  });

  it('handles several videos, longer stages and K = 4 (T = 12, L = 3)', () => {
    // Video 0: [0, 4), [4, 5), [5, 9), [9, 12); video 1: [0, 2), [2, 7), [7, 11), [11, 12).
    const out = stagePool(
      ramp(2, 12),
      [
        [4, 5, 9],
        [2, 7, 11],
      ],
      3,
    );
    expect(out.shape).toEqual([2, 12, 2]);
    const want = [
      [0, 1.5, 3, 4, 4, 4, 5, 6.5, 8, 9, 10, 11],
      [0, 0.5, 1, 2, 4, 6, 7, 8.5, 10, 11, 11, 11],
    ];
    const got = out.arraySync();
    for (const [v, row] of want.entries()) {
      for (const [i, p] of row.entries()) {
        expect(got[v][i][0]).toBeCloseTo(p + 100 * v, 4);
        expect(got[v][i][1]).toBeCloseTo(10 * p, 4);
      }
    }
    out.dispose();
  });

  it('builds rows that sum to 1 with at most two neighbouring frames', () => {
    const m = interpolationMatrix([3, 10], 16, 5);
    expect(m.length).toBe(15 * 16);
    // Stage [3, 10), n = 7: sample 1 at 3 + 1.5 mixes frames 4 and 5 half and half.
    expect(m[6 * 16 + 4]).toBeCloseTo(0.5, 6);
    expect(m[6 * 16 + 5]).toBeCloseTo(0.5, 6);
    for (let r = 0; r < 15; r++) {
      const row = Array.from(m.subarray(r * 16, (r + 1) * 16));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(row.filter((x) => x !== 0).length).toBeLessThanOrEqual(2);
    }
  });

  it('passes gradients back through the interpolation weights', () => {
    // d/dF sum(W * pool(F)) = M^T W per video.
    const F = tf.randomNormal([2, 6, 3], 0, 1, 'float32', 1) as tf.Tensor3D;
    const W = tf.randomNormal([2, 15, 3], 0, 1, 'float32', 2);
    const tr = [
      [1, 3],
      [2, 5],
    ];
    const g = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(stagePool(f as tf.Tensor3D, tr, 5), W)))(F);
    const gv = g.arraySync() as number[][][];
    const wv = W.arraySync() as number[][][];
    tr.forEach((t, v) => {
      const m = interpolationMatrix(t, 6, 5);
      for (let f = 0; f < 6; f++) {
        for (let d = 0; d < 3; d++) {
          let want = 0;
          for (let r = 0; r < 15; r++) want += m[r * 6 + f] * wv[v][r][d];
          expect(gv[v][f][d]).toBeCloseTo(want, 5);
        }
      }
    });
    tf.dispose([F, W, g]);
  });

  it('rejects transitions that leave a stage empty', () => {
    const F = ramp(1, 6);
    expect(() => stagePool(F, [[3, 3]])).toThrow(McoreError);
    expect(() => stagePool(F, [[0, 3]])).toThrow(/strictly increasing/);
    expect(() => stagePool(F, [[2, 6]])).toThrow(McoreError);
    F.dispose();
  });
});
