/**
 * Building blocks of the MCoRe head (segmenter, decoder, regressor): parameter lookup, a 2-D matmul
 * whose gradient is made of plain matmuls, Linear, LayerNorm and the exact (erf) GELU.
 *
 * Why `matMul2d`: on the tfjs wasm backend only a plain 2-D matmul (no transpose flags, batch 1) takes
 * the fast XNNPACK path; the stock gradient of `tf.matMul` uses transpose flags and runs 8-27x slower.
 * `matMul2d` (kernels.ts's `matMul`, plus a variant without input gradient) transposes explicitly and
 * multiplies plainly in its backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
// kernels.ts also registers the stock op gradients (Sum, Mul, Tanh, ...) when it loads.
import { matMul, transpose2d } from './kernels.ts';
import { type ParamGroup, type ParamSpecs, type Params, spec } from './params.ts';

/** Gradient function of a custom op: dy and the saved tensors -> one gradient per input. */
export type CustomGradFn = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];

/**
 * A typed wrapper of `tf.customGrad`: `f(inputs, save)` returns the op's value and its gradient
 * function. Tensors passed to `save` (inputs or intermediates) come back as `saved` in the backward
 * pass and are freed after it by the engine.
 */
export function customOp(
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: CustomGradFn },
): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as tf.Tensor[];
    return f(inputs, save);
  });
  return (...inputs: tf.Tensor[]) => op(...inputs);
}

/** The parameter `name`, or E_WEIGHTS naming the missing key. */
export function getParam(params: Params, name: string): tf.Tensor {
  const t = params[name];
  if (t === undefined) {
    throw new McoreError('E_WEIGHTS', `missing parameter '${name}' (build params from the module's specs)`);
  }
  return t;
}

/**
 * a: [M, K], b: [K, N] -> [M, N]. With `gradA: false` no gradient flows to `a` (it is treated as data,
 * e.g. cached features), which skips one matmul in the backward pass.
 */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D, opts: { gradA?: boolean } = {}): tf.Tensor2D {
  if (opts.gradA !== false) return matMul(a, b);
  const op = customOp(([bb], save) => {
    save([a]);
    return {
      value: tf.matMul(a, bb as tf.Tensor2D),
      gradFunc: (dy, [sa]) => [tf.matMul(transpose2d(sa as tf.Tensor2D), dy as tf.Tensor2D)],
    };
  });
  return op(b) as tf.Tensor2D;
}

/** Specs of a Linear layer `${prefix}.weight` (ours [in, out], layout 'linear') and `${prefix}.bias`. */
export function linearSpecs(
  prefix: string,
  inFeatures: number,
  outFeatures: number,
  opts: { bias?: boolean; group?: ParamGroup } = {},
): ParamSpecs {
  const group = opts.group ?? 'head';
  const bound = 1 / Math.sqrt(inFeatures);
  const out: ParamSpecs = {
    [`${prefix}.weight`]: spec([inFeatures, outFeatures], { kind: 'uniform', bound }, group, 'linear'),
  };
  if (opts.bias ?? true) out[`${prefix}.bias`] = spec([outFeatures], { kind: 'uniform', bound }, group);
  return out;
}

/**
 * x: [..., in] -> [..., out] = x W + b with the params `${prefix}.weight` [in, out] and, when
 * present, `${prefix}.bias` [out].
 */
export function linear(params: Params, prefix: string, x: tf.Tensor): tf.Tensor {
  const w = getParam(params, `${prefix}.weight`) as tf.Tensor2D;
  const [inF, outF] = w.shape;
  const lead = x.shape.slice(0, -1);
  if (x.shape[x.shape.length - 1] !== inF) {
    throw new McoreError(
      'E_SHAPE',
      `${prefix}: expected input width ${inF}, found shape [${x.shape.join(', ')}]`,
    );
  }
  const rows = lead.reduce((p, d) => p * d, 1);
  let y: tf.Tensor = matMul2d(tf.reshape(x, [rows, inF]) as tf.Tensor2D, w);
  const b = params[`${prefix}.bias`];
  if (b !== undefined) y = tf.add(y, b);
  return tf.reshape(y, [...lead, outF]);
}

/** Specs of a LayerNorm `${prefix}.weight` (ones) and `${prefix}.bias` (zeros), both [D]. */
export function layerNormSpecs(prefix: string, dim: number, group: ParamGroup = 'head'): ParamSpecs {
  return {
    [`${prefix}.weight`]: spec([dim], { kind: 'ones' }, group),
    [`${prefix}.bias`]: spec([dim], { kind: 'zeros' }, group),
  };
}

/**
 * x: [..., D] -> [..., D]: LayerNorm over the last axis from its moments (biased variance, like
 * PyTorch), eps 1e-5, scaled by `${prefix}.weight` and shifted by `${prefix}.bias`.
 */
export function layerNorm(params: Params, prefix: string, x: tf.Tensor, eps = 1e-5): tf.Tensor {
  const gamma = getParam(params, `${prefix}.weight`);
  const beta = getParam(params, `${prefix}.bias`);
  const axis = x.shape.length - 1;
  const mean = tf.mean(x, axis, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axis, true);
  const normed = tf.mul(centred, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(normed, gamma), beta);
}

/** x -> 0.5 x (1 + erf(x / sqrt 2)): GELU in PyTorch's default (exact) form; any shape. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}
