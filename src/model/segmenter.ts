/**
 * The procedure segmenter (spec section 2): BiGRU(D -> D per direction) -> dropout -> Linear(2D -> K-1)
 * gives per-frame logits whose channel k says "transition k happens at frame t", and the decoding of
 * those logits into transition frames at test time.
 * Reference names: `_pred_fine._gru.*` and `_pred_fine._fc_out._fc_out.*`; ours `segmenter.gru.*`
 * and `segmenter.fc_out.*`.
 */
import * as tf from '@tensorflow/tfjs-core';
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
