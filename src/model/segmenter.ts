/**
 * The procedure segmenter (spec section 2): BiGRU(D -> D per direction) -> dropout -> Linear(2D -> K-1)
 * gives per-frame logits whose channel k says "transition k happens at frame t", and the decoding of
 * those logits into transition frames at test time.
 * Reference names: `_pred_fine._gru.*` and `_pred_fine._fc_out._fc_out.*`; ours `segmenter.gru.*`
 * and `segmenter.fc_out.*`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { featureDim, type ModelConfig } from './config.ts';
import { biGruForward, gruSpecs } from './gru.ts';
import { linear, linearSpecs } from './layers.ts';
import type { ParamSpecs, Params } from './params.ts';

/** Specs of the segmenter: `${prefix}.gru.*` (hidden D) and `${prefix}.fc_out.{weight,bias}` [2D, K-1]. */
export function segmenterSpecs(cfg: ModelConfig, prefix = 'segmenter'): ParamSpecs {
  const D = featureDim(cfg);
  return {
    ...gruSpecs(`${prefix}.gru`, D, D),
    ...linearSpecs(`${prefix}.fc_out`, 2 * D, cfg.stages - 1),
  };
}

export interface SegmenterOptions {
  /** Dropout (cfg.segmenter.dropout) after the BiGRU only when training. */
  training: boolean;
  /** Seed of the dropout mask; pass a fresh one every step (the same seed gives the same mask). */
  seed?: number;
  /** false when F is data (cached features): no gradient to F, one [T*V, 6D] x [6D, D] matmul fewer. Default true. */
  gradFeatures?: boolean;
}

/** F: [V, T, D] -> logits: [V, T, K-1]. */
export function segmenterForward(
  params: Params,
  cfg: ModelConfig,
  F: tf.Tensor3D,
  opts: SegmenterOptions,
  prefix = 'segmenter',
): tf.Tensor3D {
  return tf.tidy(() => {
    let h: tf.Tensor = biGruForward(params, `${prefix}.gru`, F, { gradX: opts.gradFeatures ?? true });
    const rate = cfg.segmenter.dropout;
    if (opts.training && rate > 0) h = tf.dropout(h, rate, undefined, opts.seed);
    return linear(params, `${prefix}.fc_out`, h) as tf.Tensor3D;
  });
}

/**
 * Transition frames from segmenter logits, per video (test-time decoding of the reference).
 * `logits` is [V][T][K-1] or a row-major Float32Array of V*T*(K-1) values.
 *
 * General rule for K stages: split the T frames into K-1 windows of w = floor(T / (K-1)) frames;
 * transition k lies in window k: t_k = w*k + argmax_{t in [0, w)} L[w*k + t, k] (first maximum on
 * ties). A predicted 0 becomes 1 so that the first stage is never empty; the windows keep the
 * transitions strictly increasing and below T. For T = 96, K = 3: w = 48, t_0 in [1, 48), t_1 in [48, 96).
 * Returns V x (K-1) frame indices.
 */
export function decodeTransitions(logits: number[][][] | Float32Array, T: number, K: number): number[][] {
  const C = K - 1;
  const w = Math.floor(T / C);
  if (C < 1 || w < 2) {
    throw new McoreError('E_INPUT', `decodeTransitions: need K >= 2 and T >= 2(K-1), got T=${T}, K=${K}`);
  }
  const at: (v: number, t: number, k: number) => number =
    logits instanceof Float32Array ? (v, t, k) => logits[(v * T + t) * C + k] : (v, t, k) => logits[v][t][k];
  const V = logits instanceof Float32Array ? logits.length / (T * C) : logits.length;
  if (!Number.isInteger(V)) {
    throw new McoreError('E_SHAPE', `decodeTransitions: ${logits.length} values are not V x ${T} x ${C}`);
  }
  const out: number[][] = [];
  for (let v = 0; v < V; v++) {
    const row: number[] = [];
    for (let k = 0; k < C; k++) {
      let best = 0;
      for (let t = 1; t < w; t++) if (at(v, w * k + t, k) > at(v, w * k + best, k)) best = t;
      row.push(Math.max(1, w * k + best));
    }
    out.push(row);
  }
  return out;
}
