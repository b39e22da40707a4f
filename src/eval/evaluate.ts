/**
 * The exemplar protocol (spec section 4): every test video and every exemplar it needs is encoded
 * once (the reference re-encodes the query for each exemplar; we never do), each query is compared
 * with M training exemplars (same action type with dn), and the predictions are averaged.
 *
 * Both protocols are scored from the same encodings: the chosen one gives the predictions and the
 * headline metrics; `srccDn` and `srccNoDn` give the SRCC with and without action types (each protocol
 * draws its exemplars from its own generator seeded with `seed`, so `--dn` and `--no-dn` runs agree).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ClipRecord } from '../data/clips.ts';
import { ExemplarIndex } from '../data/sampling.ts';
import { McoreError } from '../errors.ts';
import type { Params } from '../model/params.ts';
import { createRng } from '../rng.ts';
import type { Encoding, Method } from '../train/method.ts';
import { aiou, mse, rl2, srcc, withinTypeSrcc } from './metrics.ts';

/** Queries compared per comparer run (x M exemplars = pairs in one scorer run). */
const COMPARE_CHUNK = 32;

export interface EvalOptions {
  /** Exemplars per query (reference: 10; fewer when the class is smaller). */
  exemplars: number;
  dn: boolean;
  seed: number;
  /** Videos encoded per forward pass. */
  batchVideos: number;
  /** Input [V, ...] for `keys` in order, without augmentation. */
  load(keys: string[]): Promise<tf.Tensor>;
  /** Encoding progress (videos encoded, videos needed). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Comparison progress (queries compared with their exemplars, queries of both protocols): after the
   * encodings, the head compares every test query with its M exemplars, once per protocol.
   */
  onCompare?: (done: number, total: number) => void;
}

export interface Prediction {
  key: string;
  actionType: string;
  pred: number;
  truth: number;
  exemplars: string[];
  /** Predicted and ground-truth transitions, when the method segments. */
  transitions?: number[];
  trueTransitions: number[];
}

export interface EvalMetrics {
  /** SRCC of the chosen protocol's predictions. */
  srcc: number;
  rl2: number;
  mse: number;
  /**
   * Percent (0-100) of test videos with flight tIoU >= 0.5 / 0.75, as papers print AIoU (NaN for
   * methods that do not segment). The same unit in JSON, the CLI and the README.
   */
  aiou50: number;
  aiou75: number;
  /** SRCC "with action types": exemplars of the query's type (dn); NaN when a test type has no training clip. */
  srccDn: number;
  /** SRCC "without action types": exemplars from the whole training split (no-dn). */
  srccNoDn: number;
  /** Within-type SRCC of the chosen protocol's predictions (src/eval/metrics.ts `withinTypeSrcc`). */
  withinTypeSrcc: number;
}

export interface EvalResult {
  metrics: EvalMetrics;
  predictions: Prediction[];
}

/** Encodes `keys` once each, in batches; returns encodings by key. */
export async function encodeAll(
  method: Method,
  params: Params,
  keys: string[],
  opts: Pick<EvalOptions, 'batchVideos' | 'load' | 'onProgress'>,
): Promise<Map<string, Encoding>> {
  const out = new Map<string, Encoding>();
  for (let i = 0; i < keys.length; i += opts.batchVideos) {
    const chunk = keys.slice(i, i + opts.batchVideos);
    const input = await opts.load(chunk);
    const enc = method.encode(params, input);
    input.dispose();
    for (let j = 0; j < chunk.length; j++) out.set(chunk[j], enc[j]);
    opts.onProgress?.(Math.min(i + opts.batchVideos, keys.length), keys.length);
  }
  return out;
}

export async function evaluate(
  method: Method,
  params: Params,
  train: readonly ClipRecord[],
  test: readonly ClipRecord[],
  opts: EvalOptions,
): Promise<EvalResult> {
  if (test.length === 0) {
    throw new McoreError(
      'E_INPUT',
      'the test split is empty: nothing to evaluate (give the dataset clips with split "test")',
    );
  }
  const index = new ExemplarIndex(train);
  const draw = (dn: boolean) => {
    const rng = createRng(opts.seed);
    return test.map((q) => (method.pairwise ? index.testExemplars(q, opts.exemplars, dn, rng) : []));
  };
  const chosen = draw(opts.dn);
  // The other protocol; with dn it fails when a test action type has no training clip (SRCC NaN then).
  let other: string[][] | undefined;
  try {
    other = draw(!opts.dn);
  } catch (err) {
    if (!(err instanceof McoreError)) throw err;
  }
  const needed = [...new Set([...test.map((c) => c.key), ...chosen.flat(), ...(other ?? []).flat()])];
  const enc = await encodeAll(method, params, needed, opts);
  const trainByKey = new Map(train.map((c) => [c.key, c]));
  const compares = test.length * (other && method.pairwise ? 2 : 1);
  let compared = 0;
  const comparer = method.pairwise ? await method.openComparer?.(params) : undefined;
  const predict = async (picks: string[][]): Promise<Prediction[]> => {
    const comparisons = test.map((q, i) => ({
      query: enc.get(q.key)!,
      exemplars: picks[i].map((k) => ({ encoding: enc.get(k)!, score: trainByKey.get(k)!.score })),
    }));
    const preds: number[] = [];
    for (let i = 0; i < comparisons.length; i += COMPARE_CHUNK) {
      const chunk = comparisons.slice(i, i + COMPARE_CHUNK);
      if (comparer) preds.push(...(await comparer.predict(chunk)));
      else for (const c of chunk) preds.push(method.predict(params, c.query, c.exemplars));
      compared += chunk.length;
      opts.onCompare?.(compared, compares);
    }
    return test.map((q, i) => ({
      key: q.key,
      actionType: q.actionType,
      pred: preds[i],
      truth: q.score,
      exemplars: picks[i],
      transitions: comparisons[i].query.transitions,
      trueTransitions: q.transitions,
    }));
  };
  try {
    const predictions = await predict(chosen);
    const metrics = metricsOf(predictions);
    const otherSrcc = !other ? Number.NaN : method.pairwise ? srccOf(await predict(other)) : metrics.srcc;
    return {
      metrics: {
        ...metrics,
        srccDn: opts.dn ? metrics.srcc : otherSrcc,
        srccNoDn: opts.dn ? otherSrcc : metrics.srcc,
      },
      predictions,
    };
  } finally {
    await comparer?.dispose();
  }
}

function srccOf(predictions: readonly Prediction[]): number {
  return srcc(
    predictions.map((p) => p.pred),
    predictions.map((p) => p.truth),
  );
}

/**
 * Metrics of one protocol's predictions. `srccDn` and `srccNoDn` are both set to its SRCC here
 * (`evaluate` sets them from the two protocols).
 */
export function metricsOf(predictions: readonly Prediction[]): EvalMetrics {
  const pred = predictions.map((p) => p.pred);
  const truth = predictions.map((p) => p.truth);
  const segmented = predictions.every((p) => p.transitions !== undefined);
  const predT = predictions.map((p) => p.transitions ?? []);
  const trueT = predictions.map((p) => p.trueTransitions);
  const s = srcc(pred, truth);
  return {
    srcc: s,
    rl2: rl2(pred, truth),
    mse: mse(pred, truth),
    aiou50: segmented ? 100 * aiou(predT, trueT, 0.5) : Number.NaN,
    aiou75: segmented ? 100 * aiou(predT, trueT, 0.75) : Number.NaN,
    srccDn: s,
    srccNoDn: s,
    withinTypeSrcc: withinTypeSrcc(
      pred,
      truth,
      predictions.map((p) => p.actionType),
    ).srcc,
  };
}
