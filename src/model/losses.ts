/**
 * MCoRe's training losses (spec section 3): L = L_aqa + L_tas + L_cont.
 * - L_aqa: MSE of both score differences against y_q - y_e and y_e - y_q (raw scores).
 * - L_tas: per transition channel, a softmax over time and cross-entropy at the ground-truth frame,
 *   channel k weighted by w_k (reference [1, 2]), averaged over channels and videos.
 * - L_cont: 'token' (reference code, tau 0.5) or 'stage' (paper wording, tau 0.1), both x10.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LossConfig } from '../config.ts';
import { assertShape, McoreError } from '../errors.ts';
import { registerStockGradients } from './kernels.ts';

// The stock op gradients (LogSoftmax, Mul, ...) are not registered by importing tfjs-core.
registerStockGradients();

export type { LossConfig } from '../config.ts';

/** deltaQE, deltaEQ: [B]; yQ, yE: [B] scores -> scalar MSE(deltaQE, yQ - yE) + MSE(deltaEQ, yE - yQ). */
export function aqaLoss(
  deltaQE: tf.Tensor1D,
  deltaEQ: tf.Tensor1D,
  yQ: tf.Tensor1D | number[],
  yE: tf.Tensor1D | number[],
): tf.Scalar {
  return tf.tidy(() => {
    const q = Array.isArray(yQ) ? tf.tensor1d(yQ) : yQ;
    const e = Array.isArray(yE) ? tf.tensor1d(yE) : yE;
    const diff = tf.sub(q, e);
    return tf.add(
      tf.mean(tf.squaredDifference(deltaQE, diff)),
      tf.mean(tf.squaredDifference(deltaEQ, tf.neg(diff))),
    ) as tf.Scalar;
  });
}

/**
 * logits: [V, T, K-1], transitions: V x (K-1) ground-truth frames -> scalar
 * mean_v sum_k w_k * (-log softmax_t(logits[v, :, k])[t_k]) / (K-1).
 * With weights [1, 2] this is the reference's mean of [-log p0(t0) - 2 log p1(t1)] / 2.
 */
export function tasLoss(
  logits: tf.Tensor3D,
  transitions: readonly (readonly number[])[],
  weights: readonly number[] = [1, 2],
): tf.Scalar {
  const [V, T, C] = logits.shape;
  if (weights.length !== C) {
    throw new McoreError(
      'E_CONFIG',
      `loss.tasWeights: need ${C} weights (one per transition), got ${weights.length}`,
    );
  }
  if (transitions.length !== V) {
    throw new McoreError('E_SHAPE', `tasLoss: ${transitions.length} transition rows for ${V} videos`);
  }
  // Constant [V, C, T] picking each channel's target frame, with its weight and the averaging folded in.
  const pick = new Float32Array(V * C * T);
  transitions.forEach((row, v) => {
    assertShape('tasLoss transitions', [row.length], [C]);
    row.forEach((t, k) => {
      if (!Number.isInteger(t) || t < 0 || t >= T) {
        throw new McoreError('E_INPUT', `tasLoss: transition ${t} of video ${v} is not a frame in [0, ${T})`);
      }
      pick[(v * C + k) * T + t] = weights[k] / (C * V);
    });
  });
  return tf.tidy(() => {
    const logp = tf.logSoftmax(tf.transpose(logits, [0, 2, 1])); // [V, C, T], softmax over time
    return tf.neg(tf.sum(tf.mul(logp, tf.tensor3d(pick, [V, C, T])))) as tf.Scalar;
  });
}

/** x: [..., D] -> rows scaled to unit L2 norm (norm floored at 1e-12, like F.normalize). */
function l2Normalize(x: tf.Tensor): tf.Tensor {
  const axis = x.shape.length - 1;
  return tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), axis, true), 1e-24)));
}

/** a: [N, M, D], b: [N, M, D] (unit rows) -> cos: [N, M, M] with cos[n, j, k] = a[n, j] . b[n, k]. */
function cosines(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.sum(tf.mul(tf.expandDims(a, 2), tf.expandDims(b, 1)), 3);
}

/**
 * GRACE-style loss of matched sets. zq, ze: [N, M, D] -> scalar mean over n, j of
 * (l(zq_j, Ze) + l(ze_j, Zq)) / 2 with
 *   l(a_j, B) = -log( e^{cos(a_j,b_j)/tau} / (sum_k e^{cos(a_j,b_k)/tau} + sum_{k!=j} e^{cos(a_j,a_k)/tau}) ).
 */
function matchedSetLoss(zq: tf.Tensor, ze: tf.Tensor, tau: number): tf.Scalar {
  const M = zq.shape[1] as number;
  const eye = tf.eye(M);
  // Adding -1e4 to the self-similarity makes its exponential underflow to exactly 0.
  const dropSelf = tf.mul(eye, -1e4);
  const a = l2Normalize(zq);
  const b = l2Normalize(ze);
  const side = (x: tf.Tensor, y: tf.Tensor): tf.Tensor => {
    const cross = tf.div(cosines(x, y), tau); // [N, M, M]
    const intra = tf.add(tf.div(cosines(x, x), tau), dropSelf);
    const denom = tf.logSumExp(tf.concat([cross, intra], 2), 2); // [N, M]
    const pos = tf.sum(tf.mul(cross, eye), 2); // [N, M]
    return tf.mean(tf.sub(denom, pos));
  };
  return tf.div(tf.add(side(a, b), side(b, a)), 2) as tf.Scalar;
}

export type ContrastiveVariant = 'token' | 'stage';

export interface ContrastiveOptions {
  /** Number of stages K in the token layout [2B, K*L, D]. */
  stages: number;
  /** Temperature (default 0.5 for 'token', 0.1 for 'stage'). */
  tau?: number;
  /** Multiplier (default 10). */
  weight?: number;
}

/**
 * tokens: [2B, K*L, D] pooled backbone features (ground-truth segmentation), videos [q_1..q_B, e_1..e_B]
 * -> scalar L_cont (spec section 3).
 * - 'token': for pair b and stage s the positive of query token j is exemplar token j of the same
 *   stage; the negatives are the other tokens of that stage in both videos; symmetric; mean over
 *   (b, s, j); tau 0.5.
 * - 'stage': each stage's L tokens averaged to one vector; the positive of the query's stage s is the
 *   exemplar's stage s, the negatives the other stages of both videos; symmetric; mean over (b, s);
 *   tau 0.1.
 * Both times `weight` (10).
 */
export function contrastiveLoss(
  tokens: tf.Tensor3D,
  variant: ContrastiveVariant,
  opts: ContrastiveOptions,
): tf.Scalar {
  const [V, KL, D] = tokens.shape;
  const K = opts.stages;
  const L = KL / K;
  if (V % 2 !== 0 || !Number.isInteger(L)) {
    throw new McoreError(
      'E_SHAPE',
      `contrastiveLoss: tokens [${tokens.shape.join(', ')}] are not [2B, ${K}*L, D]`,
    );
  }
  const B = V / 2;
  const tau = opts.tau ?? (variant === 'token' ? 0.5 : 0.1);
  const weight = opts.weight ?? 10;
  return tf.tidy(() => {
    const grouped = tf.reshape(tokens, [V, K, L, D]);
    let zq: tf.Tensor;
    let ze: tf.Tensor;
    if (variant === 'token') {
      zq = tf.reshape(tf.slice(grouped, [0, 0, 0, 0], [B, K, L, D]), [B * K, L, D]);
      ze = tf.reshape(tf.slice(grouped, [B, 0, 0, 0], [B, K, L, D]), [B * K, L, D]);
    } else {
      const stages = tf.mean(grouped, 2); // [V, K, D]
      zq = tf.slice(stages, [0, 0, 0], [B, K, D]);
      ze = tf.slice(stages, [B, 0, 0], [B, K, D]);
    }
    return tf.mul(matchedSetLoss(zq, ze, tau), weight) as tf.Scalar;
  });
}

/** What the losses read of a forward pass (see `mcoreForward`). */
export interface LossInputs {
  /** [B] */
  deltaQE: tf.Tensor1D;
  /** [B] */
  deltaEQ: tf.Tensor1D;
  /** [2B, T, K-1] */
  logits: tf.Tensor3D;
  /** [2B, K*L, D], pooled with the ground-truth transitions. */
  tokens: tf.Tensor3D;
}

/** Ground truth of a batch of B pairs, videos [q_1..q_B, e_1..e_B]. */
export interface LossTargets {
  /** 2B scores. */
  scores: readonly number[];
  /** 2B x (K-1) transition frames. */
  transitions: readonly (readonly number[])[];
}

/** The named loss terms; `total` = aqa + tas + cont is optimised. */
export interface McoreLossTerms {
  aqa: tf.Scalar;
  tas: tf.Scalar;
  cont: tf.Scalar;
  total: tf.Scalar;
}

/** L = L_aqa + L_tas + L_cont (cont = 0 for contrastive 'none'). */
export function totalLoss(out: LossInputs, targets: LossTargets, cfg: LossConfig): McoreLossTerms {
  const B = out.deltaQE.shape[0];
  if (targets.scores.length !== 2 * B) {
    throw new McoreError(
      'E_SHAPE',
      `totalLoss: ${targets.scores.length} scores for ${B} pairs (need ${2 * B})`,
    );
  }
  return tf.tidy(() => {
    const raw = aqaLoss(out.deltaQE, out.deltaEQ, targets.scores.slice(0, B), targets.scores.slice(B));
    const aqa =
      cfg.aqaWeight === undefined || cfg.aqaWeight === 1 ? raw : (tf.mul(raw, cfg.aqaWeight) as tf.Scalar);
    const tas = tasLoss(out.logits, targets.transitions, cfg.tasWeights);
    const cont =
      cfg.contrastive === 'none'
        ? tf.scalar(0)
        : contrastiveLoss(out.tokens, cfg.contrastive, {
            stages: out.logits.shape[2] + 1,
            tau: cfg.tau,
            weight: cfg.contWeight,
          });
    const total = tf.addN([aqa, tas, cont]) as tf.Scalar;
    return { aqa, tas, cont, total };
  });
}
