/**
 * Gate Shift Module (Sudhakaran, Escalera, Lanz, "Gate-Shift Networks for Video Action Recognition",
 * CVPR 2020), as wrapped around the first 1x1 conv of every RegNet block by MCoRe (spec 2.1; reference:
 * `models/impl/gsm.py` and `models/shift.py` of Angel-1999/MCoRe, adapted from swathikirans/GSM).
 *
 * Frames travel as batch, NHWC: x [V*T, H, W, C] with the T frames of each video consecutive. Only the
 * first `fold = ceil((C div 4) / 4) * 4` channels go through the module; the rest pass unchanged. On
 * those fold channels, split into halves x1, x2 of h = fold/2 channels:
 *
 *   gate g = tanh(Conv3d(fold -> 2, 3x3x3, padding 1, groups 2)(ReLU(BN3d(x))))   (g = 0 at init)
 *   y_i = g_i * x_i,  r_i = x_i - y_i
 *   out1[t] = y1[t+1] + r1[t]   (zero beyond the last frame: shift toward the past)
 *   out2[t] = y2[t-1] + r2[t]   (zero before the first frame: shift toward the future)
 *   within each half, new channel 2j + a = old channel a*(h/2) + j   (view (2, h/2) -> (h/2, 2))
 *
 * The shuffle makes the module a channel permutation even when g = 0. The grouped Conv3d (torch weight
 * (2, h, 3, 3, 3), ours DHWIO [3, 3, 3, h, 2]; output k sees input channels [k*h, (k+1)*h)) runs as one
 * grouped 2-D conv per frame giving all three temporal taps, then summed over neighbouring frames of
 * the same video (wasm's Conv3D kernels are several times slower). In the backbone the shuffle and the
 * pass-through channels are folded into the wrapped 1x1 conv's weight (`gsmConv1x1`) rather than
 * materialised; `gsm` is the module on its own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { batchNorm, batchNormSpecs } from './batchnorm.ts';
import { conv2d, matMul } from './kernels.ts';
import { type ParamGroup, type ParamSpecs, type Params, spec } from './params.ts';

/** Channels routed through the GSM of a C-channel input: ceil((C div 4) / 4) * 4 (MCoRe's n_div 4). */
export function gsmFold(channels: number): number {
  return Math.ceil(Math.floor(channels / 4) / 4) * 4;
}

function foldOf(channels: number, prefix: string): number {
  const fold = gsmFold(channels);
  if (fold === 0 || fold > channels) {
    throw new McoreError('E_CONFIG', `${prefix}: a GSM needs at least 4 input channels, found ${channels}`);
  }
  return fold;
}

/**
 * Specs of the GSM `${prefix}` on a C-channel input: `.conv3D.weight` DHWIO [3, 3, 3, fold/2, 2]
 * (layout 'conv3d', zeros), `.conv3D.bias` [2] (zeros) and the BatchNorm3d `.bn.*` over fold channels.
 */
export function gsmSpecs(channels: number, prefix: string, group: ParamGroup = 'backbone'): ParamSpecs {
  const fold = foldOf(channels, prefix);
  return {
    [`${prefix}.conv3D.weight`]: spec([3, 3, 3, fold / 2, 2], { kind: 'zeros' }, group, 'conv3d'),
    [`${prefix}.conv3D.bias`]: spec([2], { kind: 'zeros' }, group),
    ...batchNormSpecs(fold, `${prefix}.bn`, group),
  };
}

function param(params: Params, name: string): tf.Tensor {
  const t = params[name];
  if (t === undefined) {
    throw new McoreError('E_WEIGHTS', `missing parameter '${name}' (build params from the module's specs)`);
  }
  return t;
}

/**
 * y: [V, T, K] -> the same shifted along T with zero fill: dir = +1 gives out[t] = y[t+1],
 * dir = -1 gives out[t] = y[t-1].
 */
function shiftTime(y: tf.Tensor3D, dir: 1 | -1): tf.Tensor3D {
  const [v, t, k] = y.shape;
  if (t === 1) return tf.zerosLike(y);
  const kept = tf.slice(y, [0, dir === 1 ? 1 : 0, 0], [v, t - 1, k]);
  return tf.pad(kept, [[0, 0], dir === 1 ? [0, 1] : [1, 0], [0, 0]]);
}

/** A constant 0/1 matrix [rows, cols] with ones where `on(row, col)`. */
function selection(rows: number, cols: number, on: (r: number, c: number) => boolean): tf.Tensor2D {
  const v = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (on(r, c)) v[r * cols + c] = 1;
  return tf.tensor2d(v, [rows, cols]);
}

/** A constant 0/1 vector [n] with ones where `on(i)`. */
function mask(n: number, on: (i: number) => boolean): tf.Tensor1D {
  return tf.tensor1d(Array.from({ length: n }, (_, i) => (on(i) ? 1 : 0)));
}

/**
 * The grouped Conv3d weight DHWIO [3, 3, 3, h, 2] as one dense 2-D conv weight [3, 3, 2h, 6] giving
 * every temporal tap: column 2d + k is output k of tap d; rows of the other group are zero.
 */
function tapWeight(w: tf.Tensor): tf.Tensor4D {
  const h = w.shape[3] as number;
  const wt = tf.reshape(tf.transpose(w, [1, 2, 3, 0, 4]), [3, 3, h, 6]); // [a, b, i, (d, k)]
  const rows = (k: number) => mask(6, (c) => c % 2 === k);
  const group0 = tf.pad(tf.mul(wt, rows(0)), [
    [0, 0],
    [0, 0],
    [0, h],
    [0, 0],
  ]);
  const group1 = tf.pad(tf.mul(wt, rows(1)), [
    [0, 0],
    [0, 0],
    [h, 0],
    [0, 0],
  ]);
  return tf.add(group0, group1) as tf.Tensor4D;
}

/**
 * The GSM gate. xFold: [V*T, H, W, fold] (the GSM's input channels), T frames per video ->
 * g: [V*T, H, W, 2] in (-1, 1), channel k gating half k.
 */
export function gsmGate(params: Params, prefix: string, xFold: tf.Tensor4D, frames: number): tf.Tensor4D {
  const [nt, hh, ww, fold] = xFold.shape;
  const w = param(params, `${prefix}.conv3D.weight`);
  const ws = w.shape as number[];
  if (w.rank !== 5 || ws[3] * 2 !== fold || ws[4] !== 2 || nt % frames !== 0) {
    throw new McoreError(
      'E_SHAPE',
      `${prefix}: gate of x [${xFold.shape.join(', ')}] with ${frames} frames needs conv3D.weight ` +
        `[3, 3, 3, ${fold / 2}, 2], found [${ws.join(', ')}]`,
    );
  }
  const a = tf.relu(batchNorm(params, `${prefix}.bn`, xFold)) as tf.Tensor4D;
  // Torch Conv3d (cross-correlation, padding 1): z[t] = sum over taps d of W[d] * a[t + d - 1]. One
  // 2-D conv per frame gives all taps; each tap is then taken out whole and moved to its frame.
  const rows = nt * hh * ww;
  const z = tf.reshape(conv2d(a, tapWeight(w), { pad: 1 }), [rows, 6]) as tf.Tensor2D;
  const tap = (d: number) => {
    const zd = matMul(
      z,
      selection(6, 2, (r, c) => r === 2 * d + c),
      { gradB: false },
    );
    return tf.reshape(zd, [nt / frames, frames, hh * ww * 2]) as tf.Tensor3D;
  };
  const pre = tf.add(tf.add(shiftTime(tap(0), -1), tap(1)), shiftTime(tap(2), 1));
  const gate = tf.tanh(tf.add(tf.reshape(pre, [rows, 2]), param(params, `${prefix}.conv3D.bias`)));
  return tf.reshape(gate, [nt, hh, ww, 2]);
}

/**
 * Gating and temporal shift of the GSM's fold channels, before the channel shuffle:
 * xFold [V*T, H, W, fold] -> [V*T, H, W, fold] with out1[t] = y1[t+1] + r1[t], out2[t] = y2[t-1] + r2[t].
 */
export function gsmShift(params: Params, prefix: string, xFold: tf.Tensor4D, frames: number): tf.Tensor4D {
  const [nt, hh, ww, fold] = xFold.shape;
  if (nt % frames !== 0) {
    throw new McoreError(
      'E_SHAPE',
      `${prefix}: ${nt} frames in the batch are not a multiple of T = ${frames}`,
    );
  }
  const h = fold / 2;
  const rows = nt * hh * ww;
  const gate = tf.reshape(gsmGate(params, prefix, xFold, frames), [rows, 2]) as tf.Tensor2D;
  // Gate k repeated over the h channels of half k (a matmul: no broadcast along the channel axis).
  const g = matMul(
    gate,
    selection(2, fold, (k, c) => Math.floor(c / h) === k),
    { gradB: false },
  );
  const x2 = tf.reshape(xFold, [rows, fold]);
  const y = tf.mul(x2, g);
  const r = tf.sub(x2, y);
  const byVideo = tf.reshape(y, [nt / frames, frames, hh * ww * fold]) as tf.Tensor3D;
  const back = tf.mul(
    tf.reshape(shiftTime(byVideo, 1), [rows, fold]),
    mask(fold, (c) => c < h),
  ); // y1[t+1]
  const fwd = tf.mul(
    tf.reshape(shiftTime(byVideo, -1), [rows, fold]),
    mask(fold, (c) => c >= h),
  ); // y2[t-1]
  return tf.reshape(tf.add(r, tf.add(back, fwd)), [nt, hh, ww, fold]) as tf.Tensor4D;
}

/**
 * The GSM channel shuffle on the fold channels: within each half, new channel 2j + a = old channel
 * a*(h/2) + j. o: [..., fold] -> [..., fold].
 */
export function gsmShuffle(o: tf.Tensor): tf.Tensor {
  const fold = o.shape[o.shape.length - 1];
  const lead = o.shape.slice(0, -1);
  const rows = lead.reduce((p, d) => p * d, 1);
  const t = tf.transpose(tf.reshape(o, [rows * 2, 2, fold / 4]), [0, 2, 1]);
  return tf.reshape(t, o.shape);
}

/**
 * The GSM `${prefix}` on x: [V*T, H, W, C] with T frames per video -> [V*T, H, W, C]: the first fold
 * channels gated, shifted in time and shuffled (see the module comment), the rest unchanged.
 *
 * @example gsm(params, 'backbone.s3.b2.conv1.gsm', x, 8) // x [V*8, 7, 7, 152], fold 40
 */
export function gsm(params: Params, prefix: string, x: tf.Tensor4D, frames: number): tf.Tensor4D {
  const [nt, hh, ww, c] = x.shape;
  const fold = foldOf(c, prefix);
  const xf = fold === c ? x : (tf.slice(x, [0, 0, 0, 0], [nt, hh, ww, fold]) as tf.Tensor4D);
  const shuffled = gsmShuffle(gsmShift(params, prefix, xf, frames));
  if (fold === c) return shuffled as tf.Tensor4D;
  return tf.concat([shuffled, tf.slice(x, [0, 0, 0, fold], [nt, hh, ww, c - fold])], 3) as tf.Tensor4D;
}

/**
 * conv2d(gsm(x), w) for a 1x1 stride-1 weight w [1, 1, C, Cout], computed as
 * conv2d(x, w with the fold rows zeroed) + conv2d(gsmShift(x_fold), w's fold rows permuted by the
 * shuffle), which avoids materialising the shuffle and the channel concat. x: [V*T, H, W, C] ->
 * [V*T, H, W, Cout].
 */
export function gsmConv1x1(
  params: Params,
  prefix: string,
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  frames: number,
): tf.Tensor4D {
  const [nt, hh, ww, c] = x.shape;
  const fold = foldOf(c, prefix);
  const cout = w.shape[3];
  if (w.shape[0] !== 1 || w.shape[1] !== 1 || w.shape[2] !== c) {
    throw new McoreError(
      'E_SHAPE',
      `${prefix}: expected a [1, 1, ${c}, Cout] weight, found [${w.shape.join(', ')}]`,
    );
  }
  const rows = nt * hh * ww;
  const xf = tf.reshape(
    matMul(
      tf.reshape(x, [rows, c]) as tf.Tensor2D,
      selection(c, fold, (r, k) => r === k),
      { gradB: false },
    ),
    [nt, hh, ww, fold],
  ) as tf.Tensor4D;
  const o = gsmShift(params, prefix, xf, frames);
  const w2 = tf.reshape(w, [c, cout]);
  // Row `old` of the permuted weight is row new(old) of w: rows (half, j, a) -> (half, a, j).
  const wf = tf.slice(w2, [0, 0], [fold, cout]);
  const wPerm = tf.reshape(tf.transpose(tf.reshape(wf, [2, fold / 4, 2, cout]), [0, 2, 1, 3]), [
    1,
    1,
    fold,
    cout,
  ]);
  const yFold = conv2d(o, wPerm as tf.Tensor4D);
  if (fold === c) return yFold;
  const keep = tf.reshape(
    mask(c, (i) => i >= fold),
    [c, 1],
  );
  const wRest = tf.reshape(tf.mul(w2, keep), [1, 1, c, cout]) as tf.Tensor4D;
  return tf.add(conv2d(x, wRest), yFold) as tf.Tensor4D;
}
