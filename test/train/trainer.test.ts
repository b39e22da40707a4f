import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import type { ClipRecord } from '../../src/data/clips.ts';
import { evaluate } from '../../src/eval/evaluate.ts';
import { equalTransitions, mcoreMethod } from '../../src/methods/mcore-method.ts';
import { initParams } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState, DEFAULT_ADAM } from '../../src/train/adam.ts';
import { readCheckpointInfo } from '../../src/train/checkpoint.ts';
import { trainStep } from '../../src/train/step.ts';
import { type RunRecord, trainRun } from '../../src/verbs/run.ts';
import { trainKilledInSecondEpoch, weightsOf } from '../helpers/run-weights.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

/** A tiny end-to-end run on SynthDive: 24 clips of 8 frames at 32x32, 3 epochs. */
function tinyRecord(): RunRecord {
  return {
    dataset: 'synthdive:seed=5,clips=24,size=32',
    config: resolveConfig({
      model: { frames: 8, imageSize: 32, decoder: { layers: 1, heads: 4, mlpRatio: 2 } },
      train: { epochs: 3, batchPairs: 4, lr: 3e-3, seed: 11, scoreScale: 10 },
    }),
  };
}

describe('trainRun', () => {
  it('gives the same weights twice from the same seed, and a killed run resumes to the same end', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-train-'));
    const a = path.join(base, 'a');
    const b = path.join(base, 'b');
    const c = path.join(base, 'c');
    const rec = tinyRecord();
    const tensorsBefore = tf.memory().numTensors;
    await trainRun(rec, { out: a, resume: false });
    expect(tf.memory().numTensors).toBe(tensorsBefore); // params and Adam moments disposed
    await trainRun(rec, { out: b, resume: false });
    const wa = await weightsOf(a);
    expect(await weightsOf(b)).toEqual(wa);

    // Kill run c during its 2nd epoch (after the first checkpoint), then resume it.
    await trainKilledInSecondEpoch(rec, c);
    expect((await readCheckpointInfo(c)).epoch).toBe(1);
    expect(tf.memory().numTensors).toBe(tensorsBefore); // nothing left behind by the killed run
    const state = await trainRun(rec, { out: c, resume: true });
    expect(state.epoch).toBe(3);
    expect(await weightsOf(c)).toEqual(wa);
    const log = (await readFile(path.join(c, 'log.jsonl'), 'utf8')).trim().split('\n');
    expect(log.map((l) => JSON.parse(l).epoch)).toEqual([0, 1, 2]);
    // Extending a finished run by one epoch continues from its last checkpoint.
    const more = { ...rec, config: { ...rec.config, train: { ...rec.config.train, epochs: 4 } } };
    expect((await trainRun(more, { out: c, resume: true })).epoch).toBe(4);
    expect((await readCheckpointInfo(c)).epoch).toBe(4);
    await expect(
      trainRun({ ...rec, dataset: 'synthdive:seed=6,clips=24,size=32' }, { out: c, resume: true }),
    ).rejects.toThrow(
      'different dataset or config than the run was started with (dataset "synthdive:seed=5,clips=24,size=32" -> "synthdive:seed=6,clips=24,size=32")',
    );
  });
});

describe('training a head on features', () => {
  /** Features whose 2nd stage carries the score: [T, D] per clip, transitions at T/3 and 2T/3. */
  function synthetic(n: number, T: number, D: number, seed: number) {
    const rng = createRng(seed);
    const clips: (ClipRecord & { features: Float32Array; split: 'train' | 'test' })[] = [];
    for (let i = 0; i < n; i++) {
      const quality = rng.next();
      const t = equalTransitions(T, 3);
      const f = new Float32Array(T * D);
      for (let s = 0; s < T; s++) {
        const stage = s < t[0] ? 0 : s < t[1] ? 1 : 2;
        for (let d = 0; d < D; d++)
          f[s * D + d] =
            0.3 * rng.normal() + (stage === 1 && d < 4 ? 2 * quality : 0) + (d === 8 + stage ? 1 : 0);
      }
      clips.push({
        key: `c${i}`,
        actionType: 'A',
        score: 50 + 40 * quality,
        transitions: t,
        features: f,
        split: i < n * 0.75 ? 'train' : 'test',
      });
    }
    return clips;
  }

  it('lowers the loss, keeps tf.memory flat, and raises the test SRCC', async () => {
    const T = 12;
    const D = 32; // featureDim of mcore-tiny
    const cfg = resolveConfig({ model: { frames: T, decoder: { layers: 1, heads: 4, mlpRatio: 2 } } });
    const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss, scoreScale: 10 });
    const params = initParams(method.specs, createRng(0));
    const clips = synthetic(64, T, D, 3);
    const train = clips.filter((c) => c.split === 'train');
    const test = clips.filter((c) => c.split === 'test');
    const byKey = new Map(clips.map((c) => [c.key, c]));
    const load = async (keys: string[]) => {
      const data = new Float32Array(keys.length * T * D);
      keys.forEach((k, i) => {
        data.set(byKey.get(k)!.features, i * T * D);
      });
      return tf.tensor3d(data, [keys.length, T, D]);
    };
    const evalSrcc = async () =>
      (
        await evaluate(method, params, train, test, {
          exemplars: 5,
          dn: true,
          seed: 1,
          batchVideos: 16,
          load,
        })
      ).metrics.srcc;
    const before = await evalSrcc();
    const adam = createAdamState();
    const rng = createRng(9);
    const losses: number[] = [];
    let tensors = -1;
    for (let step = 0; step < 120; step++) {
      const q = Array.from({ length: 8 }, () => train[rng.int(train.length)]);
      const e = Array.from({ length: 8 }, () => train[rng.int(train.length)]);
      const input = await load([...q, ...e].map((c) => c.key));
      const terms = trainStep(
        method,
        params,
        method.specs,
        {
          input,
          transitions: [...q, ...e].map((c) => c.transitions),
          scores: [...q, ...e].map((c) => c.score),
        },
        adam,
        { ...DEFAULT_ADAM, lr: 3e-3 },
        step,
      );
      input.dispose();
      losses.push(terms.aqa);
      if (step === 2) tensors = tf.memory().numTensors;
      if (step > 2) expect(tf.memory().numTensors).toBe(tensors);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-20))).toBeLessThan(0.5 * mean(losses.slice(0, 20)));
    const after = await evalSrcc();
    expect(after).toBeGreaterThan(0.8);
    expect(after).toBeGreaterThan(before + 0.2);

    // evaluate compares in ONNX Runtime (the scorer graph); tfjs's predict gives the same scores.
    const all = await load(clips.map((c) => c.key));
    const enc = method.encode(params, all);
    all.dispose();
    const comparisons = test.map((q, i) => ({
      query: enc[clips.indexOf(q)],
      exemplars: train
        .slice(i % 7, (i % 7) + 1 + (i % 5))
        .map((e) => ({ encoding: enc[clips.indexOf(e)], score: e.score })),
    }));
    const comparer = await method.openComparer!(params);
    const fast = await comparer.predict(comparisons);
    await comparer.dispose();
    expect(fast).toHaveLength(test.length);
    comparisons.forEach((c, i) => {
      expect(Math.abs(fast[i] - method.predict(params, c.query, c.exemplars))).toBeLessThan(1e-4);
    });
    const viaTfjs = await evaluate({ ...method, openComparer: undefined }, params, train, test, {
      exemplars: 5,
      dn: true,
      seed: 1,
      batchVideos: 16,
      load,
    });
    expect(viaTfjs.metrics.srcc).toBeCloseTo(after, 6);
  });
});
