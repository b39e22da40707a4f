/**
 * Differentiable 2-D convolution (dense and grouped) and matrix product that train on the tfjs wasm
 * backend, which lacks Conv2DBackpropFilter and DepthwiseConv2dNativeBackpropInput/Filter and whose
 * Conv2DBackpropInput, transposed/batched matmuls, DepthToSpace, rank-2 transposes and Slice are slow
 * paths. Every gradient here is built from fast kernels (XNNPACK conv, depthwise conv, plain 2-D
 * matmul, rank-3/4 transpose, pad) inside `tf.customGrad`:
 *
 *   - forward, groups = 1: `tf.conv2d` with explicit PyTorch-style symmetric padding.
 *   - forward, groups > 1 (PyTorch `groups`): one depthwise conv with channel multiplier go (outputs
 *     per group) on the weight rearranged to [kh, kw, Cin, go], then the sum over the gi inputs of each
 *     group as a plain matmul with a 0/1 matrix. Never a block-diagonal dense conv, never a loop.
 *   - input gradient: dy is spread onto the stride grid with zeros (two rank-4 pads), then convolved
 *     by the same forward with the flipped, in/out-swapped weight; 1x1 convs multiply first, at the
 *     output resolution, and spread the result.
 *   - weight gradient: im2col by a depthwise conv with a one-hot [kh, kw, Cin, kh*kw] kernel, then
 *     dy^T im2col as one matmul (groups = 1), one matmul keeping its diagonal blocks (few groups) or one
 *     batched matmul over groups (many groups); a dense k x k conv with few outputs uses instead the
 *     forward conv of x^T with dy^T (dilation = stride).
 *
 * Weights are HWIO [kh, kw, Cin/groups, Cout] (PyTorch OIHW [Cout, Cin/groups, kh, kw] transposed).
 * Every path is checked against a float64 reference and by finite differences on wasm and cpu
 * (test/model/kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { STOCK_GRADIENTS } from './stock-gradients.ts';

/** Registers the stock op gradients once; called when this module loads. */
export function registerStockGradients(): void {
  for (const g of STOCK_GRADIENTS) {
    if (tf.getGradient(g.kernelName) === undefined) tf.registerGradient(g);
  }
}
registerStockGradients();

export interface Conv2dOptions {
  /** Stride in both spatial dims (default 1). */
  stride?: number;
  /** Symmetric zero padding in both spatial dims, PyTorch-style (default 0). */
  pad?: number;
  /** PyTorch `groups`: Cin and Cout are split into this many independent groups (default 1). */
  groups?: number;
  /**
   * Whether the gradient w.r.t. `x` is needed (default true). `false` for a network's first conv on
   * raw frames saves the input-gradient computation; the input then gets no gradient at all.
   */
  inputGrad?: boolean;
}

/** Gradient function of a custom op: dy and the saved tensors -> one gradient per input. */
type GradFn = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];

/** Typed `tf.customGrad`: f(inputs, save) -> the value and its gradient function. */
function customOp(
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFn },
): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return f(args.slice(0, -1) as tf.Tensor[], save);
  });
  return (...inputs: tf.Tensor[]) => op(...inputs);
}

type Pad2 = [[number, number], [number, number], [number, number], [number, number]];

function pad4(top: number, bottom: number, left: number, right: number): Pad2 {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/** A 0/1 matrix [gi*go, go] summing the gi rows of each (i, m) block: S[i*go + m, m'] = [m == m']. */
function groupSumMatrix(gi: number, go: number): tf.Tensor2D {
  const v = new Float32Array(gi * go * go);
  for (let i = 0; i < gi; i++) for (let m = 0; m < go; m++) v[(i * go + m) * go + m] = 1;
  return tf.tensor2d(v, [gi * go, go]);
}

/** The one-hot im2col kernel [kh, kw, C, kh*kw]: tap t = a*kw + b picks input offset (a, b). */
function im2colKernel(kh: number, kw: number, c: number): tf.Tensor4D {
  const kk = kh * kw;
  const v = new Float32Array(kk * c * kk);
  for (let t = 0; t < kk; t++) for (let ch = 0; ch < c; ch++) v[(t * c + ch) * kk + t] = 1;
  return tf.tensor4d(v, [kh, kw, c, kk]);
}

/**
 * Grouped conv forward with explicit (possibly asymmetric) padding, no gradient recording needed.
 * x: [N, H, W, Cin], w: HWIO [kh, kw, Cin/groups, Cout] -> [N, H', W', Cout].
 */
function convForward(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: Pad2, groups: number): tf.Tensor4D {
  if (groups === 1) return tf.conv2d(x, w, stride, pad);
  const [kh, kw, gi, cout] = w.shape;
  const go = cout / groups;
  const cin = gi * groups;
  // wd[kh, kw, G*gi + i, m] = w[kh, kw, i, G*go + m]
  const wd = tf.reshape(tf.transpose(tf.reshape(w, [kh * kw, gi, groups, go]), [0, 2, 1, 3]), [
    kh,
    kw,
    cin,
    go,
  ]) as tf.Tensor4D;
  const z = tf.depthwiseConv2d(x, wd, stride, pad);
  if (gi === 1) return z;
  const [n, ho, wo] = z.shape;
  const y = tf.matMul(tf.reshape(z, [n * ho * wo * groups, gi * go]), groupSumMatrix(gi, go));
  return tf.reshape(y, [n, ho, wo, cout]);
}

/**
 * Inserts stride-1 zeros between the rows and columns of dy, then pads/crops so that a stride-1
 * conv with the flipped weight gives the input gradient. dy: [N, H', W', C] -> [N, Hd, Wd, C] plus
 * the explicit padding for that conv.
 */
function dilateForTranspose(
  dy: tf.Tensor4D,
  inH: number,
  inW: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
): { d: tf.Tensor4D; pad: Pad2 } {
  const [n, ho, wo, c] = dy.shape;
  let d = dy;
  if (stride > 1) {
    // Zero rows/columns after every element via two rank-4 pads (DepthToSpace and
    // BatchToSpaceND are 20-80x slower on wasm).
    const s1 = tf.pad(tf.reshape(dy, [n * ho, wo, 1, c]), [
      [0, 0],
      [0, 0],
      [0, stride - 1],
      [0, 0],
    ]);
    const s2 = tf.pad(tf.reshape(s1, [n, ho, 1, wo * stride * c]), [
      [0, 0],
      [0, 0],
      [0, stride - 1],
      [0, 0],
    ]);
    d = tf.reshape(s2, [n, ho * stride, wo * stride, c]);
  }
  // Rows of the input not reached by the last window: r = (H + 2p - k) mod s.
  const rh = (inH + 2 * pad - kh) % stride;
  const rw = (inW + 2 * pad - kw) % stride;
  let bottom = kh - 1 - pad + rh - (stride - 1);
  let right = kw - 1 - pad + rw - (stride - 1);
  if (bottom < 0 || right < 0) {
    d = tf.slice(
      d,
      [0, 0, 0, 0],
      [n, ho * stride + Math.min(bottom, 0), wo * stride + Math.min(right, 0), c],
    );
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  return { d, pad: pad4(kh - 1 - pad, bottom, kw - 1 - pad, right) };
}

/** Weight of the transposed conv: w'[a, b, m, G*gi + i] = w[kh-1-a, kw-1-b, i, G*go + m]. */
function transposedWeight(w: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [kh, kw, gi, cout] = w.shape;
  const go = cout / groups;
  const flipped = kh * kw > 1 ? tf.reverse(w, [0, 1]) : w;
  return tf.reshape(tf.transpose(tf.reshape(flipped, [kh * kw, gi, groups, go]), [0, 3, 2, 1]), [
    kh,
    kw,
    go,
    groups * gi,
  ]) as tf.Tensor4D;
}

/** im2col: x [N, H, W, C] -> [N*H'*W', C*kh*kw], column c*kh*kw + t holds tap t of channel c. */
function im2col(x: tf.Tensor4D, kh: number, kw: number, stride: number, pad: number): tf.Tensor2D {
  const [, , , c] = x.shape;
  if (kh === 1 && kw === 1 && stride === 1 && pad === 0) return tf.reshape(x, [-1, c]);
  const p = tf.depthwiseConv2d(x, im2colKernel(kh, kw, c), stride, pad4(pad, pad, pad, pad));
  return tf.reshape(p, [-1, c * kh * kw]);
}

/**
 * m: [R, C] -> [C, R]. On wasm a rank-2 transpose is ~3x slower than the same data movement
 * expressed at rank 3, so one side is split into two factors first.
 */
export function transpose2d(m: tf.Tensor2D): tf.Tensor2D {
  const [r, c] = m.shape;
  const split = (k: number): number => {
    for (let a = 2; a * a <= k; a++) if (k % a === 0) return a;
    return 0;
  };
  const ar = split(r);
  if (ar > 0) return tf.reshape(tf.transpose(tf.reshape(m, [ar, r / ar, c]), [2, 0, 1]), [c, r]);
  const ac = split(c);
  if (ac > 0) return tf.reshape(tf.transpose(tf.reshape(m, [r, ac, c / ac]), [1, 2, 0]), [c, r]);
  return tf.transpose(m);
}

/**
 * a [R, N], b [R, K] -> a^T b [N, K], for R >> N, K. XNNPACK packs the right operand of a matmul on
 * every call, which costs more than a rank-3 transpose, so the narrower operand goes on the right.
 */
function crossRows(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (b.shape[1] > a.shape[1]) return transpose2d(tf.matMul(transpose2d(b), a));
  return tf.matMul(transpose2d(a), b);
}

/** Above this many groups the per-group batched matmul beats one dense matmul (measured on wasm). */
const DENSE_FILTER_GRAD_MAX_GROUPS = 12;

/**
 * The diagonal blocks of a block matrix: g [(G, a), (G', b)] as [G*a, G*b] -> [G, a, b] with G' = G.
 * Row G of the flat array padded by G*b zeros, read with row length a*G*b + b, starts with block G.
 */
function diagonalBlocks(g: tf.Tensor2D, blocks: number, a: number, b: number): tf.Tensor3D {
  const rowLen = a * blocks * b + b;
  const flat = tf.pad(tf.reshape(g, [1, blocks * a * blocks * b]), [
    [0, 0],
    [0, blocks * b],
  ]);
  const rows = tf.slice(tf.reshape(flat, [blocks, rowLen]), [0, 0], [blocks, a * blocks * b]);
  return tf.slice(tf.reshape(rows, [blocks, a, blocks * b]), [0, 0, 0], [blocks, a, b]) as tf.Tensor3D;
}

/** Up to this many output channels a dense k x k conv's dW is faster as a conv than by im2col. */
const CONV_FILTER_GRAD_MAX_COUT = 8;

/**
 * dW of a dense conv as a forward conv (measured 2.5-3x faster than im2col for few output channels):
 * dW[a, b, i, o] = sum over n, y, x of xpad[n, s*y + a, s*x + b, i] * dy[n, y, x, o] is the valid
 * conv of xpad^T [Cin, Hp, Wp, N] with dy^T [H', W', N, Cout] at dilation s.
 * x [N,H,W,Cin], dy [N,H',W',Cout] -> HWIO [kh, kw, Cin, Cout].
 */
function filterGradByConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
): tf.Tensor4D {
  const xp = pad > 0 ? tf.pad(x, pad4(pad, pad, pad, pad)) : x;
  const xt = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
  const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  let g = tf.conv2d(xt, f, 1, 'valid', 'NHWC', stride); // [Cin, kh + r, kw + r', Cout]
  if (g.shape[1] !== kh || g.shape[2] !== kw)
    g = tf.slice(g, [0, 0, 0, 0], [xt.shape[0], kh, kw, dy.shape[3]]);
  return tf.transpose(g, [1, 2, 0, 3]);
}

/**
 * dW of a conv with `groups` groups: x [N,H,W,Cin], dy [N,H',W',Cout] -> HWIO [kh, kw, Cin/G, Cout].
 * From the im2col P [R, (G', i, t)] and dy [R, (G, m)]: groups = 1 is one matmul; few groups one
 * dense matmul dy^T P keeping its diagonal blocks; many groups one batched matmul over groups.
 */
function filterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
  groups: number,
): tf.Tensor4D {
  const cin = x.shape[3];
  const cout = dy.shape[3];
  const gi = cin / groups;
  const go = cout / groups;
  const kk = kh * kw;
  if (groups === 1 && kk > 1 && cout <= CONV_FILTER_GRAD_MAX_COUT)
    return filterGradByConv(x, dy, kh, kw, stride, pad);
  const p = im2col(x, kh, kw, stride, pad); // [R, Cin*kk], column (G, i, t)
  const r = p.shape[0];
  const dy2 = tf.reshape(dy, [r, cout]) as tf.Tensor2D;
  let g: tf.Tensor; // [Cout, gi*kk], row (G, m), column (i, t)
  if (groups === 1) {
    g = crossRows(dy2, p);
  } else if (groups <= DENSE_FILTER_GRAD_MAX_GROUPS) {
    g = diagonalBlocks(crossRows(dy2, p), groups, go, gi * kk);
  } else {
    const pg = tf.transpose(tf.reshape(p, [r, groups, gi * kk]), [1, 0, 2]); // [G, R, gi*kk]
    const dyg = tf.transpose(tf.reshape(dy2, [r, groups, go]), [1, 2, 0]); // [G, go, R]
    g = tf.matMul(dyg, pg); // [G, go, gi*kk]
  }
  const hwio = tf.transpose(tf.reshape(g, [cout, gi, kk]), [2, 1, 0]); // [kk, gi, Cout]
  return tf.reshape(hwio, [kh, kw, gi, cout]);
}

function checkConvArgs(x: tf.Tensor, w: tf.Tensor, stride: number, pad: number, groups: number): void {
  if (x.rank !== 4 || w.rank !== 4) {
    throw new McoreError(
      'E_SHAPE',
      `conv2d: expected x [N,H,W,C] and w [kh,kw,Cin/g,Cout], found ranks ${x.rank}, ${w.rank}`,
    );
  }
  const [, h, wd, cin] = x.shape;
  const [kh, kw, gi, cout] = w.shape;
  const ok =
    Number.isInteger(groups) &&
    groups >= 1 &&
    cin % groups === 0 &&
    cout % groups === 0 &&
    gi === cin / groups &&
    stride >= 1 &&
    pad >= 0 &&
    pad <= Math.min(kh, kw) - 1 &&
    h + 2 * pad >= kh &&
    wd + 2 * pad >= kw;
  if (!ok) {
    throw new McoreError(
      'E_SHAPE',
      `conv2d: x [${x.shape}] and w [${w.shape}] do not fit stride ${stride}, pad ${pad}, groups ${groups} ` +
        `(need Cin = groups x w.shape[2], Cout divisible by groups, 0 <= pad < kernel)`,
    );
  }
}

/**
 * 2-D convolution, PyTorch semantics (symmetric zero padding, `groups`), NHWC.
 * x: [N, H, W, Cin], w: HWIO [kh, kw, Cin/groups, Cout] -> [N, floor((H+2p-kh)/s)+1, ..., Cout].
 * Differentiable w.r.t. x (unless `inputGrad: false`) and w on the wasm and cpu backends.
 *
 * @example conv2d(x, w, { stride: 2, pad: 1, groups: 3 }) // RegNet's grouped 3x3, group width 8
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, opts: Conv2dOptions = {}): tf.Tensor4D {
  const stride = opts.stride ?? 1;
  const pad = opts.pad ?? 0;
  const groups = opts.groups ?? 1;
  const inputGrad = opts.inputGrad ?? true;
  checkConvArgs(x, w, stride, pad, groups);
  const [, inH, inW] = x.shape;
  const [kh, kw] = w.shape;
  const padding = pad4(pad, pad, pad, pad);
  const dW = (xs: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D =>
    filterGrad(xs, dy, kh, kw, stride, pad, groups);
  if (!inputGrad) {
    const filterOnly = customOp(([wv], save) => {
      save([x]);
      return {
        value: convForward(x, wv as tf.Tensor4D, stride, padding, groups),
        gradFunc: (dy, [xs]) => [dW(xs as tf.Tensor4D, dy as tf.Tensor4D)],
      };
    });
    return filterOnly(w) as tf.Tensor4D;
  }
  const op = customOp(([xv, wv], save) => {
    save([xv, wv]);
    return {
      value: convForward(xv as tf.Tensor4D, wv as tf.Tensor4D, stride, padding, groups),
      gradFunc: (dy, [xs, ws]) => {
        const dy4 = dy as tf.Tensor4D;
        const wt = transposedWeight(ws as tf.Tensor4D, groups);
        let dx: tf.Tensor4D;
        if (kh === 1 && kw === 1 && pad === 0) {
          // 1x1: multiply at the output resolution, then spread the result onto the stride grid.
          const z = convForward(dy4, wt, 1, pad4(0, 0, 0, 0), groups);
          dx = dilateForTranspose(z, inH, inW, 1, 1, stride, 0).d;
        } else {
          const { d, pad: dpad } = dilateForTranspose(dy4, inH, inW, kh, kw, stride, pad);
          dx = convForward(d, wt, 1, dpad, groups);
        }
        return [dx, dW(xs as tf.Tensor4D, dy4)];
      },
    };
  });
  return op(x, w) as tf.Tensor4D;
}

/**
 * Plain matrix product a [M, K] x b [K, N] -> [M, N] whose gradient uses explicit transposes and
 * plain 2-D matmuls (the stock gradient of tf.matMul uses transpose flags, a slow path on wasm).
 * With `gradB: false`, b is a constant (a selection or mixing matrix): it gets no gradient.
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D, opts: { gradB?: boolean } = {}): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new McoreError('E_SHAPE', `matMul: expected [M,K] x [K,N], found [${a.shape}] x [${b.shape}]`);
  }
  if (opts.gradB === false) {
    const op = customOp(([av], save) => {
      save([b]);
      return {
        value: tf.matMul(av as tf.Tensor2D, b),
        gradFunc: (dy, [bs]) => [tf.matMul(dy as tf.Tensor2D, transpose2d(bs as tf.Tensor2D))],
      };
    });
    return op(a) as tf.Tensor2D;
  }
  return matMulOp(a, b) as tf.Tensor2D;
}

const matMulOp = customOp(([a, b], save) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy, [as, bs]) => [
      tf.matMul(dy as tf.Tensor2D, transpose2d(bs as tf.Tensor2D)),
      crossRows(as as tf.Tensor2D, dy as tf.Tensor2D),
    ],
  };
});
