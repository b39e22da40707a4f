/**
 * A scoring method in the shared framework: MCoRe and every baseline train with the same trainer and
 * are evaluated with the same exemplar protocol. A method turns a batch of query/exemplar pairs into
 * named loss terms, encodes a video once, and predicts a query's score from its exemplars.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ParamSpecs, Params } from '../model/params.ts';

/** A training batch of B pairs; videos ordered [q_1..q_B, e_1..e_B]. */
export interface PairBatch {
  /** features [2B, T, D] (head-only) or frames [2B, T, H, W, 3] (end to end). */
  input: tf.Tensor;
  /** Ground-truth transition frames on the sampled frames: 2B x (K-1). */
  transitions: number[][];
  /** Dive scores of the 2B videos. */
  scores: number[];
  /** Hidden stage qualities of the 2B videos, 2B x K (synthetic data only; see loss.qualityWeight). */
  stageQualities?: number[][];
}

/** Named scalar loss terms; `total` is optimised. */
export type LossTerms = { total: tf.Scalar } & Record<string, tf.Scalar>;

/** What a method keeps of a video after encoding it once (plain data, no tensors). */
export interface Encoding {
  /** Predicted transitions (K-1), when the method segments. */
  transitions?: number[];
  /** Method-specific per-video data (e.g. stage tokens [K*L*D] row-major). */
  data: Float32Array;
}

export interface Exemplar {
  encoding: Encoding;
  score: number;
}

export interface Method {
  readonly name: string;
  readonly specs: ParamSpecs;
  /** Needs exemplars at test time (contrastive) or predicts absolute scores. */
  readonly pairwise: boolean;
  /** Loss terms of one batch (call inside tf.tidy). `seed` drives dropout. */
  loss(params: Params, batch: PairBatch, opts: { seed: number }): LossTerms;
  /** Encodes V videos once, in test mode: input [V, ...] -> V encodings. */
  encode(params: Params, input: tf.Tensor): Encoding[];
  /** Predicted score of a query from its exemplars (score(e) + delta(q,e), averaged). */
  predict(params: Params, query: Encoding, exemplars: Exemplar[]): number;
  /**
   * Optional: a comparer over fixed `params` that predicts many queries in one run (MCoRe: the
   * exported scorer graph in ONNX Runtime, on every core). The same numbers as `predict` up to float
   * rounding; `evaluate` uses it when present. Dispose it when done.
   */
  openComparer?(params: Params): Promise<Comparer>;
}

/** One query and its exemplars. */
export interface Comparison {
  query: Encoding;
  exemplars: Exemplar[];
}

/** Many comparisons at once, over the params it was opened with. */
export interface Comparer {
  /** The predicted score of each comparison, in order (as `Method.predict`). */
  predict(comparisons: readonly Comparison[]): Promise<number[]>;
  dispose(): Promise<void>;
}

/** The scoring methods a run can train (src/methods/registry.ts builds them). */
export const METHOD_NAMES = ['mcore', 'core', 'regression'] as const;
export type MethodName = (typeof METHOD_NAMES)[number];
