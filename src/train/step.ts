/**
 * One optimisation step, in two halves that data-parallel training (./parallel.ts) reuses: the
 * gradients of a batch's loss (`stepGrads`) and the update from them (`applyStep`: the divergence
 * check, then Adam).
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { namedGrads, type ParamSpecs, type Params } from '../model/params.ts';
import { type AdamConfig, type AdamState, adamStep } from './adam.ts';
import type { Method, PairBatch } from './method.ts';

/** The names of `params` that training updates: trainable variables the method specifies. */
export function trainableNames(method: Method, params: Params): string[] {
  return Object.keys(params).filter((k) => {
    const p = params[k];
    return p instanceof tf.Variable && p.trainable && method.specs[k] !== undefined;
  });
}

/**
 * The loss terms of `batch` as numbers and the gradient of `total` w.r.t. each trainable parameter
 * (tensors the caller disposes). `seed` drives dropout.
 */
export function stepGrads(
  method: Method,
  params: Params,
  batch: PairBatch,
  seed: number,
): { terms: Record<string, number>; grads: Record<string, tf.Tensor> } {
  const kept: Record<string, tf.Scalar> = {};
  const { value, grads } = namedGrads(
    () => {
      const terms = method.loss(params, batch, { seed });
      for (const [k, t] of Object.entries(terms)) if (k !== 'total') kept[k] = tf.keep(t);
      return terms.total;
    },
    params,
    trainableNames(method, params),
  );
  const terms: Record<string, number> = { total: value.dataSync()[0] };
  for (const [k, t] of Object.entries(kept)) terms[k] = t.dataSync()[0];
  tf.dispose([value, ...Object.values(kept)]);
  return { terms, grads };
}

/**
 * Applies gradients with Adam and disposes them. A non-finite loss is McoreError('E_DIVERGED') thrown
 * before the update, so the parameters stay as they were.
 */
export function applyStep(
  params: Params,
  specs: ParamSpecs,
  terms: Record<string, number>,
  grads: Record<string, tf.Tensor>,
  adam: AdamState,
  adamCfg: AdamConfig,
): Record<string, number> {
  try {
    if (!Number.isFinite(terms.total)) {
      const parts = Object.entries(terms)
        .filter(([k]) => k !== 'total')
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      throw new McoreError('E_DIVERGED', `the loss is ${terms.total} (${parts})`);
    }
    adamStep(params, specs, grads, adam, adamCfg);
    return terms;
  } finally {
    tf.dispose(Object.values(grads));
  }
}

/**
 * One optimisation step on this thread; returns the loss terms as numbers. Leaves no tensors behind. A
 * non-finite loss is McoreError('E_DIVERGED') thrown before the update.
 */
export function trainStep(
  method: Method,
  params: Params,
  specs: ParamSpecs,
  batch: PairBatch,
  adam: AdamState,
  adamCfg: AdamConfig,
  seed: number,
): Record<string, number> {
  const { terms, grads } = stepGrads(method, params, batch, seed);
  return applyStep(params, specs, terms, grads, adam, adamCfg);
}
