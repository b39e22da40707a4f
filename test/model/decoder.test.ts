import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { type ModelConfig, modelConfig } from '../../src/model/config.ts';
import { decoderForward, decoderSpecs } from '../../src/model/decoder.ts';
import { countParams, type Params } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';

type Mat = number[][];

/** erf by its Taylor series (float64; exact to ~1e-13 for |x| < 4). */
function erf(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x);
  let sum = 0;
  let term = x; // x^(2n+1) (-1)^n / n!
  for (let n = 0; n < 80; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const matmul = (a: Mat, w: Mat): Mat =>
  a.map((row) => w[0].map((_, o) => row.reduce((s, v, i) => s + v * w[i][o], 0)));
const addBias = (a: Mat, b: number[]): Mat => a.map((row) => row.map((v, i) => v + b[i]));
const add = (a: Mat, b: Mat): Mat => a.map((row, r) => row.map((v, i) => v + b[r][i]));
function layerNorm(a: Mat, g: number[], b: number[]): Mat {
  return a.map((row) => {
    const mean = row.reduce((s, v) => s + v, 0) / row.length;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * g[i] + b[i]);
  });
}

/** Scalar reference of one sequence through the decoder; P holds every param as nested arrays. */
function refDecoder(P: Record<string, Mat | number[]>, layers: number, heads: number, q: Mat, m: Mat): Mat {
  const D = q[0].length;
  const dh = D / heads;
  const M = (k: string) => P[k] as Mat;
  const Vc = (k: string) => P[k] as number[];
  let x = q;
  for (let i = 0; i < layers; i++) {
    const p = `decoder.layers.${i}`;
    const qn = layerNorm(x, Vc(`${p}.norm_q.weight`), Vc(`${p}.norm_q.bias`));
    const mn = layerNorm(m, Vc(`${p}.norm_v.weight`), Vc(`${p}.norm_v.bias`));
    const Q = matmul(qn, M(`${p}.attn.q_map.weight`));
    const K = matmul(mn, M(`${p}.attn.k_map.weight`));
    const Vv = matmul(mn, M(`${p}.attn.v_map.weight`));
    const att: Mat = Q.map(() => new Array(D).fill(0));
    for (let h = 0; h < heads; h++) {
      for (let a = 0; a < Q.length; a++) {
        const s = K.map((krow) => {
          let dot = 0;
          for (let d = h * dh; d < (h + 1) * dh; d++) dot += Q[a][d] * krow[d];
          return dot / Math.sqrt(dh);
        });
        const mx = Math.max(...s);
        const e = s.map((v) => Math.exp(v - mx));
        const z = e.reduce((u, v) => u + v, 0);
        for (let b = 0; b < K.length; b++) {
          for (let d = h * dh; d < (h + 1) * dh; d++) att[a][d] += (e[b] / z) * Vv[b][d];
        }
      }
    }
    x = add(x, addBias(matmul(att, M(`${p}.attn.proj.weight`)), Vc(`${p}.attn.proj.bias`)));
    const n2 = layerNorm(x, Vc(`${p}.norm2.weight`), Vc(`${p}.norm2.bias`));
    const hid = addBias(matmul(n2, M(`${p}.mlp.fc1.weight`)), Vc(`${p}.mlp.fc1.bias`)).map((row) =>
      row.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
    );
    x = add(x, addBias(matmul(hid, M(`${p}.mlp.fc2.weight`)), Vc(`${p}.mlp.fc2.bias`)));
  }
  return x;
}

function tinyConfig(D: number, layers: number, heads: number): ModelConfig {
  const cfg = modelConfig('mcore-tiny');
  cfg.backbone.widths = [8, 8, 8, D];
  cfg.decoder = { layers, heads, mlpRatio: 2 };
  return cfg;
}

/** Random values for every param (LayerNorm affine included), as tensors and nested arrays. */
function randomParams(
  cfg: ModelConfig,
  seed: number,
): { params: Params; plain: Record<string, Mat | number[]> } {
  const rng = createRng(seed);
  const params: Params = {};
  const plain: Record<string, Mat | number[]> = {};
  for (const [name, s] of Object.entries(decoderSpecs(cfg))) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const vals = Array.from(
      { length: n },
      () => rng.normal() * 0.5 + (name.endsWith('norm_q.weight') ? 1 : 0),
    );
    params[name] = tf.tensor(vals, s.shape);
    plain[name] =
      s.shape.length === 1
        ? vals
        : Array.from({ length: s.shape[0] }, (_, r) => vals.slice(r * s.shape[1], (r + 1) * s.shape[1]));
  }
  return { params, plain };
}

beforeAll(async () => {
  await useBackend('wasm');
});

describe('decoderForward', () => {
  for (const [heads, layers] of [
    [1, 1],
    [1, 2],
    [2, 2],
  ]) {
    it(`matches a scalar reference (D = 4, ${heads} head(s), ${layers} layer(s))`, () => {
      const cfg = tinyConfig(4, layers, heads);
      const { params, plain } = randomParams(cfg, 10 + heads + layers);
      const rng = createRng(99);
      const seqs = (n: number, L: number) =>
        Array.from({ length: n }, () =>
          Array.from({ length: L }, () => [0, 1, 2, 3].map(() => rng.normal())),
        );
      const q = seqs(2, 3);
      const m = seqs(2, 4);
      const out = decoderForward(params, cfg, tf.tensor3d(q), tf.tensor3d(m));
      expect(out.shape).toEqual([2, 3, 4]);
      const got = out.arraySync();
      for (let n = 0; n < 2; n++) {
        const want = refDecoder(plain, layers, heads, q[n], m[n]);
        for (const [a, row] of want.entries()) {
          for (const [d, v] of row.entries()) expect(got[n][a][d]).toBeCloseTo(v, 4);
        }
      }
      tf.dispose([out, ...Object.values(params)]);
    });
  }

  it('lets attention mix the memory: changing the memory changes every query token', () => {
    const cfg = tinyConfig(4, 1, 1);
    const { params } = randomParams(cfg, 3);
    const q = tf.randomNormal([1, 2, 4], 0, 1, 'float32', 1) as tf.Tensor3D;
    const m1 = tf.randomNormal([1, 3, 4], 0, 1, 'float32', 2) as tf.Tensor3D;
    const m2 = tf.randomNormal([1, 3, 4], 0, 1, 'float32', 3) as tf.Tensor3D;
    const a = tf.tidy(() => decoderForward(params, cfg, q, m1).dataSync());
    const b = tf.tidy(() => decoderForward(params, cfg, q, m2).dataSync());
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeGreaterThan(1e-6);
    tf.dispose([q, m1, m2, ...Object.values(params)]);
  });
});

describe('decoder gradients', () => {
  it('equal central finite differences for inputs and every parameter (2 heads, 1 layer)', () => {
    const cfg = tinyConfig(4, 1, 2);
    const { params } = randomParams(cfg, 21);
    const q = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 4) as tf.Tensor3D;
    const m = tf.randomNormal([2, 2, 4], 0, 1, 'float32', 5) as tf.Tensor3D;
    const w = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 6);
    const names = Object.keys(params).sort();
    const loss = (p: Params, qq: tf.Tensor, mm: tf.Tensor) =>
      tf.sum(tf.mul(decoderForward(p, cfg, qq as tf.Tensor3D, mm as tf.Tensor3D), w));
    const grads = tf.grads((qq: tf.Tensor, mm: tf.Tensor, ...ws: tf.Tensor[]) => {
      const p: Params = {};
      names.forEach((n, i) => {
        p[n] = ws[i];
      });
      return loss(p, qq, mm);
    })([q, m, ...names.map((n) => params[n])]);
    const eps = 1e-2;
    const value = (p: Params, qq: tf.Tensor, mm: tf.Tensor) => {
      const l = loss(p, qq, mm);
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    const check = (g: tf.Tensor, t: tf.Tensor, evalAt: (pt: tf.Tensor) => number, what: string) => {
      const gv = g.dataSync();
      const base = t.dataSync();
      for (let i = 0; i < base.length; i += 3) {
        const at = (delta: number) => {
          const c = base.slice();
          c[i] += delta;
          const pt = tf.tensor(c, t.shape);
          const v = evalAt(pt);
          pt.dispose();
          return v;
        };
        const num = (at(eps) - at(-eps)) / (2 * eps);
        expect(Math.abs(gv[i] - num), `${what}[${i}]`).toBeLessThan(5e-3 * Math.max(1, Math.abs(num)));
      }
    };
    check(grads[0], q, (pt) => value(params, pt, m), 'q');
    check(grads[1], m, (pt) => value(params, q, pt), 'm');
    for (const [k, n] of names.entries()) {
      check(grads[k + 2], params[n], (pt) => value({ ...params, [n]: pt }, q, m), n);
    }
    tf.dispose([...grads, q, m, w, ...Object.values(params)]);
  });
});

describe('decoderSpecs', () => {
  it('counts 4,888,512 parameters at full size with the reference names', () => {
    const specs = decoderSpecs(modelConfig('mcore-regnety002'));
    expect(countParams(specs)).toBe(4_888_512);
    const layer0 = Object.keys(specs)
      .filter((k) => k.startsWith('decoder.layers.0.'))
      .map((k) => k.slice('decoder.layers.0.'.length))
      .sort();
    expect(layer0).toEqual(
      [
        'attn.k_map.weight',
        'attn.proj.bias',
        'attn.proj.weight',
        'attn.q_map.weight',
        'attn.v_map.weight',
        'mlp.fc1.bias',
        'mlp.fc1.weight',
        'mlp.fc2.bias',
        'mlp.fc2.weight',
        'norm2.bias',
        'norm2.weight',
        'norm_q.bias',
        'norm_q.weight',
        'norm_v.bias',
        'norm_v.weight',
      ].sort(),
    );
    expect(specs['decoder.layers.2.mlp.fc1.weight'].shape).toEqual([368, 1472]);
    expect(specs['decoder.layers.1.norm_v.weight'].init).toEqual({ kind: 'ones' });
  });
});
