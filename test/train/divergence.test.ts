import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { reportError } from '../../src/cli/errors.ts';
import { resolveConfig } from '../../src/config.ts';
import type { ClipRecord, ClipSource } from '../../src/data/clips.ts';
import { equalTransitions, mcoreMethod } from '../../src/methods/mcore-method.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState, DEFAULT_ADAM, disposeAdamState } from '../../src/train/adam.ts';
import { train } from '../../src/train/trainer.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('training on a non-finite loss', () => {
  it('stops with E_DIVERGED naming epoch and step, before updating the weights or saving a checkpoint', async () => {
    const T = 8;
    const D = 32; // featureDim of mcore-tiny
    const cfg = resolveConfig({ model: { frames: T, decoder: { layers: 1, heads: 4, mlpRatio: 2 } } });
    const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss, scoreScale: 10 });
    const params = initParams(method.specs, createRng(0));
    const values = () =>
      Object.fromEntries(Object.entries(params).map(([k, p]) => [k, Array.from(p.dataSync())]));
    let lastGood = values();
    const rng = createRng(4);
    // One clip's score is 1e300: float32 Infinity in the loss (the manifest of 1e300).
    const clips: ClipRecord[] = Array.from({ length: 12 }, (_, i) => ({
      key: `c${i}`,
      actionType: 'A',
      score: i === 5 ? 1e300 : 50 + i,
      transitions: equalTransitions(T, 3),
    }));
    const features = new Map(
      clips.map((c) => [c.key, Float32Array.from({ length: T * D }, () => rng.normal())]),
    );
    const source: ClipSource = {
      clips,
      load: async (keys) => {
        const data = new Float32Array(keys.length * T * D);
        keys.forEach((k, i) => {
          data.set(features.get(k)!, i * T * D);
        });
        return tf.tensor3d(data, [keys.length, T, D]);
      },
    };
    const tensors = tf.memory().numTensors;
    const state = { epoch: 0, adam: createAdamState(), history: [] };
    let saved = 0;
    const err = await expectMcoreRejection(
      train(method, params, source, {
        epochs: 2,
        batchPairs: 4,
        seed: 1,
        dn: false,
        adam: { ...DEFAULT_ADAM, lr: 1e-3 },
        state,
        onProgress: (e) => {
          if (e.kind === 'step') lastGood = values();
        },
        saveCheckpoint: async () => {
          saved++;
          return 'x';
        },
      }),
      'E_DIVERGED',
      /^training diverged at epoch 1, step [1-3]\/3: the loss is (NaN|Infinity) \(/,
      'no checkpoint was written for this epoch',
      "Check the scores' range (this batch: ",
      'to 1e+300',
      'lower the learning rate (train.lr=0.001)',
    );
    expect(saved).toBe(0);
    expect(state.epoch).toBe(0);
    disposeAdamState(state.adam);
    expect(tf.memory().numTensors).toBe(tensors); // the failed step left no tensors behind
    // The weights are those after the last good step: the failing step did not update them.
    const after = values();
    for (const [k, v] of Object.entries(lastGood)) expect(after[k], k).toEqual(v);
    expect(Object.values(after).every((v) => v.every(Number.isFinite))).toBe(true);
    const lines: string[] = [];
    expect(reportError(err, (t) => lines.push(t))).toBe(2);
    expect(lines.join('').trim().split('\n')).toHaveLength(1);
    disposeParams(params);
  });

  it('stops before checkpointing weights that became non-finite under a finite loss', async () => {
    const T = 8;
    const D = 32;
    const cfg = resolveConfig({ model: { frames: T, decoder: { layers: 1, heads: 4, mlpRatio: 2 } } });
    const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss, scoreScale: 10 });
    const params = initParams(method.specs, createRng(0));
    const rng = createRng(4);
    const clips: ClipRecord[] = Array.from({ length: 8 }, (_, i) => ({
      key: `c${i}`,
      actionType: 'A',
      score: 50 + i,
      transitions: equalTransitions(T, 3),
    }));
    const data = Float32Array.from({ length: 8 * T * D }, () => rng.normal());
    const source: ClipSource = {
      clips,
      load: async (keys) => tf.tensor3d(data.slice(0, keys.length * T * D), [keys.length, T, D]),
    };
    const name = Object.keys(params).find((k) => params[k] instanceof tf.Variable)!;
    const state = { epoch: 0, adam: createAdamState(), history: [] };
    let saved = 0;
    await expectMcoreRejection(
      train(method, params, source, {
        epochs: 1,
        batchPairs: 4,
        seed: 1,
        dn: false,
        adam: { ...DEFAULT_ADAM, lr: 1e-3 },
        state,
        saveCheckpoint: async () => {
          saved++;
          return 'x';
        },
        // As if the last update of the epoch had produced NaN weights.
        onProgress: (e) => {
          if (e.kind === 'step' && e.step === e.steps) {
            const nan = tf.fill(params[name].shape, Number.NaN);
            (params[name] as tf.Variable).assign(nan);
            nan.dispose();
          }
        },
      }),
      'E_DIVERGED',
      `training diverged in epoch 1: parameter ${name} holds non-finite values; no checkpoint was written`,
    );
    expect(saved).toBe(0);
    expect(state.history).toEqual([]);
    disposeAdamState(state.adam);
    disposeParams(params);
  });
});
