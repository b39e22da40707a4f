/**
 * Stage pooling (spec section 2): the K-1 transitions split a video's frames into K stages
 * F[:t_0], F[t_0:t_1], ..., F[t_{K-2}:]; each stage is resampled to L steps by linear interpolation
 * with aligned corners (sample i at position i (n-1)/(L-1) of a stage of n frames; n = 1 repeats the
 * frame), as the reference's `F.interpolate(..., mode='linear', align_corners=True)`.
 *
 * The resampling is a constant [K*L, T] matrix per video built on the CPU, applied as a matmul, so the
 * op is differentiable without gather (wasm lacks UnsortedSegmentSum).
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertShape, McoreError } from '../errors.ts';
import { interpolationMatrix } from './interpolation.ts';
import { customOp } from './layers.ts';

/**
 * F: [V, T, D], transitions: V x (K-1) -> tokens: [V, K*L, D] (stage s's L tokens at rows s*L..s*L+L-1).
 */
export function stagePool(F: tf.Tensor3D, transitions: readonly (readonly number[])[], L = 5): tf.Tensor3D {
  const [V, T] = F.shape;
  if (transitions.length !== V) {
    throw new McoreError('E_SHAPE', `stage pooling: ${transitions.length} transition rows for ${V} videos`);
  }
  const K = transitions[0].length + 1;
  for (const row of transitions) assertShape('stage pooling transitions', [row.length], [K - 1]);
  const mats = transitions.map((tr) => interpolationMatrix(tr, T, L));
  // Transposed matrices [T, K*L] for the backward pass.
  const matsT = mats.map((m) => {
    const t = new Float32Array(m.length);
    for (let r = 0; r < K * L; r++) for (let c = 0; c < T; c++) t[c * K * L + r] = m[r * T + c];
    return t;
  });
  const op = customOp(([f]) => {
    const videos = tf.unstack(f) as tf.Tensor2D[];
    const value = tf.stack(videos.map((fv, v) => tf.matMul(tf.tensor2d(mats[v], [K * L, T]), fv)));
    const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
      const dys = tf.unstack(dy) as tf.Tensor2D[];
      return [tf.stack(dys.map((g, v) => tf.matMul(tf.tensor2d(matsT[v], [T, K * L]), g)))];
    };
    return { value, gradFunc };
  });
  return op(F) as tf.Tensor3D;
}
