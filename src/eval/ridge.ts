/**
 * Ridge regression with its regularisation chosen by k-fold cross-validation on the training rows only
 * (the test split is never looked at): the linear reference point of the honest evaluation
 * (src/eval/reference.ts). Plain float64 arithmetic in the primal form, for a few hundred columns.
 *
 * Columns are standardised with the training rows' mean and standard deviation; the intercept is not
 * penalised (data centred per fit). The candidate lambdas are ALPHAS x trace(X^T X) / d of the
 * standardised, centred training data (d columns), so the grid means the same for any scale of input.
 * Folds: the rows in a seeded random order, cut into k nearly equal parts; the lambda with the least mean
 * squared error on the held-out parts wins, then the model is fitted on every training row.
 *
 * @example
 * const fit = fitRidgeCV([[0], [1], [2], [3], [4], [5]], [1, 3, 5, 7, 9, 11]);
 * fit.predict([10]); // ~21
 */
import { McoreError } from '../errors.ts';
import { createRng, shuffled } from '../rng.ts';

/** Multipliers of trace(X^T X) / d tried as lambda. */
export const RIDGE_ALPHAS = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000] as const;

export interface RidgeFit {
  /** The chosen lambda (on standardised columns). */
  lambda: number;
  /** Its mean squared cross-validation error. */
  cvMse: number;
  /** Weights on the standardised columns and the intercept. */
  weights: Float64Array;
  intercept: number;
  predict(x: ArrayLike<number>): number;
}

export interface RidgeOptions {
  /** Folds of the cross-validation (default 5; fewer when there are fewer rows). */
  folds?: number;
  /** Seed of the fold assignment. */
  seed?: number;
  alphas?: readonly number[];
}

/** Sums of one set of rows: x x^T (upper triangle, d x d), x, x y and y. */
interface Moments {
  n: number;
  xx: Float64Array;
  x: Float64Array;
  xy: Float64Array;
  y: number;
}

function moments(
  rows: readonly Float64Array[],
  y: readonly number[],
  idx: readonly number[],
  d: number,
): Moments {
  const m: Moments = {
    n: idx.length,
    xx: new Float64Array(d * d),
    x: new Float64Array(d),
    xy: new Float64Array(d),
    y: 0,
  };
  for (const i of idx) {
    const r = rows[i];
    for (let a = 0; a < d; a++) {
      const ra = r[a];
      if (ra === 0) continue;
      m.x[a] += ra;
      m.xy[a] += ra * y[i];
      const off = a * d;
      for (let b = a; b < d; b++) m.xx[off + b] += ra * r[b];
    }
    m.y += y[i];
  }
  return m;
}

function minus(a: Moments, b: Moments): Moments {
  const sub = (p: Float64Array, q: Float64Array) => p.map((v, i) => v - q[i]);
  return { n: a.n - b.n, xx: sub(a.xx, b.xx), x: sub(a.x, b.x), xy: sub(a.xy, b.xy), y: a.y - b.y };
}

/** Centred normal equations of a set of rows: C = X^T X - n mu mu^T (full d x d), c = X^T y - n mu ybar. */
function centred(m: Moments, d: number): { C: Float64Array; c: Float64Array } {
  const C = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (let a = 0; a < d; a++) {
    c[a] = m.xy[a] - (m.x[a] * m.y) / m.n;
    for (let b = a; b < d; b++) {
      const v = m.xx[a * d + b] - (m.x[a] * m.x[b]) / m.n;
      C[a * d + b] = v;
      C[b * d + a] = v;
    }
  }
  return { C, c };
}

/** Solves (C + lambda I) w = c by Cholesky (C symmetric positive semi-definite, lambda > 0). */
function solve(C: Float64Array, c: Float64Array, lambda: number, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = C[i * d + j] + (i === j ? lambda : 0);
      for (let k = 0; k < j; k++) s -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = i === j ? Math.sqrt(Math.max(s, 1e-300)) : s / L[j * d + j];
    }
  }
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = c[i];
    for (let k = 0; k < i; k++) s -= L[i * d + k] * z[k];
    z[i] = s / L[i * d + i];
  }
  const w = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = z[i];
    for (let k = i + 1; k < d; k++) s -= L[k * d + i] * w[k];
    w[i] = s / L[i * d + i];
  }
  return w;
}

/** The weights and intercept of ridge on a set of rows (through its moments). */
function ridgeFit(m: Moments, lambda: number, d: number): { w: Float64Array; b: number } {
  const { C, c } = centred(m, d);
  const w = solve(C, c, lambda, d);
  let wx = 0;
  for (let a = 0; a < d; a++) wx += w[a] * m.x[a];
  return { w, b: (m.y - wx) / m.n };
}

function dot(w: Float64Array, x: ArrayLike<number>): number {
  let s = 0;
  for (let a = 0; a < w.length; a++) s += w[a] * x[a];
  return s;
}

/**
 * Fits ridge regression of `y` on the rows `x` (n x d, n >= 2), choosing lambda by k-fold
 * cross-validation on these rows (module doc). Throws E_INPUT on ragged rows or non-finite values.
 */
export function fitRidgeCV(
  x: readonly ArrayLike<number>[],
  y: readonly number[],
  opts: RidgeOptions = {},
): RidgeFit {
  const n = x.length;
  if (n < 2 || y.length !== n) {
    throw new McoreError(
      'E_INPUT',
      `ridge: needs at least 2 rows and one target per row, got ${n} rows and ${y.length} targets`,
    );
  }
  const d = x[0].length;
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (const [i, r] of x.entries()) {
    if (r.length !== d)
      throw new McoreError('E_INPUT', `ridge: row ${i} has ${r.length} values, row 0 has ${d}`);
    for (let a = 0; a < d; a++) {
      if (!Number.isFinite(r[a])) throw new McoreError('E_INPUT', `ridge: row ${i} value ${a} is ${r[a]}`);
      mean[a] += r[a] / n;
    }
    if (!Number.isFinite(y[i])) throw new McoreError('E_INPUT', `ridge: target ${i} is ${y[i]}`);
  }
  for (const r of x) for (let a = 0; a < d; a++) sd[a] += (r[a] - mean[a]) ** 2 / n;
  for (let a = 0; a < d; a++) sd[a] = Math.sqrt(sd[a]) || 1;
  const standard = (r: ArrayLike<number>) =>
    Float64Array.from({ length: d }, (_, a) => (r[a] - mean[a]) / sd[a]);
  const rows = x.map(standard);

  const all = Array.from({ length: n }, (_, i) => i);
  const total = moments(rows, y, all, d);
  const { C } = centred(total, d);
  let trace = 0;
  for (let a = 0; a < d; a++) trace += C[a * d + a];
  const scale = trace / d || 1;
  const lambdas = (opts.alphas ?? RIDGE_ALPHAS).map((a) => a * scale);

  const k = Math.max(2, Math.min(opts.folds ?? 5, n));
  const order = shuffled(all, createRng(opts.seed ?? 0));
  const folds = Array.from({ length: k }, (_, f) => order.filter((_, i) => i % k === f));
  const errors = lambdas.map(() => 0);
  for (const held of folds) {
    const rest = minus(total, moments(rows, y, held, d));
    for (const [j, lambda] of lambdas.entries()) {
      const { w, b } = ridgeFit(rest, lambda, d);
      for (const i of held) errors[j] += (dot(w, rows[i]) + b - y[i]) ** 2 / n;
    }
  }
  let best = 0;
  for (let j = 1; j < lambdas.length; j++) if (errors[j] < errors[best]) best = j;
  const { w, b } = ridgeFit(total, lambdas[best], d);
  return {
    lambda: lambdas[best],
    cvMse: errors[best],
    weights: w,
    intercept: b,
    predict: (r) => dot(w, standard(r)) + b,
  };
}
