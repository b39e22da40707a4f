/**
 * Random parameters for speed benchmarks with nothing left at its identity init: the GSM gates
 * (conv3D) and the BatchNorm statistics, whose spec'd init is zero/unit, are redrawn from `seed`.
 * Mutates and returns `params`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ParamSpecs, Params } from '../src/model/params.ts';
import { createRng } from '../src/rng.ts';

export function randomizeIdentityParts(params: Params, specs: ParamSpecs, seed = 1): Params {
  const rng = createRng(seed);
  for (const name of Object.keys(params)) {
    const n = params[name].size;
    let v: Float32Array | undefined;
    if (name.includes('conv3D.')) v = Float32Array.from({ length: n }, () => rng.normal() * 0.1);
    else if (name.endsWith('running_var')) v = Float32Array.from({ length: n }, () => 0.5 + rng.next());
    else if (name.endsWith('running_mean')) v = Float32Array.from({ length: n }, () => rng.normal() * 0.1);
    if (v) {
      params[name].dispose();
      params[name] = tf.tensor(v, specs[name].shape);
    }
  }
  return params;
}
