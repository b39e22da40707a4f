/**
 * The stage-quality probe behind the auxiliary loss L_q (loss.qualityWeight; not part of MCoRe): a
 * linear map per stage from the stage's pooled tokens to its hidden quality,
 *
 *     q_hat[v, s] = mean_l tokens[v, s*L + l, :] . W[s, :] + b[s],    L_q = mean_{v,s} (q_hat - q)^2.
 *
 * It is linear on purpose: to lower L_q the backbone must make each stage's quality cues linearly
 * readable from its features, which is what pretraining it with L_q is for.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertShape } from '../errors.ts';
import { getParam } from './layers.ts';
import { type ParamSpecs, type Params, spec } from './params.ts';

/** `${prefix}.weight` [K, D] and `${prefix}.bias` [K] (uniform +-1/sqrt(D), as Linear). */
export function qualityHeadSpecs(K: number, D: number, prefix = 'quality'): ParamSpecs {
  const bound = 1 / Math.sqrt(D);
  return {
    [`${prefix}.weight`]: spec([K, D], { kind: 'uniform', bound }, 'head'),
    [`${prefix}.bias`]: spec([K], { kind: 'uniform', bound }, 'head'),
  };
}

/** tokens [V, K*L, D] -> predicted stage qualities [V, K]. */
export function qualityHeadForward(
  params: Params,
  tokens: tf.Tensor3D,
  K: number,
  prefix = 'quality',
): tf.Tensor2D {
  return tf.tidy(() => {
    const [V, KL, D] = tokens.shape;
    const w = getParam(params, `${prefix}.weight`);
    assertShape(`${prefix}.weight`, w.shape, [K, D]);
    const stages = tf.mean(tf.reshape(tokens, [V, K, KL / K, D]), 2); // [V, K, D]
    return tf.add(tf.sum(tf.mul(stages, w), 2), getParam(params, `${prefix}.bias`)) as tf.Tensor2D;
  });
}

/** L_q: mean squared error of the predicted stage qualities [V, K] against `qualities` (V x K). */
export function qualityLoss(predicted: tf.Tensor2D, qualities: readonly (readonly number[])[]): tf.Scalar {
  return tf.tidy(() => {
    assertShape('stage qualities', [qualities.length, qualities[0]?.length ?? 0], predicted.shape);
    return tf.mean(tf.squaredDifference(predicted, tf.tensor2d(qualities.map((q) => [...q])))) as tf.Scalar;
  });
}
