/**
 * The exemplar protocol (spec section 4): every test video and every exemplar it needs is encoded
 * once (the reference re-encodes the query for each exemplar; we never do), each query is compared
 * with M training exemplars (same action type with dn), and the predictions are averaged.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ClipRecord } from '../data/clips.ts';
import { ExemplarIndex } from '../data/sampling.ts';
import { McoreError } from '../errors.ts';
import type { Params } from '../model/params.ts';
import { createRng } from '../rng.ts';
import type { Encoding, Method } from '../train/method.ts';
import { aiou, mse, rl2, srcc } from './metrics.ts';

export interface EvalOptions {
  /** Exemplars per query (reference: 10; fewer when the class is smaller). */
  exemplars: number;
  dn: boolean;
  seed: number;
  /** Videos encoded per forward pass. */
  batchVideos: number;
  /** Input [V, ...] for `keys` in order, without augmentation. */
  load(keys: string[]): Promise<tf.Tensor>;
  onProgress?: (done: number, total: number) => void;
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
  srcc: number;
  rl2: number;
  mse: number;
  /** Shares of test videos with flight tIoU >= 0.5 / 0.75 (NaN for methods that do not segment). */
  aiou50: number;
  aiou75: number;
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
  const rng = createRng(opts.seed);
  const chosen = test.map((q) =>
    method.pairwise ? index.testExemplars(q, opts.exemplars, opts.dn, rng) : [],
  );
  const needed = [...new Set([...test.map((c) => c.key), ...chosen.flat()])];
  const enc = await encodeAll(method, params, needed, opts);
  const trainByKey = new Map(train.map((c) => [c.key, c]));
  const predictions: Prediction[] = test.map((q, i) => {
    const query = enc.get(q.key)!;
    const exemplars = chosen[i].map((k) => ({ encoding: enc.get(k)!, score: trainByKey.get(k)!.score }));
    return {
      key: q.key,
      actionType: q.actionType,
      pred: method.predict(params, query, exemplars),
      truth: q.score,
      exemplars: chosen[i],
      transitions: query.transitions,
      trueTransitions: q.transitions,
    };
  });
  return { metrics: metricsOf(predictions), predictions };
}

export function metricsOf(predictions: readonly Prediction[]): EvalMetrics {
  const pred = predictions.map((p) => p.pred);
  const truth = predictions.map((p) => p.truth);
  const segmented = predictions.every((p) => p.transitions !== undefined);
  const predT = predictions.map((p) => p.transitions ?? []);
  const trueT = predictions.map((p) => p.trueTransitions);
  return {
    srcc: srcc(pred, truth),
    rl2: rl2(pred, truth),
    mse: mse(pred, truth),
    aiou50: segmented ? aiou(predT, trueT, 0.5) : Number.NaN,
    aiou75: segmented ? aiou(predT, trueT, 0.75) : Number.NaN,
  };
}
