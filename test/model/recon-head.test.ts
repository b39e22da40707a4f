import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { mcoreMethod } from '../../src/methods/mcore-method.ts';
import { initParams } from '../../src/model/params.ts';
import { reconGeometry, reconLoss, reconThumbnails } from '../../src/model/recon-head.ts';
import { stagePool } from '../../src/model/stage-pool.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState, DEFAULT_ADAM } from '../../src/train/adam.ts';
import { trainStep } from '../../src/train/step.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

const rng = createRng(7);
const randoms = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

describe('stage reconstruction head (L_rec)', () => {
  it('pools frames to an 8 x 8 grid whatever their size', () => {
    expect(reconGeometry(32)).toEqual({ window: 4, side: 8 });
    expect(reconGeometry(112)).toEqual({ window: 14, side: 8 });
    expect(reconGeometry(50)).toEqual({ window: 6, side: 8 });
    expect(reconGeometry(4)).toEqual({ window: 1, side: 4 });
  });

  it('thumbnails are block means of each frame (against loops)', () => {
    const [V, T, S] = [2, 3, 16];
    const px = randoms(V * T * S * S * 3);
    const thumbs = reconThumbnails(tf.tensor5d(px, [V, T, S, S, 3]));
    expect(thumbs.shape).toEqual([V, T, 8 * 8 * 3]);
    const got = thumbs.dataSync();
    for (const [v, t, y, x, c] of [
      [0, 0, 0, 0, 0],
      [1, 2, 7, 3, 2],
      [1, 1, 4, 7, 1],
    ]) {
      let sum = 0;
      for (let dy = 0; dy < 2; dy++)
        for (let dx = 0; dx < 2; dx++) sum += px[(((v * T + t) * S + 2 * y + dy) * S + 2 * x + dx) * 3 + c];
      expect(got[(v * T + t) * 192 + (y * 8 + x) * 3 + c]).toBeCloseTo(sum / 4, 5);
    }
  });

  it('L_rec is the mean squared error of a linear map of the tokens against the stage-pooled thumbnails', () => {
    const [V, T, S, K, L, D] = [2, 6, 8, 3, 2, 4];
    const P = 8 * 8 * 3;
    const frames = tf.tensor5d(randoms(V * T * S * S * 3), [V, T, S, S, 3]);
    const tokens = tf.tensor3d(randoms(V * K * L * D), [V, K * L, D]);
    const w = randoms(D * P);
    const b = randoms(P);
    const params = { 'recon.weight': tf.tensor2d(w, [D, P]), 'recon.bias': tf.tensor1d(b) };
    const transitions = [
      [2, 4],
      [1, 5],
    ];
    const got = reconLoss(params, tokens, frames, transitions).dataSync()[0];
    // Reference: the frames at 8 px are their own thumbnails, pooled with the same stage matrices.
    const target = stagePool(tf.reshape(frames, [V, T, P]) as tf.Tensor3D, transitions, L).dataSync();
    const tk = tokens.dataSync();
    let sum = 0;
    for (let i = 0; i < V * K * L; i++)
      for (let p = 0; p < P; p++) {
        let r = b[p];
        for (let d = 0; d < D; d++) r += tk[i * D + d] * w[d * P + p];
        sum += (r - target[i * P + p]) ** 2;
      }
    expect(got).toBeCloseTo(sum / (V * K * L * P), 3);
  });

  describe('in the MCoRe method', () => {
    const cfg = resolveConfig({ model: { frames: 8, imageSize: 16 }, loss: { reconWeight: 3 } });

    it('adds weight x L_rec to the total end to end; refused head-only; absent at weight 0', () => {
      const method = mcoreMethod(cfg.model, { backbone: true, loss: cfg.loss, scoreScale: 10 });
      expect(method.specs['recon.weight'].shape[1]).toBe(8 * 8 * 3);
      const params = initParams(method.specs, createRng(0));
      const input = tf.tensor5d(randoms(4 * 8 * 16 * 16 * 3), [4, 8, 16, 16, 3]);
      const batch = {
        input,
        transitions: [
          [2, 5],
          [3, 6],
          [2, 4],
          [1, 6],
        ],
        scores: [50, 60, 55, 40],
      };
      const terms = tf.tidy(() => {
        const t = method.loss(params, batch, { seed: 1 });
        return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.dataSync()[0]]));
      });
      expect(terms.recon).toBeGreaterThan(0);
      expect(terms.total).toBeCloseTo(terms.aqa + terms.tas + terms.cont + terms.recon, 3);
      expect(() => mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss })).toThrow(/head-only/);
      const off = mcoreMethod(cfg.model, { backbone: true, loss: { ...cfg.loss, reconWeight: 0 } });
      expect(off.specs['recon.weight']).toBeUndefined();
    });

    it('teaches the backbone the stage pictures: L_rec falls by more than 30% in 40 steps', () => {
      const method = mcoreMethod(cfg.model, { backbone: true, loss: cfg.loss, scoreScale: 10 });
      const params = initParams(method.specs, createRng(0));
      const adam = createAdamState();
      // A bright square whose position moves with a per-video offset: the pictures vary across videos.
      const video = (offset: number) => {
        const px = new Float32Array(8 * 16 * 16 * 3).fill(-1);
        for (let t = 0; t < 8; t++)
          for (let y = 0; y < 6; y++)
            for (let x = 0; x < 6; x++) {
              const yy = (offset + t + y) % 16;
              const xx = (2 * offset + x) % 16;
              for (let c = 0; c < 3; c++) px[((t * 16 + yy) * 16 + xx) * 3 + c] = 1.5;
            }
        return px;
      };
      const recon: number[] = [];
      for (let step = 0; step < 40; step++) {
        const offsets = [0, 1, 2, 3].map(() => Math.floor(rng.next() * 10));
        const data = new Float32Array(4 * 8 * 16 * 16 * 3);
        offsets.forEach((o, v) => {
          data.set(video(o), v * 8 * 16 * 16 * 3);
        });
        const b = {
          input: tf.tensor5d(data, [4, 8, 16, 16, 3]),
          transitions: offsets.map(() => [3, 5]),
          scores: offsets.map((o) => 40 + o),
        };
        const terms = trainStep(method, params, method.specs, b, adam, { ...DEFAULT_ADAM, lr: 3e-3 }, step);
        b.input.dispose();
        recon.push(terms.recon);
      }
      const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
      expect(mean(recon.slice(-8))).toBeLessThan(0.7 * mean(recon.slice(0, 8)));
    });
  });
});
