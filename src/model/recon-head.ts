/**
 * The self-supervised auxiliary loss L_rec (loss.reconWeight; not part of MCoRe): each stage token must
 * predict, through one linear map shared by all tokens, the low-resolution picture of the frames it
 * pools — the video's own pixels, pooled with the same interpolation matrix over the same stage:
 *
 *     thumbs[v, t]   = avg-pool of frame t of video v to a G x G grid, RGB flattened (P = G*G*3 values)
 *     target[v]      = stagePool(thumbs[v], transitions[v], L)                    [K*L, P]
 *     rec[v, i]      = tokens[v, i, :] . W + b                                      [P]
 *     L_rec          = mean_{v,i,p} (rec - target)^2
 *
 * It needs no label beyond the stage transitions that training already uses. Trained from scores alone,
 * a small backbone learns what tells the action types apart (which explains most of a dive's score) and
 * little of how each stage was performed; L_rec makes each stage token keep the posture seen in that
 * stage, which the score head can then compare with an exemplar's. Measured in bench/learn.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertShape } from '../errors.ts';
import { getParam } from './layers.ts';
import { type ParamSpecs, type Params, spec } from './params.ts';
import { stagePool } from './stage-pool.ts';

/** Side of the reconstructed grid (8 x 8 cells of an average-pooled frame). */
export const RECON_GRID = 8;

/** Pooling window and output side for frames of `imageSize` pixels: window floor(S/G), stride = window. */
export function reconGeometry(imageSize: number, grid = RECON_GRID): { window: number; side: number } {
  const window = Math.max(1, Math.floor(imageSize / grid));
  return { window, side: Math.floor((imageSize - window) / window) + 1 };
}

/** `${prefix}.weight` [D, P] and `${prefix}.bias` [P], P = side^2 * 3 (uniform +-1/sqrt(D), as Linear). */
export function reconHeadSpecs(D: number, imageSize: number, prefix = 'recon'): ParamSpecs {
  const { side } = reconGeometry(imageSize);
  const P = side * side * 3;
  const bound = 1 / Math.sqrt(D);
  return {
    [`${prefix}.weight`]: spec([D, P], { kind: 'uniform', bound }, 'head'),
    [`${prefix}.bias`]: spec([P], { kind: 'uniform', bound }, 'head'),
  };
}

/** frames [V, T, S, S, 3] -> thumbnails [V, T, P] (average pooling; no gradient is needed through it). */
export function reconThumbnails(frames: tf.Tensor5D): tf.Tensor3D {
  return tf.tidy(() => {
    const [V, T, H, W, C] = frames.shape;
    const { window } = reconGeometry(Math.min(H, W));
    const pooled = tf.avgPool(tf.reshape(frames, [V * T, H, W, C]) as tf.Tensor4D, window, window, 'valid');
    return tf.reshape(pooled, [V, T, -1]) as tf.Tensor3D;
  });
}

/**
 * L_rec of stage tokens [V, K*L, D] pooled with `transitions` from `frames` [V, T, S, S, 3]: a scalar.
 */
export function reconLoss(
  params: Params,
  tokens: tf.Tensor3D,
  frames: tf.Tensor5D,
  transitions: readonly (readonly number[])[],
  prefix = 'recon',
): tf.Scalar {
  return tf.tidy(() => {
    const [V, KL, D] = tokens.shape;
    const w = getParam(params, `${prefix}.weight`);
    const P = w.shape[1] as number;
    assertShape(`${prefix}.weight`, w.shape, [D, P]);
    const thumbs = reconThumbnails(frames);
    assertShape('reconstruction thumbnails', thumbs.shape, [V, frames.shape[1], P]);
    const target = stagePool(thumbs, transitions, KL / (transitions[0].length + 1)); // [V, K*L, P]
    const rec = tf.add(tf.matMul(tf.reshape(tokens, [V * KL, D]), w), getParam(params, `${prefix}.bias`));
    return tf.mean(tf.squaredDifference(rec, tf.reshape(target, [V * KL, P]))) as tf.Scalar;
  });
}
