/**
 * Parameters are a flat record keyed by PyTorch-style names (`backbone.s3.b2.conv1.conv.weight`,
 * `segmenter.gru.weight_ih_l0_reverse`, `decoder.layers.0.attn.q_map.weight`, `regressor.layer1.bias`).
 * Values are stored in the layout tfjs computes with; `layout` says how to convert to PyTorch's
 * layout at the safetensors boundary (src/model/weights.ts):
 *   - 'same':   identical (biases, norms, BN statistics)
 *   - 'linear': ours [in, out]              <-> torch [out, in]
 *   - 'conv2d': ours HWIO [kh, kw, in/g, out] <-> torch OIHW [out, in/g, kh, kw]
 *   - 'conv3d': ours DHWIO [kd, kh, kw, in/g, out] <-> torch OIDHW
 *   - 'gru':    ours [in, 3H] (gates r, z, n) <-> torch [3H, in]  (a transpose, like 'linear')
 * Every module exports `xxxSpecs(config, prefix)` returning its specs; `initParams` builds variables.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../rng.ts';

export type TorchLayout = 'same' | 'linear' | 'conv2d' | 'conv3d' | 'gru';

export type ParamInit =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  /** Uniform(-bound, bound), PyTorch's default for Linear/GRU/Conv (bound = 1/sqrt(fan_in)). */
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number };

/** 'backbone' params train at 0.1x the head's learning rate; 'head' at 1x. */
export type ParamGroup = 'backbone' | 'head';

export interface ParamSpec {
  shape: number[];
  layout: TorchLayout;
  init: ParamInit;
  group: ParamGroup;
  /** false for BatchNorm running statistics: saved and loaded, never optimised. */
  trainable: boolean;
}

export type ParamSpecs = Record<string, ParamSpec>;

/** Parameter values by name; trainable ones are tf.Variable during training. */
export type Params = Record<string, tf.Tensor>;

export function spec(
  shape: number[],
  init: ParamInit,
  group: ParamGroup,
  layout: TorchLayout = 'same',
  trainable = true,
): ParamSpec {
  return { shape, layout, init, group, trainable };
}

export function initValue(s: ParamSpec, rng: Rng): Float32Array {
  const n = s.shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  const init = s.init;
  switch (init.kind) {
    case 'zeros':
      break;
    case 'ones':
      v.fill(1);
      break;
    case 'constant':
      v.fill(init.value);
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) v[i] = (rng.next() * 2 - 1) * init.bound;
      break;
    case 'normal':
      for (let i = 0; i < n; i++) v[i] = rng.normal() * init.std;
      break;
  }
  return v;
}

/**
 * Parameters from values in our layout: trainable ones become tf.Variable (engine-generated unique
 * names, so several models can coexist; ours is the record key), BN statistics stay plain tensors.
 */
export function paramsFromValues(specs: ParamSpecs, values: Record<string, Float32Array>): Params {
  const out: Params = {};
  for (const name of Object.keys(values)) {
    const s = specs[name];
    const t = tf.tensor(values[name], s.shape, 'float32');
    out[name] = s.trainable ? tf.variable(t, true) : t;
    if (s.trainable) t.dispose();
  }
  return out;
}

/** Builds every parameter from its spec, in name order, drawing from `rng`. */
export function initParams(specs: ParamSpecs, rng: Rng): Params {
  const values: Record<string, Float32Array> = {};
  for (const name of Object.keys(specs).sort()) values[name] = initValue(specs[name], rng);
  return paramsFromValues(specs, values);
}

/** Number of scalar values in the specs whose name starts with `prefix`. */
export function countParams(specs: ParamSpecs, prefix = ''): number {
  let n = 0;
  for (const [name, s] of Object.entries(specs)) {
    if (name.startsWith(prefix) && s.trainable) n += s.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}

export function disposeParams(params: Params): void {
  for (const t of Object.values(params)) t.dispose();
}

/**
 * Replaces the values of `params` named in `source` with copies of them (a pretrained backbone into a
 * freshly initialised model); names `params` lacks are skipped. Returns `params`.
 */
export function assignParams(params: Params, source: Params): Params {
  for (const [name, value] of Object.entries(source)) {
    const p = params[name];
    if (p === undefined) continue;
    if (p instanceof tf.Variable) p.assign(value);
    else {
      p.dispose();
      params[name] = value.clone();
    }
  }
  return params;
}

/**
 * Gradients of the scalar `f()` w.r.t. the named trainable parameters (default: every tf.Variable in
 * `params`), keyed by our parameter names (tfjs keys them by engine variable names).
 */
export function namedGrads(
  f: () => tf.Scalar,
  params: Params,
  names: readonly string[] = Object.keys(params).filter((k) => params[k] instanceof tf.Variable),
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const vars = names.map((k) => params[k] as tf.Variable);
  const { value, grads } = tf.variableGrads(f, vars);
  const out: Record<string, tf.Tensor> = {};
  names.forEach((k, i) => {
    out[k] = grads[vars[i].name];
  });
  return { value, grads: out };
}
