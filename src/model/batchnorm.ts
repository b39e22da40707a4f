/**
 * Frozen BatchNorm (spec 2.1): the backbone's BatchNorm layers, the GSMs' BatchNorm3d included, always
 * run in inference mode: running statistics are loaded and never updated, while the scale (`weight`)
 * and shift (`bias`) still learn. As in PyTorch's eval mode,
 *
 *   y = (x - running_mean) / sqrt(running_var + eps) * weight + bias,   eps = 1e-5,
 *
 * which is one per-channel affine map y = x * scale + shift. Names follow torch.nn.BatchNorm2d/3d
 * (`num_batches_tracked` is not kept; loaders treat it as optional).
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { type ParamGroup, type ParamSpecs, type Params, spec } from './params.ts';

/** PyTorch's BatchNorm default, used by timm's RegNet and by the GSM. */
export const BN_EPS = 1e-5;

/**
 * Specs of a BatchNorm over C channels: `${prefix}.weight` (ones) and `.bias` (zeros) trainable,
 * `.running_mean` (zeros) and `.running_var` (ones) saved and loaded but never optimised.
 */
export function batchNormSpecs(channels: number, prefix: string, group: ParamGroup = 'backbone'): ParamSpecs {
  return {
    [`${prefix}.weight`]: spec([channels], { kind: 'ones' }, group),
    [`${prefix}.bias`]: spec([channels], { kind: 'zeros' }, group),
    [`${prefix}.running_mean`]: spec([channels], { kind: 'zeros' }, group, 'same', false),
    [`${prefix}.running_var`]: spec([channels], { kind: 'ones' }, group, 'same', false),
  };
}

function param(params: Params, name: string): tf.Tensor1D {
  const t = params[name];
  if (t === undefined) {
    throw new McoreError('E_WEIGHTS', `missing parameter '${name}' (build params from the module's specs)`);
  }
  return t as tf.Tensor1D;
}

/**
 * The frozen BatchNorm `${prefix}` as a per-channel affine map: scale = weight / sqrt(var + eps),
 * shift = bias - mean * scale, both [C]; differentiable w.r.t. weight and bias. Folding `scale` into
 * the preceding conv's output channels gives the same result as conv then BatchNorm.
 */
export function batchNormAffine(params: Params, prefix: string): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  const weight = param(params, `${prefix}.weight`);
  const bias = param(params, `${prefix}.bias`);
  const mean = param(params, `${prefix}.running_mean`);
  const variance = param(params, `${prefix}.running_var`);
  const scale = tf.mul(weight, tf.rsqrt(tf.add(variance, BN_EPS))) as tf.Tensor1D;
  const shift = tf.sub(bias, tf.mul(mean, scale)) as tf.Tensor1D;
  return { scale, shift };
}

/**
 * x: [..., C] -> [..., C], frozen BatchNorm over the last axis (channels-last layout; for BatchNorm3d
 * on NCDHW the channel axis is our last axis too).
 *
 * @example batchNorm(params, 'backbone.stem.bn', x) // x [N, H, W, 32]
 */
export function batchNorm(params: Params, prefix: string, x: tf.Tensor): tf.Tensor {
  const { scale, shift } = batchNormAffine(params, prefix);
  const c = x.shape[x.shape.length - 1];
  if (scale.shape[0] !== c) {
    throw new McoreError(
      'E_SHAPE',
      `${prefix}: BatchNorm over ${scale.shape[0]} channels applied to shape [${x.shape.join(', ')}]`,
    );
  }
  return tf.add(tf.mul(x, scale), shift);
}
