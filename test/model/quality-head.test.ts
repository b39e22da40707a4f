import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { sampleClips } from '../../src/data/clips.ts';
import { createSynthDive } from '../../src/data/synthdive/index.ts';
import { equalTransitions, mcoreMethod } from '../../src/methods/mcore-method.ts';
import { initParams } from '../../src/model/params.ts';
import { qualityHeadForward, qualityLoss } from '../../src/model/quality-head.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState, DEFAULT_ADAM } from '../../src/train/adam.ts';
import { trainStep } from '../../src/train/step.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('stage-quality head (L_q)', () => {
  it('averages each stage tokens and applies its own linear map: hand-computed values', () => {
    // V = 1, K = 2, L = 2, D = 2: stage means [2, 3] and [5, -1]
    const tokens = tf.tensor3d([1, 2, 3, 4, 4, -2, 6, 0], [1, 4, 2]);
    const params = {
      'quality.weight': tf.tensor2d([1, 2, -1, 0.5], [2, 2]),
      'quality.bias': tf.tensor1d([0.5, 1]),
    };
    const q = qualityHeadForward(params, tokens, 2);
    expect(Array.from(q.dataSync())).toEqual([2 + 6 + 0.5, -5 - 0.5 + 1]);
    expect(qualityLoss(q, [[8, -4]]).dataSync()[0]).toBeCloseTo((0.25 + 0.25) / 2, 6);
  });

  it('SynthDive clips carry their hidden qualities through sampling', () => {
    const ds = createSynthDive({ seed: 3, clips: 18, width: 16, height: 16 });
    const clips = sampleClips(ds, 8);
    expect(clips[4].stageQualities).toEqual(ds.quality(clips[4].key));
  });

  describe('in the MCoRe method', () => {
    const T = 12;
    const D = 32;
    const cfg = resolveConfig({
      model: { frames: T, decoder: { layers: 1, heads: 4, mlpRatio: 2 } },
      loss: { qualityWeight: 5 },
    });
    const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss, scoreScale: 10 });
    const rng = createRng(4);
    /** 8 pairs of features whose stage s carries quality q_s in dims 0-3. */
    const batch = () => {
      const q = Array.from({ length: 16 }, () => [rng.next(), rng.next(), rng.next()]);
      const t = equalTransitions(T, 3);
      const f = new Float32Array(16 * T * D);
      q.forEach((qv, v) => {
        for (let s = 0; s < T; s++) {
          const stage = s < t[0] ? 0 : s < t[1] ? 1 : 2;
          for (let d = 0; d < D; d++)
            f[(v * T + s) * D + d] = 0.3 * rng.normal() + (d < 4 ? 2 * qv[stage] : 0);
        }
      });
      return {
        input: tf.tensor3d(f, [16, T, D]),
        transitions: q.map(() => t),
        scores: q.map((qv) => 50 + 10 * (qv[0] + qv[1] + qv[2])),
        stageQualities: q,
      };
    };

    it('adds weight x L_q to the total, and refuses a batch without qualities', () => {
      const params = initParams(method.specs, createRng(0));
      expect(method.specs['quality.weight'].shape).toEqual([3, D]);
      const b = batch();
      const terms = tf.tidy(() => {
        const t = method.loss(params, b, { seed: 1 });
        return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.dataSync()[0]]));
      });
      expect(terms.quality).toBeGreaterThan(0);
      expect(terms.total).toBeCloseTo(terms.aqa + terms.tas + terms.cont + terms.quality, 4);
      const { stageQualities: _, ...without } = b;
      expect(() => method.loss(params, without, { seed: 1 })).toThrow(/only SynthDive has/);
      const off = mcoreMethod(cfg.model, { backbone: false, loss: { ...cfg.loss, qualityWeight: 0 } });
      expect(off.specs['quality.weight']).toBeUndefined();
    });

    it('learns the qualities: L_q falls by more than half in 60 steps', () => {
      const params = initParams(method.specs, createRng(0));
      const adam = createAdamState();
      const quality: number[] = [];
      for (let step = 0; step < 60; step++) {
        const b = batch();
        const terms = trainStep(method, params, method.specs, b, adam, { ...DEFAULT_ADAM, lr: 3e-3 }, step);
        b.input.dispose();
        quality.push(terms.quality);
      }
      const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
      expect(mean(quality.slice(-10))).toBeLessThan(0.5 * mean(quality.slice(0, 10)));
    });
  });
});
