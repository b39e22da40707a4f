/**
 * A one-layer bidirectional GRU with PyTorch's semantics (torch.nn.GRU, batch_first): gates in the
 * order r, z, n and the reset gate applied after the hidden matmul ("reset-after"):
 *
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h,   h_0 = 0
 *
 * The reverse direction runs the same cell from the last frame to the first; the output at frame t is
 * [h_fwd(t), h_rev(t)]. Parameters `${prefix}.weight_ih_l0` (ours [in, 3H], torch [3H, in]),
 * `weight_hh_l0` [H, 3H], `bias_ih_l0` [3H], `bias_hh_l0` [3H], and the same with `_reverse`.
 *
 * Speed on wasm: the input projections of all frames and both directions are one plain 2-D matmul;
 * the recurrence is one custom op with a hand-written backpropagation through time whose per-step
 * work is one small plain matmul per direction plus gate arithmetic in JavaScript (see
 * `biGruRecurrence`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { transpose2d } from './kernels.ts';
import { customOp, getParam, matMul2d } from './layers.ts';
import { type ParamGroup, type ParamSpecs, type Params, spec } from './params.ts';

const DIRECTIONS = ['', '_reverse'] as const;

/** Specs of a bidirectional one-layer GRU; init uniform(+-1/sqrt(H)) like PyTorch. */
export function gruSpecs(
  prefix: string,
  inputSize: number,
  hiddenSize: number,
  group: ParamGroup = 'head',
): ParamSpecs {
  const init = { kind: 'uniform', bound: 1 / Math.sqrt(hiddenSize) } as const;
  const out: ParamSpecs = {};
  for (const d of DIRECTIONS) {
    out[`${prefix}.weight_ih_l0${d}`] = spec([inputSize, 3 * hiddenSize], init, group, 'gru');
    out[`${prefix}.weight_hh_l0${d}`] = spec([hiddenSize, 3 * hiddenSize], init, group, 'gru');
    out[`${prefix}.bias_ih_l0${d}`] = spec([3 * hiddenSize], init, group);
    out[`${prefix}.bias_hh_l0${d}`] = spec([3 * hiddenSize], init, group);
  }
  return out;
}

/** Sizes of one direction's run; `col` is its first column in the [T*V, 6H] projections. */
interface DirectionDims {
  T: number;
  V: number;
  H: number;
  reverse: boolean;
  col: number;
}

/** Per-direction state kept by the forward pass for backpropagation through time. */
interface DirectionTrace {
  /** Gates and W_hn h + b_hn, each [T, V, H] by frame. */
  r: Float32Array;
  z: Float32Array;
  n: Float32Array;
  ghn: Float32Array;
  /** Input hidden state of every step, transposed: [H, T*V] with column step*V + v. */
  hPrevT: Float32Array;
}

/**
 * One direction of the recurrence on plain values. xp: [T*V, 6H] input projections without b_ih,
 * time-major rows; bih, bhh: [3H]. Writes h(t) into out[(t*V + v)*H + j]; returns the trace.
 */
function runDirection(
  xp: Float32Array,
  whh: tf.Tensor2D,
  bih: Float32Array,
  bhh: Float32Array,
  dims: DirectionDims,
  out: Float32Array,
): DirectionTrace {
  const { T, V, H, reverse, col } = dims;
  const H3 = 3 * H;
  const size = T * V * H;
  const trace: DirectionTrace = {
    r: new Float32Array(size),
    z: new Float32Array(size),
    n: new Float32Array(size),
    ghn: new Float32Array(size),
    hPrevT: new Float32Array(size),
  };
  let h: Float32Array = new Float32Array(V * H);
  let gh: Float32Array = new Float32Array(V * H3); // W_hh h: zero for h_0 = 0
  for (let step = 0; step < T; step++) {
    const t = reverse ? T - 1 - step : step;
    if (step > 0) {
      const ghT = tf.tidy(() => tf.matMul(tf.tensor2d(h, [V, H]), whh));
      gh = ghT.dataSync() as Float32Array;
      ghT.dispose();
    }
    const hNew = new Float32Array(V * H);
    for (let v = 0; v < V; v++) {
      const x0 = (t * V + v) * 2 * H3 + col;
      const g0 = v * H3;
      for (let j = 0; j < H; j++) {
        const r = 1 / (1 + Math.exp(-(xp[x0 + j] + bih[j] + gh[g0 + j] + bhh[j])));
        const z = 1 / (1 + Math.exp(-(xp[x0 + H + j] + bih[H + j] + gh[g0 + H + j] + bhh[H + j])));
        const ghn = gh[g0 + 2 * H + j] + bhh[2 * H + j];
        // tanh(a) = 1 - 2 / (e^(2a) + 1): exact in float64 at float32 precision, faster than Math.tanh.
        const n = 1 - 2 / (Math.exp(2 * (xp[x0 + 2 * H + j] + bih[2 * H + j] + r * ghn)) + 1);
        const hp = h[v * H + j];
        const hn = n + z * (hp - n);
        const k = (t * V + v) * H + j;
        trace.r[k] = r;
        trace.z[k] = z;
        trace.n[k] = n;
        trace.ghn[k] = ghn;
        trace.hPrevT[j * T * V + step * V + v] = hp;
        hNew[v * H + j] = hn;
        out[k] = hn;
      }
    }
    h = hNew;
  }
  return trace;
}

/**
 * Backpropagation through time of one direction. dy: [T, V, H] this direction's output gradient by
 * frame. Writes its gradient of the projections into dXp [T*V, 6H] (its 3H columns); returns
 * [dbih [3H], dWhh [H, 3H], dbhh [3H]].
 */
function backDirection(
  dy: Float32Array,
  whh: tf.Tensor2D,
  trace: DirectionTrace,
  dims: DirectionDims,
  dXp: Float32Array,
): tf.Tensor[] {
  const { T, V, H, reverse, col } = dims;
  const H3 = 3 * H;
  const dG = new Float32Array(T * V * H3); // rows step*V + v: gradient of W_hh h + b_hh
  const dbih = new Float32Array(H3);
  const whhT = transpose2d(whh);
  let dhNext: Float32Array = new Float32Array(V * H);
  for (let step = T - 1; step >= 0; step--) {
    const t = reverse ? T - 1 - step : step;
    const dhPrev = new Float32Array(V * H);
    for (let v = 0; v < V; v++) {
      const x0 = (t * V + v) * 2 * H3 + col;
      const g0 = (step * V + v) * H3;
      for (let j = 0; j < H; j++) {
        const k = (t * V + v) * H + j;
        const r = trace.r[k];
        const z = trace.z[k];
        const n = trace.n[k];
        const hp = trace.hPrevT[j * T * V + step * V + v];
        const dh = dy[k] + dhNext[v * H + j];
        const dan = dh * (1 - z) * (1 - n * n);
        const dar = dan * trace.ghn[k] * r * (1 - r);
        const daz = dh * (hp - n) * z * (1 - z);
        dXp[x0 + j] = dar;
        dXp[x0 + H + j] = daz;
        dXp[x0 + 2 * H + j] = dan;
        dbih[j] += dar;
        dbih[H + j] += daz;
        dbih[2 * H + j] += dan;
        dG[g0 + j] = dar;
        dG[g0 + H + j] = daz;
        dG[g0 + 2 * H + j] = dan * r;
        dhPrev[v * H + j] = dh * z;
      }
    }
    if (step > 0) {
      const rows = dG.subarray(step * V * H3, (step + 1) * V * H3);
      const m = tf.tidy(() => tf.matMul(tf.tensor2d(rows, [V, H3]), whhT));
      const back = m.dataSync();
      m.dispose();
      for (let i = 0; i < V * H; i++) dhPrev[i] += back[i];
    }
    dhNext = dhPrev;
  }
  whhT.dispose();
  // b_hh gets the same gradient as W_hh h; its r and z parts equal those of b_ih.
  const dbhh = dbih.slice();
  dbhh.fill(0, 2 * H);
  for (let row = 0; row < T * V; row++) for (let c = 2 * H; c < H3; c++) dbhh[c] += dG[row * H3 + c];
  const dWhh = tf.tidy(() => tf.matMul(tf.tensor2d(trace.hPrevT, [H, T * V]), tf.tensor2d(dG, [T * V, H3])));
  return [tf.tensor1d(dbih), dWhh, tf.tensor1d(dbhh)];
}

/**
 * The recurrence of both directions as one differentiable op for T frames of V videos.
 * Inputs: xp [T*V, 6H] (x W_ih of both directions, without bias, time-major rows t*V + v),
 * bihF, bihR [3H], whhF, whhR [H, 3H], bhhF, bhhR [3H]. Output: [2, T, V, H] (direction, frame,
 * video, unit).
 *
 * Each step runs its hidden matmul on the backend and the gate arithmetic (a few flops per unit) in
 * plain JavaScript on the read-back values: on wasm a step then costs one kernel launch instead of a
 * dozen. The backward pass is backpropagation through time with the same split; the hidden-weight
 * gradient is one [H, T*V] x [T*V, 3H] matmul at the end.
 */
function biGruRecurrence(T: number, V: number): (...inputs: tf.Tensor[]) => tf.Tensor {
  return customOp((inputs, save) => {
    const [xp, bihF, bihR, whhF, whhR, bhhF, bhhR] = inputs;
    const H = (whhF as tf.Tensor2D).shape[0];
    const xpv = xp.dataSync() as Float32Array;
    const whh = [whhF, whhR] as tf.Tensor2D[];
    const bih = [bihF, bihR].map((b) => b.dataSync() as Float32Array);
    const bhh = [bhhF, bhhR].map((b) => b.dataSync() as Float32Array);
    const dims = [0, 1].map((d) => ({ T, V, H, reverse: d === 1, col: 3 * H * d }));
    const out = new Float32Array(2 * T * V * H);
    const traces = [0, 1].map((d) =>
      runDirection(xpv, whh[d], bih[d], bhh[d], dims[d], out.subarray(d * T * V * H)),
    );
    save([whhF, whhR]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const dyv = dy.dataSync() as Float32Array;
      const dXp = new Float32Array(T * V * 6 * H);
      const [gF, gR] = [0, 1].map((d) =>
        backDirection(dyv.subarray(d * T * V * H), saved[d] as tf.Tensor2D, traces[d], dims[d], dXp),
      );
      return [tf.tensor2d(dXp, [T * V, 6 * H]), gF[0], gR[0], gF[1], gR[1], gF[2], gR[2]];
    };
    return { value: tf.tensor4d(out, [2, T, V, H]), gradFunc };
  });
}

/**
 * x: [V, T, In] -> [V, T, 2H]: the bidirectional GRU over every video, outputs [h_fwd(t), h_rev(t)].
 * `gradX: false` treats x as data (no gradient to it), which skips a [T*V, 6H] x [6H, In] matmul when
 * training on cached features.
 */
export function biGruForward(
  params: Params,
  prefix: string,
  x: tf.Tensor3D,
  opts: { gradX?: boolean } = {},
): tf.Tensor3D {
  return tf.tidy(() => {
    const [V, T, In] = x.shape;
    // Time-major rows (t*V + v) so each step's inputs are contiguous.
    const xt = tf.reshape(tf.transpose(x, [1, 0, 2]), [T * V, In]) as tf.Tensor2D;
    const p = (name: string, d: string) => getParam(params, `${prefix}.${name}_l0${d}`);
    const wih = tf.concat(
      DIRECTIONS.map((d) => p('weight_ih', d)),
      1,
    ) as tf.Tensor2D; // [In, 6H]
    const xp = matMul2d(xt, wih, { gradA: opts.gradX });
    const [bih, whh, bhh] = ['bias_ih', 'weight_hh', 'bias_hh'].map((n) => DIRECTIONS.map((d) => p(n, d)));
    const y = biGruRecurrence(T, V)(xp, bih[0], bih[1], whh[0], whh[1], bhh[0], bhh[1]); // [2, T, V, H]
    const H = whh[0].shape[0];
    return tf.reshape(tf.transpose(y, [2, 1, 0, 3]), [V, T, 2 * H]) as tf.Tensor3D;
  });
}
