import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { McoreError } from '../../src/errors.ts';
import { openGradientPool } from '../../src/methods/gradient-pool.ts';
import { createMethod, type MethodName } from '../../src/methods/registry.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import type { PairBatch } from '../../src/train/method.ts';
import { type GradientPool, pairShares, parallelGrads, shareSeed } from '../../src/train/parallel.ts';
import { stepGrads } from '../../src/train/step.ts';
import { trainRun } from '../../src/verbs/run.ts';
import { trainKilledInSecondEpoch, weightsOf } from '../helpers/run-weights.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('pairShares', () => {
  it('splits B pairs into near-equal contiguous non-empty ranges', () => {
    expect(pairShares(8, 2)).toEqual([
      [0, 4],
      [4, 8],
    ]);
    expect(pairShares(5, 2)).toEqual([
      [0, 2],
      [2, 5],
    ]);
    expect(pairShares(2, 4)).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(pairShares(7, 1)).toEqual([[0, 7]]);
    expect(shareSeed(5, 0)).toBe(5);
    expect(shareSeed(5, 1)).not.toBe(5);
  });
});

describe('data-parallel gradients', () => {
  // Head-only MCoRe on features [2B, T, D], no dropout: the shares' weighted gradients are the batch's.
  const T = 12;
  const D = 32;
  const cfg = resolveConfig({
    model: { frames: T, segmenter: { dropout: 0 }, decoder: { layers: 1, heads: 4, mlpRatio: 2 } },
    train: { scoreScale: 10 },
  });
  const options = { backbone: false, loss: cfg.loss, scoreScale: 10 };
  const pools: GradientPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  function batchOf(B: number, seed: number, badTransitionAt?: number): PairBatch {
    const rng = createRng(seed);
    return {
      input: tf.randomNormal([2 * B, T, D], 0, 1, 'float32', seed),
      transitions: Array.from({ length: 2 * B }, (_, v) => [
        v === badTransitionAt ? T + 3 : 2 + rng.int(3),
        7 + rng.int(3),
      ]),
      scores: Array.from({ length: 2 * B }, () => 40 + 50 * rng.next()),
    };
  }

  for (const [name, threads, B] of [
    ['mcore', 2, 6],
    ['mcore', 3, 5],
    ['core', 2, 4],
    ['regression', 2, 3],
  ] as [MethodName, number, number][]) {
    it(`${name}: ${threads} threads give the one-thread gradients of ${B} pairs`, async () => {
      const method = createMethod(name, cfg.model, options);
      const params = initParams(method.specs, createRng(3));
      const pool = await openGradientPool({ method: name, model: cfg.model, options, params, threads });
      pools.push(pool);
      const batch = batchOf(B, 7);
      const one = stepGrads(method, params, batch, 11);
      const tensors = tf.memory().numTensors;
      const par = await parallelGrads(method, params, batch, 11, pool);
      expect(tf.memory().numTensors).toBe(tensors + Object.keys(par.grads).length);
      expect(Object.keys(par.grads).sort()).toEqual(Object.keys(one.grads).sort());
      for (const [k, v] of Object.entries(one.terms)) expect(par.terms[k]).toBeCloseTo(v, 4);
      const largest = Math.max(...Object.values(one.grads).map((g) => tf.max(tf.abs(g)).dataSync()[0]));
      for (const k of Object.keys(one.grads)) {
        const a = one.grads[k].dataSync();
        const b = par.grads[k].dataSync();
        // Floor: gradients that are zero up to rounding (the segmenter's output bias under L_tas).
        const scale = Math.max(1e-3 * largest, ...Array.from(a, Math.abs));
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
        expect(worst, k).toBeLessThan(1e-4);
      }
      tf.dispose([batch.input, ...Object.values(one.grads), ...Object.values(par.grads)]);
      disposeParams(params);
    });
  }

  it('a worker that cannot start is E_BACKEND naming the fix', async () => {
    const method = createMethod('mcore', cfg.model, options);
    const params = initParams(method.specs, createRng(3));
    const err = await openGradientPool({
      method: 'mcore',
      model: cfg.model,
      options,
      params,
      threads: 2,
      backend: 'webgl' as 'wasm', // not a backend of Node's tfjs: the worker's start fails
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McoreError);
    expect((err as McoreError).code).toBe('E_BACKEND');
    expect((err as McoreError).message).toMatch(
      /gradient worker thread could not start .*--set train.threads=1/,
    );
    disposeParams(params);
  });

  it("reports a worker's error with its code, and the pool works on", async () => {
    const method = createMethod('mcore', cfg.model, options);
    const params = initParams(method.specs, createRng(3));
    const pool = await openGradientPool({ method: 'mcore', model: cfg.model, options, params, threads: 2 });
    pools.push(pool);
    // Pair 3 of 4 (row 3, the second worker's share): its transition is past the last frame.
    const bad = batchOf(4, 8, 3);
    const tensors = tf.memory().numTensors;
    const err = await parallelGrads(method, params, bad, 1, pool).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McoreError);
    expect((err as McoreError).code).toBe('E_INPUT');
    expect((err as McoreError).message).toMatch(/transitions \[15, 9\]/);
    expect(tf.memory().numTensors).toBe(tensors);
    const good = batchOf(4, 9);
    const { grads } = await parallelGrads(method, params, good, 1, pool);
    expect(Object.values(grads).every((g) => (g.dataSync() as Float32Array).every(Number.isFinite))).toBe(
      true,
    );
    tf.dispose([bad.input, good.input, ...Object.values(grads)]);
    disposeParams(params);
  });
});

describe('trainRun with train.threads = 2', () => {
  it('trains end to end, gives the same weights twice, and resumes to the same end', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-threads-'));
    const record = {
      dataset: 'synthdive:seed=5,clips=24,size=32',
      config: resolveConfig({
        model: { frames: 8, imageSize: 32, decoder: { layers: 1, heads: 4, mlpRatio: 2 } },
        train: { epochs: 2, batchPairs: 4, lr: 3e-3, seed: 11, scoreScale: 10, threads: 2 },
      }),
    };
    const tensors = tf.memory().numTensors;
    const a = await trainRun(record, { out: path.join(base, 'a'), resume: false });
    expect(tf.memory().numTensors).toBe(tensors);
    await trainRun(record, { out: path.join(base, 'b'), resume: false });
    // Killed in its 2nd epoch (the pool closes with it), then resumed.
    const c = path.join(base, 'c');
    await trainKilledInSecondEpoch(record, c);
    expect(tf.memory().numTensors).toBe(tensors);
    await trainRun(record, { out: c, resume: true });
    expect(a.history).toHaveLength(2);
    expect(a.history[1].loss).toBeLessThan(a.history[0].loss);
    const wa = await weightsOf(path.join(base, 'a'));
    expect(await weightsOf(path.join(base, 'b'))).toEqual(wa);
    expect(await weightsOf(c)).toEqual(wa);
    // The pool did the work: one thread draws other dropout masks and ends elsewhere.
    const one = { ...record, config: { ...record.config, train: { ...record.config.train, threads: 1 } } };
    await trainRun(one, { out: path.join(base, 'one'), resume: false });
    expect(await weightsOf(path.join(base, 'one'))).not.toEqual(wa);
    // Resuming with another thread count would change the dropout masks: refused, naming the setting.
    await expect(trainRun(one, { out: c, resume: true })).rejects.toThrow('(config.train.threads 2 -> 1)');
  });
});
