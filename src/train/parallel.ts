/**
 * Data-parallel training steps (`train.threads` > 1): a batch of B pairs is split into one share of
 * contiguous pairs (each query with its exemplar) per thread of a gradient pool
 * (src/methods/gradient-pool.ts: worker threads, each with its own tfjs), and the shares' gradients and
 * loss terms are averaged, weighted by their pairs, before one Adam step on this thread. This thread
 * computes no share: while it ran tfjs, a worker's share ran ~40% slower on the 2-core machine (820
 * vs 580 ms, measured); two workers slow each other by ~20% only. Every loss term of MCoRe and its
 * baselines is a mean over pairs, over videos or over frames of equally long videos, so the weighted
 * average is the gradient of the whole batch up to float rounding (test/train/parallel.test.ts). Dropout masks are drawn per share (`shareSeed`), so a
 * run is reproducible for a given thread count, not across thread counts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ParamSpecs, Params } from '../model/params.ts';
import type { AdamConfig, AdamState } from './adam.ts';
import type { Method, PairBatch } from './method.ts';
import { applyStep, type stepGrads, trainableNames } from './step.ts';

/** A share of a batch as plain data, for another thread: input [2b, ...] with videos [q_1..q_b, e_1..e_b]. */
export interface ShareBatch {
  input: { data: Float32Array; shape: number[] };
  transitions: number[][];
  scores: number[];
  stageQualities?: number[][];
}

/**
 * What a thread returns for a share: its loss terms and the gradient of each trainable parameter (a
 * pool may hand out views of its own buffers, valid until its next `grads`).
 */
export interface ShareResult {
  terms: Record<string, number>;
  grads: Record<string, Float32Array>;
}

/** Threads that compute gradients of shares on the current parameter values. */
export interface GradientPool {
  /** Worker threads: the shares of a step. */
  readonly workers: number;
  /**
   * Sets every worker's trainable parameters to the values of `values` (this thread's tensors), then
   * computes share i on worker i with dropout seed `seeds[i]` (1 <= shares.length <= workers).
   */
  grads(values: Record<string, tf.Tensor>, shares: ShareBatch[], seeds: number[]): Promise<ShareResult[]>;
  /** Stops the workers. */
  close(): Promise<void>;
}

/** Splits B pairs into at most `parts` non-empty ranges [lo, hi) of near-equal size, in order. */
export function pairShares(B: number, parts: number): [number, number][] {
  const n = Math.min(B, parts);
  return Array.from({ length: n }, (_, i) => [Math.floor((i * B) / n), Math.floor(((i + 1) * B) / n)]);
}

/** The dropout seed of share i of a step whose seed is `seed` (share 0 keeps the step's seed). */
export function shareSeed(seed: number, i: number): number {
  return i === 0 ? seed : seed + i * 1_000_003;
}

/** Pairs [lo, hi) of a batch of B pairs, as a batch of hi - lo pairs (a new input tensor). */
export function shareOf(batch: PairBatch, lo: number, hi: number): PairBatch {
  const B = batch.scores.length / 2;
  const rows = [...range(lo, hi), ...range(B + lo, B + hi)];
  const pick = <T>(xs: readonly T[]) => rows.map((r) => xs[r]);
  return {
    input: tf.tidy(() =>
      tf.concat([tf.slice(batch.input, lo, hi - lo), tf.slice(batch.input, B + lo, hi - lo)]),
    ),
    transitions: pick(batch.transitions),
    scores: pick(batch.scores),
    ...(batch.stageQualities ? { stageQualities: pick(batch.stageQualities) } : {}),
  };
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo }, (_, i) => lo + i);
}

/**
 * One data-parallel optimisation step: as `trainStep` (src/train/step.ts), with the batch's pairs
 * split between the workers of `pool`. Returns the loss terms of the whole batch.
 */
export async function parallelTrainStep(
  method: Method,
  params: Params,
  specs: ParamSpecs,
  batch: PairBatch,
  adam: AdamState,
  adamCfg: AdamConfig,
  seed: number,
  pool: GradientPool,
): Promise<Record<string, number>> {
  const { terms, grads } = await parallelGrads(method, params, batch, seed, pool);
  return applyStep(params, specs, terms, grads, adam, adamCfg);
}

/**
 * As `stepGrads` (src/train/step.ts), with the batch's pairs split between the workers of `pool`: the
 * loss terms of the whole batch and its gradients (tensors the caller disposes).
 */
export async function parallelGrads(
  method: Method,
  params: Params,
  batch: PairBatch,
  seed: number,
  pool: GradientPool,
): Promise<ReturnType<typeof stepGrads>> {
  const B = batch.scores.length / 2;
  const ranges = pairShares(B, pool.workers);
  const names = trainableNames(method, params);
  const values: Record<string, tf.Tensor> = {};
  for (const k of names) values[k] = params[k];
  const shares: ShareBatch[] = ranges.map(([lo, hi]) => {
    const share = shareOf(batch, lo, hi);
    const data = share.input.dataSync() as Float32Array;
    const shape = [...share.input.shape];
    share.input.dispose();
    return { ...share, input: { data, shape } };
  });
  const results = await pool.grads(
    values,
    shares,
    shares.map((_, i) => shareSeed(seed, i)),
  );
  const weights = ranges.map(([a, b]) => (b - a) / B);
  const terms: Record<string, number> = {};
  for (const k of Object.keys(results[0].terms)) {
    terms[k] = results.reduce((sum, r, i) => sum + weights[i] * r.terms[k], 0);
  }
  // The weighted sum in tfjs (wasm SIMD): a JavaScript loop over the ~6.6M values of the full-size
  // head took ~90 ms a step (measured), a third of this thread's share of a step.
  const grads: Record<string, tf.Tensor> = {};
  for (const k of names) {
    const shape = params[k].shape;
    grads[k] = tf.tidy(() =>
      tf.addN(results.map((r, i) => tf.mul(tf.tensor(r.grads[k], shape), weights[i]))),
    );
  }
  return { terms, grads };
}
