import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import type { ClipRecord } from '../../src/data/clips.ts';
import { evaluate } from '../../src/eval/evaluate.ts';
import { withinTypeSrcc } from '../../src/eval/metrics.ts';
import {
  honestyWarnings,
  oracleReference,
  type ReferencePoints,
  referencePoints,
  ridgeInputs,
  typeMeanPredictions,
} from '../../src/eval/reference.ts';
import { fitRidgeCV } from '../../src/eval/ridge.ts';
import { createRng } from '../../src/rng.ts';
import type { Method } from '../../src/train/method.ts';
import { expectMcoreError } from '../helpers/errors.ts';

beforeAll(async () => {
  await useBackend('cpu');
});

describe('withinTypeSrcc', () => {
  it('is the clip-weighted mean of the per-type SRCCs over types with >= 3 clips (hand-computed)', () => {
    // a: preds [1, 2, 3] vs [1, 2, 3] -> 1 (3 clips); b: preds [4, 1, 3, 2] vs [1, 2, 3, 4] -> ranks
    // [4, 1, 3, 2] vs [1, 2, 3, 4]: sum d^2 = 9 + 1 + 0 + 4 = 14 -> 1 - 6 * 14 / 60 = -0.4 (4 clips);
    // c: one clip, left out. (3 * 1 + 4 * -0.4) / 7 = 0.2
    const r = withinTypeSrcc(
      [1, 2, 3, 4, 1, 3, 2, 9],
      [1, 2, 3, 1, 2, 3, 4, 5],
      ['a', 'a', 'a', 'b', 'b', 'b', 'b', 'c'],
    );
    expect(r.srcc).toBeCloseTo(0.2, 12);
    expect([r.types, r.clips]).toEqual([2, 7]);
  });

  it('counts constant predictions within a type as 0, skips constant truths, and is NaN with no type', () => {
    // a: constant predictions -> 0 (3 clips); b: SRCC 1 (3 clips); c: true scores all equal -> skipped
    const r = withinTypeSrcc(
      [5, 5, 5, 1, 2, 3, 1, 2, 3],
      [1, 2, 3, 1, 2, 3, 7, 7, 7],
      ['a', 'a', 'a', 'b', 'b', 'b', 'c', 'c', 'c'],
    );
    expect(r.srcc).toBeCloseTo(0.5, 12);
    expect([r.types, r.clips]).toEqual([2, 6]);
    expect(withinTypeSrcc([1, 2, 3], [3, 2, 1], ['a', 'b', 'a']).srcc).toBeNaN();
    expectMcoreError(
      () => withinTypeSrcc([1, 2], [1, 2], ['a']),
      'E_INPUT',
      '1 action types for 2 predictions',
    );
  });
});

describe('typeMeanPredictions', () => {
  it('predicts the training mean of the type, and the overall training mean for an unseen type', () => {
    const train = [
      { actionType: 'a', score: 10 },
      { actionType: 'a', score: 20 },
      { actionType: 'b', score: 60 },
    ];
    expect(
      typeMeanPredictions(train, [{ actionType: 'b' }, { actionType: 'a' }, { actionType: 'z' }]),
    ).toEqual([60, 15, 30]);
  });
});

describe('fitRidgeCV', () => {
  it('matches the closed form on one standardised column (hand-computed)', () => {
    // x = 0..3: mean 1.5, sd sqrt(1.25); z = (x - 1.5) / sd, sum z^2 = 4 = trace / d, so alpha 1 gives
    // lambda 4. y = 2x + 1: sum z (y - 4) = 2 sd * 4; w = 8 sd / (4 + 4) = sd; predict(3) = sd * 1.5 / sd + 4.
    const fit = fitRidgeCV([[0], [1], [2], [3]], [1, 3, 5, 7], { alphas: [1] });
    expect(fit.lambda).toBeCloseTo(4, 12);
    expect(fit.weights[0]).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(fit.predict([3])).toBeCloseTo(5.5, 12);
  });

  it('recovers a noiseless linear map (small lambda wins) and shrinks to the mean on pure noise', () => {
    const x = Array.from({ length: 40 }, (_, i) => [Math.sin(i), Math.cos(3 * i), (i % 7) - 3]);
    const y = x.map(([a, b, c]) => 2 * a - b + 0.5 * c + 3);
    const fit = fitRidgeCV(x, y);
    expect(fit.predict([0.5, -0.5, 1])).toBeCloseTo(2 * 0.5 + 0.5 + 0.5 + 3, 2);
    expect(fit.lambda).toBeCloseTo(fitRidgeCV(x, y, { alphas: [1e-4] }).lambda, 12); // the smallest alpha
    // y independent of x: cross-validation regularises far more (alpha >= 1 instead of 1e-4)
    const rng = createRng(5);
    const noise = x.map(() => rng.normal());
    const shrunk = fitRidgeCV(x, noise);
    const smallest = fitRidgeCV(x, noise, { alphas: [1e-4] }).lambda; // 1e-4 x trace / d
    expect(shrunk.lambda / smallest).toBeGreaterThan(1e3);
  });

  it('refuses ragged rows and non-finite values', () => {
    expectMcoreError(() => fitRidgeCV([[1, 2], [3]], [1, 2]), 'E_INPUT', 'row 1 has 1 values');
    expectMcoreError(() => fitRidgeCV([[1], [Number.NaN]], [1, 2]), 'E_INPUT', 'row 1 value 0 is NaN');
  });
});

describe('ridgeInputs', () => {
  it('features [V, T, D]: means over G = floor(512 / D) time segments', () => {
    // D = 100 -> G = 5 segments of T = 8 frames: frame t in floor(5 t / 8) -> {0,1} {2,3} {4} {5,6} {7}
    const data = new Float32Array(8 * 100);
    for (let t = 0; t < 8; t++) data.fill(t, t * 100, (t + 1) * 100);
    const [row] = ridgeInputs(tf.tensor3d(data, [1, 8, 100]));
    expect(row.length).toBe(500);
    expect([0, 100, 200, 300, 400].map((i) => row[i])).toEqual([0.5, 2.5, 4, 5.5, 7]);
  });

  it('frames [V, T, H, W, 3]: time segments x a 4 x 4 grid of area means per channel', () => {
    // T = 2 -> 2 segments; 8 x 8 -> cells of 2 x 2 pixels; value = 100 t + 10 y + x + 1000 c
    const data = new Float32Array(2 * 8 * 8 * 3);
    for (let t = 0; t < 2; t++)
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++)
          for (let c = 0; c < 3; c++) data[((t * 8 + y) * 8 + x) * 3 + c] = 100 * t + 10 * y + x + 1000 * c;
    const [row] = ridgeInputs(tf.tensor5d(data, [1, 2, 8, 8, 3]));
    expect(row.length).toBe(2 * 4 * 4 * 3);
    // segment 1, cell (2, 3), channel 2: 100 + 10 * 4.5 + 6.5 + 2000
    expect(row[((1 * 4 + 2) * 4 + 3) * 3 + 2]).toBeCloseTo(2151.5, 10);
    expect(row[0]).toBeCloseTo(5.5, 10);
  });
});

describe('referencePoints', () => {
  it('type-mean and ridge on the run input, computed on the same split', async () => {
    // Feature 0 of every frame is the score / 10: the ridge ranks the test clips perfectly.
    const clip = (key: string, actionType: string, score: number): ClipRecord => ({
      key,
      actionType,
      score,
      transitions: [1, 2],
    });
    const train = Array.from({ length: 12 }, (_, i) => clip(`tr${i}`, i % 2 ? 'a' : 'b', 10 + 3 * i));
    const test = [clip('q0', 'a', 20), clip('q1', 'a', 40), clip('q2', 'a', 30), clip('q3', 'b', 5)];
    const score = new Map([...train, ...test].map((c) => [c.key, c.score]));
    const load = async (keys: string[]) =>
      tf.tensor3d(
        keys.flatMap((k) => Array.from({ length: 4 }, (_, t) => [score.get(k)! / 10, t % 2]).flat()),
        [keys.length, 4, 2],
      );
    const refs = await referencePoints(train, test, { load, batchVideos: 5, seed: 0 });
    expect(refs.ridge.srcc).toBeCloseTo(1, 12);
    expect(refs.ridge.withinTypeSrcc).toBeCloseTo(1, 12); // type a: 3 clips, ranked right
    expect([refs.ridge.input, refs.ridge.dims]).toEqual(['features', 8]); // G = min(8, T = 4) = 4 x D = 2
    // type means: a = mean(13, 19, ..., 43) = 28, b = 25: predictions [28, 28, 28, 25]
    expect(refs.typeMean.withinTypeSrcc).toBe(0);
    // ranks [3, 3, 3, 1] vs [2, 4, 3, 1]: deviations [.5, .5, .5, -1.5] and [-.5, 1.5, .5, -1.5] -> 3 / sqrt(3 * 5)
    expect(refs.typeMean.srcc).toBeCloseTo(3 / Math.sqrt(15), 12);
  });
});

describe('honestyWarnings', () => {
  const refs: ReferencePoints = {
    typeMean: { srcc: 0.81, withinTypeSrcc: 0, rl2: 0.01 },
    ridge: { srcc: 0.73, withinTypeSrcc: 0.5, rl2: 0.01, input: 'pixels', dims: 384, lambda: 1 },
  };

  it('warns, with the numbers, about a model that is the action type alone (issue 10)', () => {
    const w = honestyWarnings({ srccDn: 0.83, srccNoDn: -0.06, withinTypeSrcc: 0.1 }, refs);
    expect(w).toEqual([
      'within-type SRCC 0.100 < 0.2: the model barely ranks how well an action was done once its type is known (the type-mean predictor scores 0 here)',
      "SRCC with action types 0.830 is not above the action-type-mean predictor's 0.810 by 0.05: the ranking may be the action type alone",
      "SRCC without action types -0.060 is not above the whole-video ridge baseline's 0.730 (ridge on the pixels)",
    ]);
  });

  it('says when the split cannot measure within-type ranking (no type with 3 test clips)', () => {
    expect(honestyWarnings({ srccDn: 0.92, srccNoDn: 0.8, withinTypeSrcc: Number.NaN }, refs)).toEqual([
      'within-type SRCC is undefined: no action type has 3 test clips with different scores, so whether the model ranks execution within a type is not measured on this split',
    ]);
  });

  it('says nothing about a model that clearly beats both reference points', () => {
    expect(honestyWarnings({ srccDn: 0.92, srccNoDn: 0.8, withinTypeSrcc: 0.5 }, refs)).toEqual([]);
    // NaN SRCC dn (a test type without training clips) is no warning of its own
    expect(honestyWarnings({ srccDn: Number.NaN, srccNoDn: 0.8, withinTypeSrcc: 0.5 }, refs)).toEqual([]);
    // exactly at the within-type threshold: no warning
    expect(honestyWarnings({ srccDn: 0.875, srccNoDn: 0.74, withinTypeSrcc: 0.2 }, refs)).toEqual([]);
  });
});

describe('evaluate: both protocols from one encoding', () => {
  // A method that predicts mean(exemplar scores) + (q - e) on a noisy feature q = score + noise.
  const method: Method = {
    name: 'probe',
    specs: {},
    pairwise: true,
    loss: () => {
      throw new Error('not trained');
    },
    encode: (_p, input) => {
      const d = input.dataSync();
      return Array.from({ length: input.shape[0] }, (_, v) => ({ data: Float32Array.of(d[v * 2]) }));
    },
    predict: (_p, q, ex) =>
      ex.reduce((s, e) => s + e.score + 0.5 * (q.data[0] - e.encoding.data[0]), 0) / ex.length,
  };
  const clips = Array.from({ length: 30 }, (_, i) => ({
    key: `c${i}`,
    actionType: `t${i % 3}`,
    score: 10 * (i % 3) + ((i * 37) % 11),
    transitions: [1],
  }));
  const feature = new Map(clips.map((c, i) => [c.key, c.score + ((i * 13) % 5) - 2]));
  const train = clips.slice(0, 18);
  const test = clips.slice(18);
  const load = async (keys: string[]) =>
    tf.tensor3d(
      keys.flatMap((k) => [feature.get(k)!, 0]),
      [keys.length, 2, 1],
    );
  const opts = { exemplars: 3, seed: 4, batchVideos: 7, load };

  it('srccDn and srccNoDn equal the SRCCs of a --dn and a --no-dn evaluation', async () => {
    const dn = await evaluate(method, {}, train, test, { ...opts, dn: true });
    const noDn = await evaluate(method, {}, train, test, { ...opts, dn: false });
    expect(dn.metrics.srccDn).toBe(dn.metrics.srcc);
    expect(dn.metrics.srccNoDn).toBe(noDn.metrics.srcc);
    expect(noDn.metrics.srccDn).toBe(dn.metrics.srcc);
    expect(dn.metrics.srccDn).not.toBe(noDn.metrics.srccNoDn);
    expect(dn.metrics.withinTypeSrcc).toBeCloseTo(
      withinTypeSrcc(
        dn.predictions.map((p) => p.pred),
        dn.predictions.map((p) => p.truth),
        dn.predictions.map((p) => p.actionType),
      ).srcc,
      15,
    );
    expect(dn.metrics.aiou50).toBeNaN();
  });

  it('reports the comparisons as they go: the queries of both protocols, after the encodings', async () => {
    const events: string[] = [];
    await evaluate(method, {}, train, test, {
      ...opts,
      dn: true,
      onProgress: (d, t) => events.push(`encode ${d}/${t}`),
      onCompare: (d, t) => events.push(`compare ${d}/${t}`),
    });
    const compares = events.filter((e) => e.startsWith('compare'));
    // 12 test queries, once with dn and once without; reported per run of up to 32 queries
    expect(compares).toEqual(['compare 12/24', 'compare 24/24']);
    expect(events.findIndex((e) => e.startsWith('compare'))).toBe(events.length - 2);
  });
});

describe('oracleReference', () => {
  const clip = (key: string, actionType: string, q: number[], score: number): ClipRecord => ({
    key,
    actionType,
    score,
    transitions: [1, 2],
    stageQualities: q,
  });

  it('a score made of the stage qualities and the type is ranked perfectly; no qualities, no oracle', () => {
    const rng = createRng(3);
    const make = (n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) => {
        const q = [rng.next(), rng.next(), rng.next()];
        const type = i % 2 === 0 ? 'a' : 'b';
        return clip(`${prefix}${i}`, type, q, (type === 'a' ? 50 : 70) + 10 * q[0] + 5 * q[1] + 2 * q[2]);
      });
    const train = make(60, 'tr');
    const test = make(20, 'te');
    const oracle = oracleReference(train, test);
    expect(oracle!.srcc).toBeGreaterThan(0.99);
    expect(oracle!.withinTypeSrcc).toBeGreaterThan(0.99);
    const blind = test.map(({ stageQualities: _, ...c }) => c);
    expect(oracleReference(train, blind)).toBeUndefined();
  });
});
