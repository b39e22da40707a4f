/**
 * The score-difference regressor (spec section 2): an MLP D -> 256 -> ReLU -> 64 -> ReLU -> 1
 * (hidden widths cfg.regressor.hidden) applied to every decoded token. Names
 * `regressor.layer{1,2,3}.{weight,bias}` (reference: `module.layer{1,2,3}.*`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { featureDim, type ModelConfig } from './config.ts';
import { linear, linearSpecs } from './layers.ts';
import type { ParamSpecs, Params } from './params.ts';

function widths(cfg: ModelConfig): number[] {
  return [featureDim(cfg), ...cfg.regressor.hidden, 1];
}

/** Specs of `${prefix}.layer{i}` for i = 1 .. hidden.length + 1. */
export function regressorSpecs(cfg: ModelConfig, prefix = 'regressor'): ParamSpecs {
  const w = widths(cfg);
  let out: ParamSpecs = {};
  for (let i = 0; i + 1 < w.length; i++)
    out = { ...out, ...linearSpecs(`${prefix}.layer${i + 1}`, w[i], w[i + 1]) };
  return out;
}

/** x: [N, D] -> [N, 1]. */
export function regressorForward(
  params: Params,
  cfg: ModelConfig,
  x: tf.Tensor2D,
  prefix = 'regressor',
): tf.Tensor2D {
  return tf.tidy(() => {
    const layers = widths(cfg).length - 1;
    let h: tf.Tensor = x;
    for (let i = 1; i <= layers; i++) {
      h = linear(params, `${prefix}.layer${i}`, h);
      if (i < layers) h = tf.relu(h);
    }
    return h as tf.Tensor2D;
  });
}
