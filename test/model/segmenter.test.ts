import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { modelConfig } from '../../src/model/config.ts';
import { biGruForward } from '../../src/model/gru.ts';
import { countParams, disposeParams, initParams } from '../../src/model/params.ts';
import { segmenterForward, segmenterSpecs } from '../../src/model/segmenter.ts';
import { decodeTransitions } from '../../src/model/transitions.ts';
import { createRng } from '../../src/rng.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('segmenterSpecs', () => {
  it('counts 1,630,978 parameters at full size with the reference names', () => {
    const specs = segmenterSpecs(modelConfig('mcore-regnety002'));
    expect(countParams(specs)).toBe(1_630_978);
    expect(specs['segmenter.fc_out.weight'].shape).toEqual([736, 2]);
    expect(specs['segmenter.fc_out.weight'].layout).toBe('linear');
    expect(specs['segmenter.fc_out.bias'].init).toEqual({ kind: 'uniform', bound: 1 / Math.sqrt(736) });
    expect(specs['segmenter.gru.weight_hh_l0_reverse'].shape).toEqual([368, 1104]);
    expect(Object.values(specs).every((s) => s.group === 'head')).toBe(true);
  });
});

describe('segmenterForward', () => {
  const cfg = modelConfig('mcore-tiny'); // D = 32, K = 3
  it('is BiGRU then Linear in test mode, with seeded dropout in training', () => {
    const params = initParams(segmenterSpecs(cfg), createRng(1));
    const F = tf.randomNormal([2, 7, 32], 0, 1, 'float32', 2) as tf.Tensor3D;
    const logits = segmenterForward(params, cfg, F, { training: false });
    expect(logits.shape).toEqual([2, 7, 2]);
    const h = biGruForward(params, 'segmenter.gru', F);
    const manual = tf.add(
      tf.matMul(tf.reshape(h, [14, 64]), params['segmenter.fc_out.weight']),
      params['segmenter.fc_out.bias'],
    );
    const a = logits.dataSync();
    const b = manual.dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    const train = (seed: number) =>
      tf.tidy(() => segmenterForward(params, cfg, F, { training: true, seed }).dataSync());
    const t1 = train(3);
    const t2 = train(3);
    const t3 = train(4);
    expect(Array.from(t1)).toEqual(Array.from(t2));
    expect(Array.from(t1)).not.toEqual(Array.from(t3));
    expect(Array.from(t1)).not.toEqual(Array.from(a));
    tf.dispose([F, logits, h, manual]);
    disposeParams(params);
  });
});

describe('decodeTransitions', () => {
  /** logits [V][T][C] with the value `hi` at the given (t, k) cells and 0 elsewhere. */
  const make = (T: number, C: number, peaks: [number, number, number][]): number[][][] => {
    const out = Array.from({ length: T }, () => new Array(C).fill(0));
    for (const [t, k, v] of peaks) out[t][k] = v;
    return [out];
  };

  it('takes the argmax of channel k inside window k (T = 8, K = 3: windows of 4)', () => {
    // Channel 0 peaks at 2 (window [0, 4)); a larger channel-0 value at 6 lies outside its window.
    // Channel 1 peaks at 5 (window [4, 8)); its value at 1 lies outside.
    const logits = make(8, 2, [
      [2, 0, 3],
      [6, 0, 9],
      [5, 1, 2],
      [1, 1, 7],
    ]);
    expect(decodeTransitions(logits, 8, 3)).toEqual([[2, 5]]);
  });

  it('turns a predicted 0 into 1 and breaks ties at the first maximum', () => {
    const logits = make(8, 2, [
      [0, 0, 5],
      [4, 1, 1],
      [6, 1, 1],
    ]);
    expect(decodeTransitions(logits, 8, 3)).toEqual([[1, 4]]);
    // All-equal logits: first frame of each window, the first one moved to 1.
    expect(decodeTransitions(make(8, 2, []), 8, 3)).toEqual([[1, 4]]);
  });

  it('reads a row-major Float32Array of several videos and any K (T = 9, K = 4: windows of 3)', () => {
    const V = 2;
    const T = 9;
    const C = 3;
    const data = new Float32Array(V * T * C);
    const set = (v: number, t: number, k: number, val: number) => {
      data[(v * T + t) * C + k] = val;
    };
    set(0, 2, 0, 1); // window [0, 3)
    set(0, 3, 1, 1); // window [3, 6)
    set(0, 8, 2, 1); // window [6, 9)
    set(1, 1, 0, -1); // negative peak: argmax is another frame (0 -> 1)
    set(1, 5, 1, 2);
    set(1, 6, 2, 2);
    expect(decodeTransitions(data, T, 4)).toEqual([
      [2, 3, 8],
      [1, 5, 6],
    ]);
  });

  it('uses windows of 48 at the reference size', () => {
    const logits = make(96, 2, [
      [30, 0, 1],
      [60, 1, 1],
      [95, 1, 0.5],
    ]);
    expect(decodeTransitions(logits, 96, 3)).toEqual([[30, 60]]);
  });
});
