import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { biGruForward, gruSpecs } from '../../src/model/gru.ts';
import { initParams, type Params } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';

const sigmoid = (a: number) => 1 / (1 + Math.exp(-a));

/** One direction's weights in PyTorch layout: wih [3H][In], whh [3H][H], gates r, z, n. */
interface TorchGru {
  wih: number[][];
  whh: number[][];
  bih: number[];
  bhh: number[];
}

/** Scalar reference of torch.nn.GRU (one direction) over xs [T][In]; returns h(t) [T][H]. */
function scalarGru(g: TorchGru, xs: number[][], reverse: boolean): number[][] {
  const H = g.whh[0].length;
  const T = xs.length;
  let h = new Array(H).fill(0);
  const out: number[][] = new Array(T);
  for (let s = 0; s < T; s++) {
    const t = reverse ? T - 1 - s : s;
    const x = xs[t];
    const dot = (row: number[], v: number[]) => row.reduce((acc, w, i) => acc + w * v[i], 0);
    const next: number[] = [];
    for (let j = 0; j < H; j++) {
      const r = sigmoid(dot(g.wih[j], x) + g.bih[j] + dot(g.whh[j], h) + g.bhh[j]);
      const z = sigmoid(dot(g.wih[H + j], x) + g.bih[H + j] + dot(g.whh[H + j], h) + g.bhh[H + j]);
      const n = Math.tanh(
        dot(g.wih[2 * H + j], x) + g.bih[2 * H + j] + r * (dot(g.whh[2 * H + j], h) + g.bhh[2 * H + j]),
      );
      next.push((1 - z) * n + z * h[j]);
    }
    h = next;
    out[t] = h;
  }
  return out;
}

const transpose = (m: number[][]) => m[0].map((_, c) => m.map((row) => row[c]));

/** Our params (layout 'gru' = transposed torch) from torch-layout weights. */
function toParams(fwd: TorchGru, rev: TorchGru): Params {
  const p: Params = {};
  for (const [d, g] of [
    ['', fwd],
    ['_reverse', rev],
  ] as const) {
    p[`gru.weight_ih_l0${d}`] = tf.tensor2d(transpose(g.wih));
    p[`gru.weight_hh_l0${d}`] = tf.tensor2d(transpose(g.whh));
    p[`gru.bias_ih_l0${d}`] = tf.tensor1d(g.bih);
    p[`gru.bias_hh_l0${d}`] = tf.tensor1d(g.bhh);
  }
  return p;
}

function randomGru(rng: ReturnType<typeof createRng>, In: number, H: number): TorchGru {
  const u = () => rng.next() - 0.5;
  const mat = (r: number, c: number) => Array.from({ length: r }, () => Array.from({ length: c }, u));
  return { wih: mat(3 * H, In), whh: mat(3 * H, H), bih: mat(1, 3 * H)[0], bhh: mat(1, 3 * H)[0] };
}

beforeAll(async () => {
  await useBackend('wasm');
});

describe('biGruForward', () => {
  it('matches a hand-computed 2-step example (H = 1, In = 1)', () => {
    // Forward weights (torch rows r, z, n) and distinct reverse weights.
    const fwd: TorchGru = {
      wih: [[0.5], [-0.3], [0.8]],
      whh: [[0.2], [0.4], [-0.6]],
      bih: [0.1, 0, -0.2],
      bhh: [0, 0.3, 0.1],
    };
    const rev: TorchGru = {
      wih: [[-0.4], [0.6], [0.3]],
      whh: [[0.7], [-0.2], [0.5]],
      bih: [0, 0.2, 0.1],
      bhh: [-0.1, 0, 0.3],
    };
    const x = [1.5, -2];
    // Forward direction, step 1 from h = 0.
    const r1 = sigmoid(0.5 * 1.5 + 0.1 + 0);
    const z1 = sigmoid(-0.3 * 1.5 + 0 + 0.3);
    const n1 = Math.tanh(0.8 * 1.5 - 0.2 + r1 * 0.1);
    const h1 = (1 - z1) * n1;
    // Step 2 from h1.
    const r2 = sigmoid(0.5 * -2 + 0.1 + 0.2 * h1);
    const z2 = sigmoid(-0.3 * -2 + 0.4 * h1 + 0.3);
    const n2 = Math.tanh(0.8 * -2 - 0.2 + r2 * (-0.6 * h1 + 0.1));
    const h2 = (1 - z2) * n2 + z2 * h1;
    // Reverse direction: frame 1 first (from h = 0), then frame 0.
    const rr1 = sigmoid(-0.4 * -2 + 0 - 0.1);
    const zr1 = sigmoid(0.6 * -2 + 0.2 + 0);
    const nr1 = Math.tanh(0.3 * -2 + 0.1 + rr1 * 0.3);
    const g1 = (1 - zr1) * nr1;
    const rr0 = sigmoid(-0.4 * 1.5 + 0.7 * g1 - 0.1);
    const zr0 = sigmoid(0.6 * 1.5 + 0.2 - 0.2 * g1);
    const nr0 = Math.tanh(0.3 * 1.5 + 0.1 + rr0 * (0.5 * g1 + 0.3));
    const g0 = (1 - zr0) * nr0 + zr0 * g1;
    const params = toParams(fwd, rev);
    const y = biGruForward(params, 'gru', tf.tensor3d([[[x[0]], [x[1]]]]));
    expect(y.shape).toEqual([1, 2, 2]);
    const got = Array.from(y.dataSync());
    const want = [h1, g0, h2, g1];
    for (const [i, v] of got.entries()) expect(v).toBeCloseTo(want[i], 6);
    // And the scalar reference agrees with the hand computation.
    expect(scalarGru(fwd, [[1.5], [-2]], false)[1][0]).toBeCloseTo(h2, 12);
    expect(scalarGru(rev, [[1.5], [-2]], true)[0][0]).toBeCloseTo(g0, 12);
    tf.dispose([y, ...Object.values(params)]);
  });

  it('matches the scalar reference in both directions (V = 2, T = 5, In = 3, H = 4)', () => {
    const rng = createRng(7);
    const fwd = randomGru(rng, 3, 4);
    const rev = randomGru(rng, 3, 4);
    const xs = [0, 1].map(() => Array.from({ length: 5 }, () => [0, 1, 2].map(() => rng.normal())));
    const params = toParams(fwd, rev);
    const y = biGruForward(params, 'gru', tf.tensor3d(xs));
    const got = y.arraySync() as number[][][];
    xs.forEach((seq, v) => {
      const f = scalarGru(fwd, seq, false);
      const r = scalarGru(rev, seq, true);
      for (let t = 0; t < 5; t++) {
        for (let j = 0; j < 4; j++) {
          expect(got[v][t][j]).toBeCloseTo(f[t][j], 5);
          expect(got[v][t][4 + j]).toBeCloseTo(r[t][j], 5);
        }
      }
    });
    tf.dispose([y, ...Object.values(params)]);
  });

  it('has PyTorch parameter shapes and init bounds', () => {
    const specs = gruSpecs('g', 6, 4);
    expect(Object.keys(specs).sort()).toEqual(
      ['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
        .flatMap((n) => [`g.${n}`, `g.${n}_reverse`])
        .sort(),
    );
    expect(specs['g.weight_ih_l0'].shape).toEqual([6, 12]);
    expect(specs['g.weight_hh_l0_reverse'].shape).toEqual([4, 12]);
    expect(specs['g.weight_ih_l0'].layout).toBe('gru');
    expect(specs['g.bias_hh_l0'].init).toEqual({ kind: 'uniform', bound: 0.5 });
  });

  it('has gradients equal to central finite differences', () => {
    const V = 2;
    const T = 4;
    const In = 3;
    const H = 3;
    const params = initParams(gruSpecs('gru', In, H), createRng(3));
    const x = tf.randomNormal([V, T, In], 0, 1, 'float32', 11) as tf.Tensor3D;
    const w = tf.randomNormal([V, T, 2 * H], 0, 1, 'float32', 12);
    const names = Object.keys(params).sort();
    const loss = (p: Params, xx: tf.Tensor3D) => tf.sum(tf.mul(biGruForward(p, 'gru', xx), w));
    const grads = tf.grads((xx: tf.Tensor, ...ws: tf.Tensor[]) => {
      const p: Params = {};
      names.forEach((n, i) => {
        p[n] = ws[i];
      });
      return loss(p, xx as tf.Tensor3D);
    })([x, ...names.map((n) => params[n])]);
    const eps = 1e-2;
    const fd = (t: tf.Tensor, i: number, evalLoss: (perturbed: tf.Tensor) => number): number => {
      const vals = t.dataSync().slice();
      const at = (delta: number) => {
        const c = vals.slice();
        c[i] += delta;
        const pt = tf.tensor(c, t.shape);
        const l = evalLoss(pt);
        pt.dispose();
        return l;
      };
      return (at(eps) - at(-eps)) / (2 * eps);
    };
    const scalar = (l: tf.Tensor) => {
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    // Input gradient, every entry.
    const gx = grads[0].dataSync();
    for (let i = 0; i < V * T * In; i++) {
      const num = fd(x, i, (px) => scalar(loss(params, px as tf.Tensor3D)));
      expect(Math.abs(gx[i] - num)).toBeLessThan(2e-3);
    }
    // Every parameter, a spread of entries.
    names.forEach((n, k) => {
      const g = grads[k + 1].dataSync();
      for (let i = 0; i < g.length; i += 5) {
        const num = fd(params[n], i, (pt) => scalar(loss({ ...params, [n]: pt }, x)));
        expect(Math.abs(g[i] - num), `${n}[${i}]`).toBeLessThan(2e-3);
      }
      expect(Math.max(...Array.from(g).map(Math.abs))).toBeGreaterThan(1e-3);
    });
    tf.dispose([...grads, x, w, ...Object.values(params)]);
  });

  it('gives the same weight gradients with gradX false, and leaks no tensors', () => {
    const params = initParams(gruSpecs('gru', 3, 2), createRng(5));
    const x = tf.randomNormal([2, 6, 3], 0, 1, 'float32', 1) as tf.Tensor3D;
    const vars = Object.values(params) as tf.Variable[];
    const run = (gradX: boolean) => {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(biGruForward(params, 'gru', x, { gradX }))),
        vars,
      );
      const out = Object.keys(grads)
        .sort()
        .map((k) => Array.from(grads[k].dataSync()));
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const a = run(true);
    const before = tf.memory().numTensors;
    const b = run(false);
    run(true);
    expect(tf.memory().numTensors).toBe(before);
    for (const [i, row] of a.entries()) {
      for (const [j, v] of row.entries()) expect(b[i][j]).toBeCloseTo(v, 6);
    }
    tf.dispose([x, ...vars]);
  });
});
