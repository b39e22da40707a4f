import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackendName, useBackend } from '../../src/backend.ts';
import { BN_EPS } from '../../src/model/batchnorm.ts';
import { gsm, gsmConv1x1, gsmFold, gsmGate, gsmSpecs } from '../../src/model/gsm.ts';
import { conv2d } from '../../src/model/kernels.ts';
import { countParams, type Params } from '../../src/model/params.ts';
import { createRng, type Rng } from '../../src/rng.ts';

const P = 'blk.conv1.gsm';
// Small example: V = 2 videos of T = 3 frames, 2x2 pixels, C = 40 channels -> fold 12, halves of 6
// (h/2 = 3, so the shuffle's (2, 3) -> (3, 2) transpose is not its own inverse).
const V = 2;
const T = 3;
const S = 2;
const C = 40;
const FOLD = 12;
const H = FOLD / 2;

beforeAll(async () => {
  await useBackend('cpu');
  await useBackend('wasm');
});

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** Index of x [V*T, S, S, C] (frames of a video consecutive). */
const at = (v: number, t: number, p: number, c: number, ch = C) => ((v * T + t) * S * S + p) * ch + c;

/** Plain GSM params: zero conv (gate 0), identity BN; `over` replaces entries. */
function gsmParams(over: Record<string, Float32Array> = {}): Params {
  const specs = gsmSpecs(C, P);
  const out: Params = {};
  for (const [name, s] of Object.entries(specs)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const fill = s.init.kind === 'ones' ? 1 : 0;
    out[name] = tf.tensor(over[name] ?? new Float32Array(n).fill(fill), s.shape);
  }
  return out;
}

/** Old channel feeding new channel c of the shuffled fold: new 2j + a <- old a*(h/2) + j per half. */
function shuffledSource(c: number): number {
  if (c >= FOLD) return c;
  const half = Math.floor(c / H);
  const n = c % H;
  return half * H + (n % 2) * (H / 2) + Math.floor(n / 2);
}

describe('gsmFold and gsmSpecs', () => {
  it('routes ceil((C div 4) / 4) * 4 channels', () => {
    expect([32, 24, 56, 152, 368, 40, 20, 16, 8].map(gsmFold)).toEqual([8, 8, 16, 40, 92, 12, 8, 4, 4]);
  });

  it('names the conv3D and BatchNorm3d params in torch semantics', () => {
    const specs = gsmSpecs(368, P);
    expect(specs[`${P}.conv3D.weight`]).toMatchObject({
      shape: [3, 3, 3, 46, 2],
      layout: 'conv3d',
      trainable: true,
    });
    expect(specs[`${P}.conv3D.bias`].shape).toEqual([2]);
    expect(specs[`${P}.bn.running_var`]).toMatchObject({ shape: [92], trainable: false });
    // 27 * 92 conv weights + 2 biases + 2 * 92 BN scale/shift.
    expect(countParams(specs)).toBe(2670);
  });
});

describe('gsm', () => {
  const x = randn(createRng(5), V * T * S * S * C);

  for (const b of ['wasm', 'cpu'] as BackendName[]) {
    it(`with a zero gate is the channel shuffle of the fold channels (${b})`, async () => {
      await useBackend(b);
      const params = gsmParams();
      const out = tf.tidy(() => gsm(params, P, tf.tensor4d(x, [V * T, S, S, C]), T).dataSync());
      const expected = new Float32Array(x.length);
      for (let i = 0; i < x.length; i += C)
        for (let c = 0; c < C; c++) expected[i + c] = x[i + shuffledSource(c)];
      expect(Array.from(out)).toEqual(Array.from(expected));
      expect([0, 1, 2, 3, 4, 5].map(shuffledSource)).toEqual([0, 3, 1, 4, 2, 5]); // new 2j + a <- old 3a + j
      tf.dispose(Object.values(params));
    });
  }

  it('with a constant gate shifts half 1 toward the past and half 2 toward the future', async () => {
    await useBackend('wasm');
    const g = [0.5, -0.25];
    const params = gsmParams({ [`${P}.conv3D.bias`]: Float32Array.from(g.map(Math.atanh)) });
    const out = tf.tidy(() => gsm(params, P, tf.tensor4d(x, [V * T, S, S, C]), T).dataSync());
    // Hand-computed: out1[t] = g0 x1[t+1] + (1 - g0) x1[t]; out2[t] = g1 x2[t-1] + (1 - g1) x2[t],
    // zero beyond each video's ends, then shuffled; channels >= fold unchanged.
    const mixed = (v: number, t: number, p: number, c: number): number => {
      if (c >= FOLD) return x[at(v, t, p, c)];
      const k = c < H ? 0 : 1;
      const src = k === 0 ? t + 1 : t - 1;
      const shifted = src >= 0 && src < T ? g[k] * x[at(v, src, p, c)] : 0;
      return shifted + (1 - g[k]) * x[at(v, t, p, c)];
    };
    for (let v = 0; v < V; v++)
      for (let t = 0; t < T; t++)
        for (let p = 0; p < S * S; p++)
          for (let c = 0; c < C; c++) {
            expect(out[at(v, t, p, c)]).toBeCloseTo(mixed(v, t, p, shuffledSource(c)), 5);
          }
    // Spot check by hand: video 1, frame 2 (its last), pixel 0, new channel 0 = old channel 0 (half 1):
    // nothing comes from the future, so out = (1 - 0.5) x.
    expect(out[at(1, 2, 0, 0)]).toBeCloseTo(0.5 * x[at(1, 2, 0, 0)], 6);
    // Video 1, frame 0, new channel 6 = old channel 6 (half 2): nothing from the past (not from video 0).
    expect(out[at(1, 0, 0, 6)]).toBeCloseTo(1.25 * x[at(1, 0, 0, 6)], 6);
    // Video 0, frame 1, pixel 3, new channel 7 = old channel 9 (half 2, a = 1, j = 0) gets frame 0's value.
    const want = -0.25 * x[at(0, 0, 3, 9)] + 1.25 * x[at(0, 1, 3, 9)];
    expect(out[at(0, 1, 3, 7)]).toBeCloseTo(want, 5);
    tf.dispose(Object.values(params));
  });

  it('gate equals torch Conv3d(groups 2, padding 1) on ReLU(BN3d(x)), from a torch-layout weight', async () => {
    const rng = createRng(9);
    const torchW = randn(rng, 2 * H * 27, 0.3); // torch (2, h, 3, 3, 3)
    const ours = new Float32Array(torchW.length); // DHWIO [3, 3, 3, h, 2]
    for (let k = 0; k < 2; k++)
      for (let i = 0; i < H; i++)
        for (let d = 0; d < 3; d++)
          for (let a = 0; a < 3; a++)
            for (let b = 0; b < 3; b++) {
              ours[(((d * 3 + a) * 3 + b) * H + i) * 2 + k] = torchW[(((k * H + i) * 3 + d) * 3 + a) * 3 + b];
            }
    const bn = {
      weight: randn(rng, FOLD, 0.5).map((v) => 1 + v),
      bias: randn(rng, FOLD, 0.5),
      mean: randn(rng, FOLD, 0.5),
      var: randn(rng, FOLD).map((v) => 0.5 + v * v),
    };
    const bias = Float32Array.from([0.1, -0.2]);
    const xf = randn(rng, V * T * S * S * FOLD);
    // Float64 reference on a [V, T, S(y), S(x), fold] grid.
    const act = (v: number, t: number, yy: number, xx: number, c: number): number => {
      if (t < 0 || t >= T || yy < 0 || yy >= S || xx < 0 || xx >= S) return 0;
      const xv = xf[at(v, t, yy * S + xx, c, FOLD)];
      const n = ((xv - bn.mean[c]) / Math.sqrt(bn.var[c] + BN_EPS)) * bn.weight[c] + bn.bias[c];
      return Math.max(0, n);
    };
    const expected: number[] = [];
    for (let v = 0; v < V; v++)
      for (let t = 0; t < T; t++)
        for (let yy = 0; yy < S; yy++)
          for (let xx = 0; xx < S; xx++)
            for (let k = 0; k < 2; k++) {
              let z = bias[k];
              for (let i = 0; i < H; i++)
                for (let d = 0; d < 3; d++)
                  for (let a = 0; a < 3; a++)
                    for (let b = 0; b < 3; b++) {
                      const wv = torchW[(((k * H + i) * 3 + d) * 3 + a) * 3 + b];
                      z += wv * act(v, t + d - 1, yy + a - 1, xx + b - 1, k * H + i);
                    }
              expected.push(Math.tanh(z));
            }
    for (const b of ['wasm', 'cpu'] as BackendName[]) {
      await useBackend(b);
      const params = gsmParams({
        [`${P}.conv3D.weight`]: ours,
        [`${P}.conv3D.bias`]: bias,
        [`${P}.bn.weight`]: bn.weight,
        [`${P}.bn.bias`]: bn.bias,
        [`${P}.bn.running_mean`]: bn.mean,
        [`${P}.bn.running_var`]: bn.var,
      });
      const gate = tf.tidy(() => gsmGate(params, P, tf.tensor4d(xf, [V * T, S, S, FOLD]), T).dataSync());
      expect(gate.length).toBe(expected.length);
      let err = 0;
      for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(gate[i] - expected[i]));
      expect(err, b).toBeLessThan(1e-5);
      tf.dispose(Object.values(params));
    }
  });
});

describe('gsmConv1x1', () => {
  it('equals conv2d(gsm(x), w) in value and gradient, and gradients pass finite differences', async () => {
    await useBackend('wasm');
    const rng = createRng(21);
    const x = tf.tensor4d(randn(rng, V * T * S * S * C), [V * T, S, S, C]);
    const w = tf.tensor4d(randn(rng, C * 6, 0.5), [1, 1, C, 6]);
    const r = tf.tensor4d(randn(rng, V * T * S * S * 6), [V * T, S, S, 6]);
    const base = gsmParams();
    const cw = tf.tensor(randn(rng, 27 * H * 2, 0.3), [3, 3, 3, H, 2]);
    const cb = tf.tensor1d([0.3, -0.2]);
    const bw = tf.tensor1d(randn(rng, FOLD, 0.3).map((v) => 1 + v));
    const paramsOf = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): Params => ({
      ...base,
      [`${P}.conv3D.weight`]: a,
      [`${P}.conv3D.bias`]: b,
      [`${P}.bn.weight`]: c,
    });
    const fused = (xv: tf.Tensor, wv: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(
        tf.mul(gsmConv1x1(paramsOf(a, b, c), P, xv as tf.Tensor4D, wv as tf.Tensor4D, T), r),
      ) as tf.Scalar;
    const plain = (xv: tf.Tensor, wv: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(
        tf.mul(conv2d(gsm(paramsOf(a, b, c), P, xv as tf.Tensor4D, T), wv as tf.Tensor4D), r),
      ) as tf.Scalar;
    const inputs = [x, w, cw, cb, bw];
    expect(fused(x, w, cw, cb, bw).dataSync()[0]).toBeCloseTo(plain(x, w, cw, cb, bw).dataSync()[0], 4);
    const gf = tf.grads(fused)(inputs);
    const gp = tf.grads(plain)(inputs);
    for (let i = 0; i < inputs.length; i++) {
      const a = gf[i].dataSync();
      const b = gp[i].dataSync();
      let err = 0;
      let scale = 1;
      for (let j = 0; j < a.length; j++) {
        err = Math.max(err, Math.abs(a[j] - b[j]));
        scale = Math.max(scale, Math.abs(b[j]));
      }
      expect(err / scale, `input ${i}`).toBeLessThan(1e-5);
      expect(
        Array.from(b).some((v) => v !== 0),
        `input ${i} has a gradient`,
      ).toBe(true);
    }
    // Central differences (float64 sums of the float32 loss) at a few coordinates of every input.
    const eps = 1e-2;
    for (let i = 0; i < inputs.length; i++) {
      const data = inputs[i].dataSync() as Float32Array;
      const an = gf[i].dataSync();
      for (let trial = 0; trial < 3; trial++) {
        const j = rng.int(data.length);
        const lossAt = (delta: number) =>
          tf.tidy(() => {
            const d = data.slice();
            d[j] += delta;
            const args = inputs.slice();
            args[i] = tf.tensor(d, inputs[i].shape);
            return fused(args[0], args[1], args[2], args[3], args[4]).dataSync()[0];
          });
        const fd = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
        const scale = Math.max(1, Math.abs(fd), Math.abs(an[j]));
        expect(Math.abs(fd - an[j]) / scale, `input ${i}[${j}]`).toBeLessThan(1e-2);
      }
    }
  });
});
