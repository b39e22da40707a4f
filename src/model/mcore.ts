/**
 * MCoRe assembled (spec section 2): backbone features -> segmenter -> transitions -> stage pooling ->
 * stage-wise cross-attention decoder in both directions -> token regressor -> score differences.
 *
 * For a batch of B query/exemplar pairs (videos ordered [q_1..q_B, e_1..e_B]) and every stage s:
 *   Dq_s = Dec(q tokens of s, e tokens of s),  De_s = Dec(e tokens of s, q tokens of s),
 * all stages and both directions in one decoder call of 2B*K sequences; delta(q, e) is the mean of the
 * regressor over the K*L tokens of Dq, delta(e, q) the same over De.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertShape, McoreError } from '../errors.ts';
import { featureDim, type ModelConfig } from './config.ts';
import { decoderForward, decoderSpecs } from './decoder.ts';
import type { ParamSpecs, Params } from './params.ts';
import { backboneForward, backboneSpecs } from './regnet.ts';
import { regressorForward, regressorSpecs } from './regressor.ts';
import { segmenterForward, segmenterSpecs } from './segmenter.ts';
import { stagePool } from './stage-pool.ts';
import { decodeTransitions } from './transitions.ts';

/**
 * Specs of the head (`segmenter.*`, `decoder.*`, `regressor.*`) and, with `{ backbone: true }`, of
 * the RegNetY backbone with its GSMs (`backbone.*`).
 */
export function mcoreSpecs(cfg: ModelConfig, opts: { backbone?: boolean } = {}): ParamSpecs {
  return {
    ...(opts.backbone ? backboneSpecs(cfg.backbone, 'backbone') : {}),
    ...segmenterSpecs(cfg),
    ...decoderSpecs(cfg),
    ...regressorSpecs(cfg),
  };
}

/**
 * Backbone features [2B, T, D] (head-only; treated as data: the segmenter sends no gradient to them)
 * or frames [2B, T, H, W, 3] (end to end, through `backboneForward`).
 */
export type McoreInput = { features: tf.Tensor3D } | { frames: tf.Tensor5D };

export interface McoreForwardOptions {
  /** Training: dropout on, segmentation with the ground-truth `transitions` (required). */
  training: boolean;
  /** Ground-truth transitions, 2B x (K-1); in test mode they only pool `tokens` (for L_cont). */
  transitions?: number[][];
  /** Dropout seed; pass a fresh one every step. */
  seed?: number;
}

export interface McoreOutput {
  /** delta(q, e): [B] */
  deltaQE: tf.Tensor1D;
  /** delta(e, q): [B] */
  deltaEQ: tf.Tensor1D;
  /** Segmenter logits [2B, T, K-1]. */
  logits: tf.Tensor3D;
  /** Backbone features F [2B, T, D]. */
  features: tf.Tensor3D;
  /** Pooled features [2B, K*L, D] with the ground-truth segmentation when given, else the used one. */
  tokens: tf.Tensor3D;
  /** The transitions that segmented the decoder input: 2B x (K-1). */
  transitions: number[][];
}

/** Runs the model on B pairs; see McoreInput for the input shapes and McoreOutput for the outputs. */
export function mcoreForward(
  params: Params,
  cfg: ModelConfig,
  input: McoreInput,
  opts: McoreForwardOptions,
): McoreOutput {
  const D = featureDim(cfg);
  const K = cfg.stages;
  const L = cfg.tokensPerStage;
  const fromFrames = 'frames' in input;
  const V = fromFrames ? input.frames.shape[0] : input.features.shape[0];
  if (V % 2 !== 0 || V === 0) {
    throw new McoreError('E_SHAPE', `mcoreForward: need 2B videos (queries then exemplars), got ${V}`);
  }
  const B = V / 2;
  const gt = opts.transitions?.map((row) => [...row]);
  if (gt !== undefined) {
    assertShape('mcoreForward transitions', [gt.length], [V]);
    for (const row of gt) assertShape('mcoreForward transitions row', [row.length], [K - 1]);
  }
  if (opts.training && gt === undefined) {
    throw new McoreError('E_INPUT', 'mcoreForward: training needs the ground-truth transitions');
  }
  const segmentWithGt = opts.training && gt !== undefined;
  let used: number[][] = [];
  const out = tf.tidy(() => {
    const F = fromFrames
      ? backboneForward(params, cfg.backbone, input.frames, 'backbone')
      : tf.clone(input.features);
    assertShape('mcoreForward features', F.shape, [V, -1, D]);
    const T = F.shape[1];
    const logits = segmenterForward(params, cfg, F, {
      training: opts.training,
      seed: opts.seed,
      gradFeatures: fromFrames,
    });
    used = segmentWithGt && gt ? gt : decodeTransitions(logits.dataSync() as Float32Array, T, K);
    const pooled = stagePool(F, used, L); // [V, K*L, D]
    // Tokens for L_cont: pooled with the ground truth (the decoder input itself when it is).
    const tokens = gt !== undefined && !segmentWithGt ? stagePool(F, gt, L) : pooled;
    // Queries [q; e] against memories [e; q]: delta(q, e) for the first B, delta(e, q) for the rest.
    const swapped = tf.concat([
      tf.slice(pooled, [B, 0, 0], [B, K * L, D]),
      tf.slice(pooled, [0, 0, 0], [B, K * L, D]),
    ]);
    const deltas = compareTokens(params, cfg, pooled, swapped as tf.Tensor3D); // [V]
    return {
      deltaQE: tf.slice(deltas, [0], [B]) as tf.Tensor1D,
      deltaEQ: tf.slice(deltas, [B], [B]) as tf.Tensor1D,
      logits,
      features: F,
      tokens,
    };
  });
  return { ...out, transitions: used };
}

/**
 * delta(q, e) for N pairs of stage tokens: q, e [N, K*L, D] -> [N]. Each stage of q attends to the same
 * stage of e (one decoder call of N*K sequences); the regressor's outputs are averaged over the K*L tokens.
 */
export function compareTokens(params: Params, cfg: ModelConfig, q: tf.Tensor3D, e: tf.Tensor3D): tf.Tensor1D {
  return tf.tidy(() => {
    const [N] = q.shape;
    const K = cfg.stages;
    const L = cfg.tokensPerStage;
    const D = featureDim(cfg);
    const decoded = decoderForward(
      params,
      cfg,
      tf.reshape(q, [N * K, L, D]) as tf.Tensor3D,
      tf.reshape(e, [N * K, L, D]) as tf.Tensor3D,
    );
    const perToken = regressorForward(params, cfg, tf.reshape(decoded, [N * K * L, D]) as tf.Tensor2D);
    return tf.mean(tf.reshape(perToken, [N, K * L]), 1) as tf.Tensor1D;
  });
}
