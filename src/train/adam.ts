/**
 * Adam exactly as PyTorch computes it (no weight decay, no amsgrad), with per-group learning rates and
 * a state keyed by our parameter names, so a checkpoint restores it bit for bit:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ParamGroup, ParamSpecs, Params } from '../model/params.ts';

export interface AdamConfig {
  /** Learning rate of the head (segmenter, decoder, regressor); reference 1e-3. */
  lr: number;
  /** Backbone + GSM learning rate as a multiple of `lr`; reference 0.1. */
  backboneLrScale: number;
  beta1: number;
  beta2: number;
  eps: number;
}

export const DEFAULT_ADAM: AdamConfig = {
  lr: 1e-3,
  backboneLrScale: 0.1,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
};

export interface AdamState {
  step: number;
  /** First and second moments by parameter name. */
  m: Record<string, tf.Tensor>;
  v: Record<string, tf.Tensor>;
}

export function createAdamState(): AdamState {
  return { step: 0, m: {}, v: {} };
}

/** Applies one update to every parameter that has a gradient. Disposes nothing of the caller's. */
export function adamStep(
  params: Params,
  specs: ParamSpecs,
  grads: Record<string, tf.Tensor>,
  state: AdamState,
  cfg: AdamConfig,
): void {
  state.step += 1;
  const t = state.step;
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2 = 1 - cfg.beta2 ** t;
  for (const [name, g] of Object.entries(grads)) {
    const p = params[name];
    if (!(p instanceof tf.Variable)) continue;
    const group: ParamGroup = specs[name]?.group ?? 'head';
    const lr = group === 'backbone' ? cfg.lr * cfg.backboneLrScale : cfg.lr;
    const m0 = state.m[name];
    const v0 = state.v[name];
    const [m, v] = tf.tidy(() => {
      const gm = tf.mul(g, 1 - cfg.beta1);
      const gv = tf.mul(tf.square(g), 1 - cfg.beta2);
      const m = m0 ? tf.add(tf.mul(m0, cfg.beta1), gm) : gm;
      const v = v0 ? tf.add(tf.mul(v0, cfg.beta2), gv) : gv;
      const denom = tf.add(tf.sqrt(tf.div(v, bc2)), cfg.eps);
      p.assign(tf.sub(p, tf.mul(tf.div(tf.div(m, bc1), denom), lr)));
      return [m, v];
    });
    m0?.dispose();
    v0?.dispose();
    state.m[name] = m;
    state.v[name] = v;
  }
}

export function disposeAdamState(state: AdamState): void {
  for (const t of Object.values(state.m)) t.dispose();
  for (const t of Object.values(state.v)) t.dispose();
  state.m = {};
  state.v = {};
}
