/**
 * Evaluation metrics of spec section 5 on plain numbers: SRCC, R-l2, MSE and AIoU@d.
 *
 * They match the reference evaluation (scipy.stats.spearmanr; R-l2 and tIoU as in the FineDiving/MCoRe
 * code, `utils/misc.py`): on the official MCoRe test predictions (749 videos) `srcc` gives 0.927014
 * and `rl2` 0.0032757.
 *
 * @example
 * srcc([1, 2, 3, 4], [10, 20, 40, 30]); // 0.8
 * rl2([1, 2], [1, 3]); // 0.125
 */
import { McoreError } from '../errors.ts';

/** Numbers as a JS array or typed array. */
export type Numbers = ArrayLike<number>;

function checkPair(pred: Numbers, truth: Numbers, metric: string): void {
  if (pred.length !== truth.length) {
    throw new McoreError(
      'E_INPUT',
      `${metric}: predictions have ${pred.length} values but ground truth has ${truth.length}; pass one prediction per video`,
    );
  }
  if (pred.length === 0) {
    throw new McoreError('E_INPUT', `${metric}: empty input; pass at least one prediction`);
  }
  for (const [what, xs] of [
    ['predictions', pred],
    ['ground truth', truth],
  ] as const) {
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i])) {
        throw new McoreError(
          'E_INPUT',
          `${metric}: ${what}[${i}] is ${xs[i]}; every value must be a finite number`,
        );
      }
    }
  }
}

/**
 * Ranks 1..n with ties given the average of the ranks they span (scipy's `rankdata(method='average')`).
 *
 * @example
 * averageRanks([10, 20, 20, 5]); // Float64Array [2, 3.5, 3.5, 1]
 */
export function averageRanks(xs: Numbers): Float64Array {
  const n = xs.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && xs[order[j + 1]] === xs[order[i]]) j++;
    // positions i..j (0-based) share ranks i+1..j+1, whose mean is (i + j) / 2 + 1
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

/** Pearson correlation; NaN when either input is constant (as numpy/scipy). */
function pearson(x: Numbers, y: Numbers): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return Number.NaN;
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}

/**
 * Spearman's rank correlation: Pearson correlation of the average ranks (ties share their mean rank).
 * Returns NaN when either side is constant (the correlation is undefined; scipy does the same).
 * Throws E_INPUT on mismatched lengths, fewer than 2 values, or a non-finite value.
 */
export function srcc(pred: Numbers, truth: Numbers): number {
  checkPair(pred, truth, 'SRCC');
  if (pred.length < 2) {
    throw new McoreError('E_INPUT', 'SRCC: needs at least 2 videos, found 1');
  }
  return pearson(averageRanks(pred), averageRanks(truth));
}

/**
 * Relative l2 distance: mean over videos of ((s - p) / (max(s) - min(s)))^2, with the range taken over
 * the ground truth s (papers print it x100). Throws E_INPUT when the ground truth has zero range.
 */
export function rl2(pred: Numbers, truth: Numbers): number {
  checkPair(pred, truth, 'R-l2');
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < truth.length; i++) {
    lo = Math.min(lo, truth[i]);
    hi = Math.max(hi, truth[i]);
  }
  const range = hi - lo;
  if (range === 0) {
    throw new McoreError(
      'E_INPUT',
      `R-l2: the ground truth has zero range (every score is ${lo}); R-l2 needs at least two distinct scores`,
    );
  }
  let sum = 0;
  for (let i = 0; i < truth.length; i++) {
    const d = (truth[i] - pred[i]) / range;
    sum += d * d;
  }
  return sum / truth.length;
}

/** Mean squared error mean((s - p)^2). */
export function mse(pred: Numbers, truth: Numbers): number {
  checkPair(pred, truth, 'MSE');
  let sum = 0;
  for (let i = 0; i < truth.length; i++) {
    const d = truth[i] - pred[i];
    sum += d * d;
  }
  return sum / truth.length;
}

/**
 * 1-D intersection over union of [s0, e0] and [s1, e1], lengths e - s (as the reference's
 * `segment_iou`). 0 when the union is empty (both intervals of zero length). Reversed intervals
 * (e < s) are an E_INPUT error.
 *
 * @example
 * tiou([0, 10], [5, 15]); // 5 / 15
 */
export function tiou(a: readonly [number, number], b: readonly [number, number]): number {
  for (const [s, e] of [a, b]) {
    if (!Number.isFinite(s) || !Number.isFinite(e) || e < s) {
      throw new McoreError(
        'E_INPUT',
        `tIoU: interval [${s}, ${e}] is not a finite interval with start <= end`,
      );
    }
  }
  const inter = Math.max(0, Math.min(a[1], b[1]) - Math.max(a[0], b[0]));
  const union = a[1] - a[0] + (b[1] - b[0]) - inter;
  return union > 0 ? inter / union : 0;
}

/** The flight interval [first transition, last transition] of one video (K-1 >= 1 transitions). */
function flightInterval(transitions: readonly number[], what: string, i: number): [number, number] {
  if (transitions.length === 0) {
    throw new McoreError(
      'E_INPUT',
      `AIoU: ${what} transitions of video ${i} are empty; expected K-1 >= 1 values`,
    );
  }
  const s = transitions[0];
  const e = transitions[transitions.length - 1];
  if (e < s) {
    throw new McoreError(
      'E_INPUT',
      `AIoU: ${what} transitions of video ${i} are [${transitions.join(', ')}]: the last precedes the first`,
    );
  }
  return [s, e];
}

/**
 * AIoU@d: share of videos whose flight interval has tIoU >= d with the ground truth (spec section 5;
 * printed x100 in papers). For K = 3 stages each video has K-1 = 2 transitions [t0, t1]; for general K
 * the interval runs from the first to the last transition.
 *
 * @param predTransitions per video, the predicted transitions (frame indices, ascending)
 * @param trueTransitions per video, the ground-truth transitions
 * @param threshold d, e.g. 0.5 or 0.75
 */
export function aiou(
  predTransitions: readonly (readonly number[])[],
  trueTransitions: readonly (readonly number[])[],
  threshold: number,
): number {
  if (predTransitions.length !== trueTransitions.length) {
    throw new McoreError(
      'E_INPUT',
      `AIoU: ${predTransitions.length} predicted videos but ${trueTransitions.length} ground-truth videos`,
    );
  }
  if (predTransitions.length === 0) throw new McoreError('E_INPUT', 'AIoU: empty input');
  if (!(threshold >= 0 && threshold <= 1)) {
    throw new McoreError('E_INPUT', `AIoU: threshold ${threshold} must lie in [0, 1]`);
  }
  let hits = 0;
  for (let i = 0; i < predTransitions.length; i++) {
    const p = flightInterval(predTransitions[i], 'predicted', i);
    const t = flightInterval(trueTransitions[i], 'ground-truth', i);
    if (tiou(t, p) >= threshold) hits++;
  }
  return hits / predTransitions.length;
}

/** Within-type SRCC and what it was computed over. */
export interface WithinTypeSrcc {
  /** The clip-count-weighted mean of the per-type SRCCs (NaN when no type qualifies). */
  srcc: number;
  /** Action types that qualified (>= minClips test clips, true scores not all equal). */
  types: number;
  /** Test clips in those types (the weights' sum). */
  clips: number;
}

/** Test clips of an action type needed for its SRCC to count in the within-type SRCC. */
export const WITHIN_TYPE_MIN_CLIPS = 3;

/**
 * Within-type SRCC: how well the predictions rank execution once the action type is known (a model
 * that only recognises the action type scores 0 here, however high its overall SRCC). Test clips are
 * grouped by action type; every type with at least `minClips` (3) clips whose true scores are not all
 * equal contributes the SRCC of its predictions against its true scores, weighted by its clip count:
 *
 *   within-type SRCC = sum_t n_t SRCC_t / sum_t n_t   over the qualifying types t.
 *
 * A type whose predictions are all equal (the type-mean predictor) contributes 0: it ranks nothing.
 * NaN when no type qualifies (every type has fewer than `minClips` test clips).
 *
 * @example
 * // type a: SRCC 1 over 3 clips; type b: SRCC -0.4 over 4 clips; type c: 1 clip (left out)
 * withinTypeSrcc([1, 2, 3, 4, 1, 3, 2, 9], [1, 2, 3, 1, 2, 3, 4, 5], ['a', 'a', 'a', 'b', 'b', 'b', 'b', 'c']);
 * // { srcc: (3 * 1 + 4 * -0.4) / 7 = 0.2, types: 2, clips: 7 }
 */
export function withinTypeSrcc(
  pred: Numbers,
  truth: Numbers,
  types: readonly string[],
  minClips = WITHIN_TYPE_MIN_CLIPS,
): WithinTypeSrcc {
  checkPair(pred, truth, 'within-type SRCC');
  if (types.length !== pred.length) {
    throw new McoreError(
      'E_INPUT',
      `within-type SRCC: ${types.length} action types for ${pred.length} predictions; pass one type per video`,
    );
  }
  const groups = new Map<string, number[]>();
  types.forEach((t, i) => {
    const g = groups.get(t);
    if (g) g.push(i);
    else groups.set(t, [i]);
  });
  let sum = 0;
  let clips = 0;
  let count = 0;
  for (const idx of groups.values()) {
    if (idx.length < minClips) continue;
    const p = idx.map((i) => pred[i]);
    const y = idx.map((i) => truth[i]);
    if (y.every((v) => v === y[0])) continue;
    const r = p.every((v) => v === p[0]) ? 0 : pearson(averageRanks(p), averageRanks(y));
    sum += idx.length * r;
    clips += idx.length;
    count++;
  }
  return { srcc: clips > 0 ? sum / clips : Number.NaN, types: count, clips };
}
