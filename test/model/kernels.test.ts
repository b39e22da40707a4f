import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackendName, useBackend } from '../../src/backend.ts';
import { McoreError } from '../../src/errors.ts';
import { conv2d, matMul, transpose2d } from '../../src/model/kernels.ts';
import { createRng, type Rng } from '../../src/rng.ts';

const BACKENDS: BackendName[] = ['wasm', 'cpu'];

beforeAll(async () => {
  await useBackend('cpu');
  await useBackend('wasm');
});

function randn(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

interface Case {
  n: number;
  h: number;
  w: number;
  cin: number;
  k: number;
  cout: number;
  stride: number;
  pad: number;
  groups: number;
  what: string;
}

/** Direct float64 convolution with PyTorch semantics and its exact gradients for L = sum(y * r). */
function reference(c: Case, x: Float32Array, w: Float32Array, r?: Float64Array) {
  const ho = Math.floor((c.h + 2 * c.pad - c.k) / c.stride) + 1;
  const wo = Math.floor((c.w + 2 * c.pad - c.k) / c.stride) + 1;
  const gi = c.cin / c.groups;
  const go = c.cout / c.groups;
  const y = new Float64Array(c.n * ho * wo * c.cout);
  const gx = new Float64Array(x.length);
  const gw = new Float64Array(w.length);
  const xi = (n: number, yy: number, xx: number, ch: number) => ((n * c.h + yy) * c.w + xx) * c.cin + ch;
  const wi = (a: number, b: number, i: number, o: number) => ((a * c.k + b) * gi + i) * c.cout + o;
  for (let n = 0; n < c.n; n++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let o = 0; o < c.cout; o++) {
          const out = ((n * ho + oy) * wo + ox) * c.cout + o;
          const g = Math.floor(o / go);
          let acc = 0;
          for (let a = 0; a < c.k; a++)
            for (let b = 0; b < c.k; b++) {
              const iy = oy * c.stride + a - c.pad;
              const ix = ox * c.stride + b - c.pad;
              if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
              for (let i = 0; i < gi; i++) {
                const xk = xi(n, iy, ix, g * gi + i);
                const wk = wi(a, b, i, o);
                acc += x[xk] * w[wk];
                if (r) {
                  gx[xk] += r[out] * w[wk];
                  gw[wk] += r[out] * x[xk];
                }
              }
            }
          y[out] = acc;
        }
  return { y, gx, gw, shape: [c.n, ho, wo, c.cout] };
}

/** max |a - b| / max(1, max |b|). */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let m = 1;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

const CASES: Case[] = [
  { n: 2, h: 7, w: 7, cin: 4, k: 3, cout: 6, stride: 2, pad: 1, groups: 2, what: '3x3/2 groups 2 on 7x7' },
  { n: 2, h: 7, w: 7, cin: 4, k: 3, cout: 6, stride: 1, pad: 1, groups: 1, what: '3x3/1 dense' },
  { n: 1, h: 9, w: 9, cin: 3, k: 3, cout: 5, stride: 2, pad: 1, groups: 1, what: '3x3/2 dense (stem-like)' },
  { n: 2, h: 8, w: 8, cin: 3, k: 3, cout: 12, stride: 2, pad: 1, groups: 1, what: '3x3/2 dense, 12 outputs' },
  { n: 2, h: 6, w: 6, cin: 5, k: 3, cout: 3, stride: 2, pad: 0, groups: 1, what: '3x3/2 pad 0 dense on 6x6' },
  { n: 2, h: 6, w: 6, cin: 6, k: 1, cout: 4, stride: 1, pad: 0, groups: 1, what: '1x1/1' },
  { n: 1, h: 7, w: 7, cin: 6, k: 1, cout: 4, stride: 2, pad: 0, groups: 1, what: '1x1/2 on 7x7 (shortcut)' },
  { n: 2, h: 8, w: 8, cin: 6, k: 3, cout: 6, stride: 2, pad: 1, groups: 3, what: '3x3/2 groups 3 on 8x8' },
  { n: 2, h: 7, w: 5, cin: 4, k: 3, cout: 4, stride: 2, pad: 1, groups: 4, what: 'depthwise 3x3/2 on 7x5' },
  { n: 2, h: 7, w: 7, cin: 4, k: 3, cout: 8, stride: 2, pad: 0, groups: 2, what: '3x3/2 pad 0 groups 2' },
  { n: 2, h: 8, w: 8, cin: 16, k: 3, cout: 16, stride: 2, pad: 1, groups: 2, what: 'group width 8 (RegNet)' },
  {
    n: 1,
    h: 5,
    w: 5,
    cin: 16,
    k: 3,
    cout: 32,
    stride: 1,
    pad: 1,
    groups: 16,
    what: 'depthwise x2, 16 groups',
  },
  {
    n: 1,
    h: 7,
    w: 7,
    cin: 26,
    k: 3,
    cout: 39,
    stride: 2,
    pad: 1,
    groups: 13,
    what: '13 groups 3x3/2 on 7x7',
  },
];

describe('conv2d', () => {
  for (const c of CASES) {
    it(`${c.what}: forward and gradients match a float64 reference on wasm and cpu`, async () => {
      const rng = createRng(c.n * 1000 + c.cin * 10 + c.groups);
      const x = randn(rng, c.n * c.h * c.w * c.cin);
      const w = randn(rng, c.k * c.k * (c.cin / c.groups) * c.cout);
      const ref0 = reference(c, x, w);
      const r = Float64Array.from(randn(rng, ref0.y.length));
      const ref = reference(c, x, w, r);
      const opts = { stride: c.stride, pad: c.pad, groups: c.groups };
      const grads: Record<string, Float32Array[]> = {};
      for (const b of BACKENDS) {
        await useBackend(b);
        const [y, gx, gw] = tf.tidy(() => {
          const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.cin]);
          const wt = tf.tensor4d(w, [c.k, c.k, c.cin / c.groups, c.cout]);
          const rt = tf.tensor(Float32Array.from(r), ref.shape);
          const out = conv2d(xt, wt, opts);
          const g = tf.grads((a: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(tf.mul(conv2d(a as tf.Tensor4D, bb as tf.Tensor4D, opts), rt)),
          )([xt, wt]);
          return [
            out.dataSync() as Float32Array,
            g[0].dataSync() as Float32Array,
            g[1].dataSync() as Float32Array,
          ];
        });
        expect(relErr(y, ref.y), `${b} forward`).toBeLessThan(1e-5);
        expect(relErr(gx, ref.gx), `${b} dL/dx`).toBeLessThan(1e-5);
        expect(relErr(gw, ref.gw), `${b} dL/dw`).toBeLessThan(1e-5);
        grads[b] = [gx, gw];
      }
      expect(relErr(grads.wasm[0], grads.cpu[0])).toBeLessThan(1e-4);
      expect(relErr(grads.wasm[1], grads.cpu[1])).toBeLessThan(1e-4);

      // Central differences of L = sum(y * r) on wasm, accumulated in float64, at random coordinates.
      await useBackend('wasm');
      const loss = (xv: Float32Array, wv: Float32Array): number =>
        tf.tidy(() => {
          const y = conv2d(
            tf.tensor4d(xv, [c.n, c.h, c.w, c.cin]),
            tf.tensor4d(wv, [c.k, c.k, c.cin / c.groups, c.cout]),
            opts,
          ).dataSync();
          let s = 0;
          for (let i = 0; i < y.length; i++) s += y[i] * r[i];
          return s;
        });
      const eps = 1e-2;
      for (const [which, base, analytic] of [
        ['x', x, grads.wasm[0]],
        ['w', w, grads.wasm[1]],
      ] as const) {
        for (let trial = 0; trial < 4; trial++) {
          const j = rng.int(base.length);
          const plus = base.slice();
          const minus = base.slice();
          plus[j] += eps;
          minus[j] -= eps;
          const fd =
            which === 'x'
              ? (loss(plus, w) - loss(minus, w)) / (2 * eps)
              : (loss(x, plus) - loss(x, minus)) / (2 * eps);
          const scale = Math.max(1, Math.abs(fd), Math.abs(analytic[j]));
          expect(Math.abs(fd - analytic[j]) / scale, `d/d${which}[${j}]`).toBeLessThan(1e-2);
        }
      }
    });
  }

  it('inputGrad: false gives the same weight gradient and no input gradient', async () => {
    await useBackend('wasm');
    const rng = createRng(7);
    const c = CASES[2];
    const x = tf.tensor4d(randn(rng, c.n * c.h * c.w * c.cin), [c.n, c.h, c.w, c.cin]);
    const w = tf.tensor4d(randn(rng, 9 * c.cin * c.cout), [3, 3, c.cin, c.cout]);
    const full = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: 2, pad: 1 }))),
    )([x, w])[1];
    const only = tf.grad((b: tf.Tensor) =>
      tf.sum(tf.square(conv2d(x, b as tf.Tensor4D, { stride: 2, pad: 1, inputGrad: false }))),
    )(w);
    expect(relErr(only.dataSync(), full.dataSync())).toBeLessThan(1e-6);
    expect(() =>
      tf.grad((a: tf.Tensor) => tf.sum(conv2d(a as tf.Tensor4D, w, { stride: 2, pad: 1, inputGrad: false })))(
        x,
      ),
    ).toThrow();
    tf.dispose([x, w, full, only]);
  });

  it('leaks no tensors over repeated forward and backward passes', async () => {
    await useBackend('wasm');
    const rng = createRng(3);
    const x = tf.tensor4d(randn(rng, 2 * 8 * 8 * 16), [2, 8, 8, 16]);
    const w = tf.tensor4d(randn(rng, 9 * 8 * 16), [3, 3, 8, 16]);
    const step = () =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: 2, pad: 1, groups: 2 })),
        )([x, w]);
        for (const t of g) t.dataSync();
      });
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w]);
  });

  it('rejects shapes that do not fit the groups or the padding', async () => {
    await useBackend('wasm');
    const x = tf.zeros([1, 5, 5, 6]) as tf.Tensor4D;
    expect(() => conv2d(x, tf.zeros([3, 3, 4, 6]) as tf.Tensor4D, { groups: 2 })).toThrow(McoreError);
    expect(() => conv2d(x, tf.zeros([3, 3, 3, 5]) as tf.Tensor4D, { groups: 2 })).toThrow(/groups 2/);
    expect(() => conv2d(x, tf.zeros([3, 3, 6, 6]) as tf.Tensor4D, { pad: 3 })).toThrow(McoreError);
  });
});

describe('transpose2d and matMul', () => {
  it('transpose2d matches tf.transpose for composite and prime sizes', async () => {
    await useBackend('wasm');
    const rng = createRng(11);
    for (const [r, c] of [
      [12, 5],
      [7, 6],
      [7, 5],
      [1, 9],
    ]) {
      const m = tf.tensor2d(randn(rng, r * c), [r, c]);
      const t = transpose2d(m);
      expect(t.shape).toEqual([c, r]);
      expect(Array.from(t.dataSync())).toEqual(Array.from(tf.transpose(m).dataSync()));
    }
  });

  it('matMul gradients are dL/da = dy b^T and dL/db = a^T dy', async () => {
    await useBackend('wasm');
    // a [2, 3], b [3, 2]; L = sum(a b * r) with r = [[1, 2], [3, 4]].
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor2d([1, -1, 2, 0, 0, 3], [3, 2]);
    const r = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(matMul(x as tf.Tensor2D, y as tf.Tensor2D), r)),
    )([a, b]);
    // r b^T = [[1*1+2*-1, 1*2+0, 0+2*3], [3-4, 6, 12]]
    expect(Array.from(ga.dataSync())).toEqual([-1, 2, 6, -1, 6, 12]);
    // a^T r = [[1+12, 2+16], [2+15, 4+20], [3+18, 6+24]]
    expect(Array.from(gb.dataSync())).toEqual([13, 18, 17, 24, 21, 30]);
    // With gradB: false, b is a constant: same dL/da, and no path from b to the loss.
    const gaConst = tf.grad((x: tf.Tensor) =>
      tf.sum(tf.mul(matMul(x as tf.Tensor2D, b, { gradB: false }), r)),
    )(a);
    expect(Array.from(gaConst.dataSync())).toEqual([-1, 2, 6, -1, 6, 12]);
    expect(() =>
      tf.grad((y: tf.Tensor) => tf.sum(matMul(a, y as tf.Tensor2D, { gradB: false })))(b),
    ).toThrow();
  });
});
