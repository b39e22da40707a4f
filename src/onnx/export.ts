/**
 * ONNX export of MCoRe's own architecture (opset 17), in three graphs that mirror the tfjs forward
 * functions they are checked against (test/onnx/export.test.ts):
 *
 *   backbone   frames [N = V*T, 3, H, W] (NCHW, ImageNet-normalised) -> features [V, T, D]
 *              (= backboneForward of src/model/regnet.ts on the NHWC frames [V, T, H, W, 3])
 *   segmenter  features [V, T, D] -> logits [V, T, K-1]  (= segmenterForward, training false)
 *   scorer     q_tokens, e_tokens [N, K*L, D] -> delta [N] (= compareTokens of src/model/mcore.ts)
 *
 * Stage pooling and transition decoding stay in TypeScript: they are tiny and data-dependent.
 *
 * Layouts: conv and GRU weights go through `toTorchLayout` (src/model/weights.ts), which is ONNX's
 * layout too (OIHW, OIDHW, [3H, In]); Linear weights stay [in, out], the right operand of MatMul.
 * Rewrites that change no result beyond float rounding:
 *   - every frozen BatchNorm after a conv is folded into that conv's weight and bias; the GSM's own
 *     BatchNorm3d (followed by ReLU) is one Mul + Add;
 *   - the GSM's 3-D gate conv is a 2-D conv per temporal tap plus a shifted sum along T;
 *   - RegNet groups of 8 channels are merged in pairs and a block's inner width padded to 16-channel
 *     blocks with zero weights (innerLayout), so ONNX Runtime runs the grouped convs in NCHWc;
 *   - the GSM's channel shuffle is folded into the wrapped 1x1 conv by permuting its input channels
 *     (as `gsmConv1x1` does in tfjs), so no shuffle is materialised;
 *   - the attention's 1/sqrt(head dim) is folded into the query map.
 * Initializers keep the parameter names (`decoder.layers.0.mlp.fc1.weight`; a padded SE weight keeps its
 * name with the padded shape); a folded or re-laid one adds a suffix (`backbone.s1.b1.conv2.fused.weight`,
 * `...conv1.gsm.conv3D.taps.weight`).
 *
 * @example
 * const bytes = exportBackbone(params, cfg.backbone, { frames: 96 });
 * await writeFile('backbone.onnx', bytes);
 */
import { McoreError } from '../errors.ts';
import { BN_EPS } from '../model/batchnorm.ts';
import { type BackboneConfig, featureDim, type ModelConfig } from '../model/config.ts';
import { decoderSpecs } from '../model/decoder.ts';
import type { ParamSpecs, Params } from '../model/params.ts';
import { backboneSpecs, type RegNetBlock, regnetBlocks, staticPad } from '../model/regnet.ts';
import { regressorSpecs } from '../model/regressor.ts';
import { segmenterSpecs } from '../model/segmenter.ts';
import { torchShape, toTorchLayout } from '../model/weights.ts';
import { GraphBuilder } from './graph.ts';

/** A parameter's values in torch (= ONNX) layout. */
interface TorchValue {
  data: Float32Array;
  dims: number[];
}

/** Reads parameters by name, checked against their specs, converted to torch layout. */
class ParamReader {
  constructor(
    private readonly params: Params,
    private readonly specs: ParamSpecs,
  ) {
    const problems: string[] = [];
    for (const [name, s] of Object.entries(specs)) {
      const p = params[name];
      if (p === undefined) problems.push(`${name}: missing (expected shape [${s.shape.join(', ')}])`);
      else if (p.shape.length !== s.shape.length || p.shape.some((d, i) => d !== s.shape[i])) {
        problems.push(`${name}: shape [${p.shape.join(', ')}], spec says [${s.shape.join(', ')}]`);
      }
    }
    if (problems.length > 0) {
      throw new McoreError(
        'E_WEIGHTS',
        `onnx export: ${problems.length} parameter(s) missing or mis-shaped (does the config match ` +
          `the parameters?):\n  ${problems.join('\n  ')}`,
      );
    }
  }

  /** Values as stored (tfjs layout). */
  raw(name: string): Float32Array {
    const p = this.params[name];
    if (p === undefined || this.specs[name] === undefined) {
      throw new McoreError('E_WEIGHTS', `onnx export: no parameter '${name}' in the specs`);
    }
    return Float32Array.from(p.dataSync() as Float32Array);
  }

  /** Values in torch layout with torch's dims. */
  torch(name: string): TorchValue {
    const s = this.specs[name];
    const data = this.raw(name);
    return { data: toTorchLayout(data, s.shape, s.layout), dims: torchShape(s.shape, s.layout) };
  }

  /** The spec'd shape (tfjs layout). */
  shape(name: string): number[] {
    return this.specs[name].shape;
  }

  /** Whether the specs have a parameter `name`. */
  has(name: string): boolean {
    return this.specs[name] !== undefined;
  }
}

/** Frozen BatchNorm `${prefix}` as per-channel scale and shift (float64 arithmetic). */
function bnAffine(r: ParamReader, prefix: string): { scale: Float64Array; shift: Float64Array } {
  const w = r.raw(`${prefix}.weight`);
  const b = r.raw(`${prefix}.bias`);
  const mean = r.raw(`${prefix}.running_mean`);
  const variance = r.raw(`${prefix}.running_var`);
  const scale = Float64Array.from(w, (wi, i) => wi / Math.sqrt(variance[i] + BN_EPS));
  const shift = Float64Array.from(b, (bi, i) => bi - mean[i] * scale[i]);
  return { scale, shift };
}

/**
 * How a conv's channels are laid out in the graph when it differs from the parameters: output
 * channels padded to `outTo` and input channels to `inTo` (the extra ones carry zero weights), and
 * `groups` groups instead of the parameter's. Every weight must stay inside its new group.
 */
interface Regroup {
  outTo: number;
  inTo: number;
  groups: number;
}

/**
 * A conv weight [cout, cin/groups, k, k] (torch layout) and bias [cout] re-laid out as `to`: weight
 * [to.outTo, to.inTo/to.groups, k, k], bias [to.outTo]; the new channels get zeros.
 */
function regroupConv(
  w: Float32Array,
  bias: Float32Array,
  dims: readonly number[],
  groups: number,
  to: Regroup,
): { w: Float32Array; bias: Float32Array; dims: number[] } {
  const [cout, cinPG, kh, kw] = dims;
  const per = kh * kw;
  const outPG = cout / groups;
  const newInPG = to.inTo / to.groups;
  const newOutPG = to.outTo / to.groups;
  const out = new Float32Array(to.outTo * newInPG * per);
  for (let o = 0; o < cout; o++) {
    const first = Math.floor(o / outPG) * cinPG; // first input channel of o's group
    const local = first - Math.floor(o / newOutPG) * newInPG;
    if (local < 0 || local + cinPG > newInPG) {
      throw new McoreError('E_CONFIG', `onnx export: output channel ${o} leaves its group when regrouped`);
    }
    out.set(w.subarray(o * cinPG * per, (o + 1) * cinPG * per), (o * newInPG + local) * per);
  }
  const b = new Float32Array(to.outTo);
  b.set(bias);
  return { w: out, bias: b, dims: [to.outTo, newInPG, kh, kw] };
}

/**
 * Conv + frozen BN as one Conv node: x [N, Cin, H, W] -> [N, Cout, H', W']. `inPerm[c]` (optional)
 * names the input channel of the original weight that input channel c of the new one takes;
 * `regroup` (optional) pads and regroups its channels.
 */
function convBn(
  g: GraphBuilder,
  r: ParamReader,
  x: string,
  convName: string,
  bnPrefix: string,
  fusedPrefix: string,
  opts: { stride?: number; groups?: number; inPerm?: readonly number[]; regroup?: Regroup } = {},
): string {
  const w = r.torch(convName); // OIHW
  const [cout, cin, kh, kw] = w.dims;
  const { scale, shift } = bnAffine(r, bnPrefix);
  const per = kh * kw;
  const fused = new Float32Array(w.data.length);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < cin; c++) {
      const src = opts.inPerm ? opts.inPerm[c] : c;
      for (let k = 0; k < per; k++) {
        fused[(o * cin + c) * per + k] = w.data[(o * cin + src) * per + k] * scale[o];
      }
    }
  }
  const groups = opts.groups ?? 1;
  const conv = opts.regroup
    ? regroupConv(fused, Float32Array.from(shift), w.dims, groups, opts.regroup)
    : { w: fused, bias: Float32Array.from(shift), dims: w.dims };
  const stride = opts.stride ?? 1;
  const pad = staticPad(kh, stride);
  const wName = g.initializer(`${fusedPrefix}.fused.weight`, conv.w, conv.dims);
  const bName = g.initializer(`${fusedPrefix}.fused.bias`, conv.bias, [conv.dims[0]]);
  return g.node('Conv', [x, wName, bName], {
    kernel_shape: { ints: [kh, kw] },
    strides: { ints: [stride, stride] },
    pads: { ints: [pad, pad, pad, pad] },
    group: { int: opts.regroup ? opts.regroup.groups : groups },
  });
}

/**
 * The GSM of block `p` on the first `fold` channels followed by the wrapped 1x1 conv + BN (spec 2.1):
 * x [V*T, C, H, W] -> [V*T, Cout, H, W]. The gate's 3-D conv runs as a 2-D conv per temporal tap plus a
 * shifted sum along T; the shifts are Slice + Pad along T on [V, T, 2, fold/2, H, W]; the shuffle is
 * folded into the conv.
 */
function gsmConvBn(
  g: GraphBuilder,
  r: ParamReader,
  x: string,
  p: string,
  blk: RegNetBlock,
  T: number,
  regroup?: Regroup,
): string {
  const { inChs: c, fold } = blk;
  const h = fold / 2;
  const gp = `${p}.conv1.gsm`;
  const xf = fold === c ? x : g.node('Slice', [x, g.int64([0]), g.int64([fold]), g.int64([1])]);
  const hw = g.node('Shape', [xf], { start: { int: 2 } }); // [H, W]
  const shape = (lead: number[]) => g.node('Concat', [g.int64(lead), hw], { axis: { int: 0 } });
  // Gate: tanh(Conv3d(ReLU(BN3d(x_fold)))) over [V, fold, T, H, W].
  const bn = bnAffine(r, `${gp}.bn`);
  const s = g.initializer(`${gp}.bn.scale`, Float32Array.from(bn.scale), [1, fold, 1, 1]);
  const t = g.initializer(`${gp}.bn.shift`, Float32Array.from(bn.shift), [1, fold, 1, 1]);
  const a = g.node('Relu', [g.node('Add', [g.node('Mul', [xf, s]), t])]);
  // The 3-D conv (kernel 3x3x3, 2 groups, pad 1) as a 2-D conv with one output per group and temporal
  // tap (channel 3g + dt) followed by a shifted sum over the taps along T: z[t] = sum_dt y_dt[t + dt - 1].
  // Same sums as the 3-D conv, on the [V*T, fold, H, W] layout the block already has (no transposes).
  const w3 = r.torch(`${gp}.conv3D.weight`); // [2, h, 3, 3, 3] = [group, in, dt, dy, dx]
  const w2 = new Float32Array(w3.data.length);
  for (let gi = 0; gi < 2; gi++) {
    for (let dt = 0; dt < 3; dt++) {
      for (let ci = 0; ci < h; ci++) {
        for (let k = 0; k < 9; k++) {
          w2[((gi * 3 + dt) * h + ci) * 9 + k] = w3.data[((gi * h + ci) * 3 + dt) * 9 + k];
        }
      }
    }
  }
  const taps = g.node('Conv', [a, g.initializer(`${gp}.conv3D.taps.weight`, w2, [6, h, 3, 3])], {
    kernel_shape: { ints: [3, 3] },
    pads: { ints: [1, 1, 1, 1] },
    group: { int: 2 },
  }); // [V*T, 6, H, W]
  const y6 = g.node('Reshape', [taps, shape([-1, T, 2, 3])]); // [V, T, 2, 3, H, W]
  const tap = (dt: number, from: number, to: number) =>
    g.node('Slice', [y6, g.int64([from, dt]), g.int64([to, dt + 1]), g.int64([1, 3])]); // [V, to-from, 2, 1, H, W]
  let z = tap(1, 0, T);
  if (T > 1) {
    const later = g.int64([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // one zero frame before
    const earlier = g.int64([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]); // one zero frame after
    z = g.node('Add', [z, g.node('Pad', [tap(0, 0, T - 1), later])]);
    z = g.node('Add', [z, g.node('Pad', [tap(2, 1, T), earlier])]);
  }
  const bias = g.initializer(`${gp}.conv3D.bias`, r.raw(`${gp}.conv3D.bias`), [1, 1, 2, 1, 1, 1]);
  const gate = g.node('Tanh', [g.node('Add', [z, bias])]); // [V, T, 2, 1, H, W]
  // y = g * x, r = x - y per half; out1[t] = y1[t+1] + r1[t], out2[t] = y2[t-1] + r2[t].
  const x6 = g.node('Reshape', [xf, shape([-1, T, 2, h])]); // [V, T, 2, h, H, W]
  const y = g.node('Mul', [x6, gate]);
  let o = g.node('Sub', [x6, y]);
  if (T > 1) {
    const axes = g.int64([1, 2]);
    const pastward = g.node('Pad', [
      g.node('Slice', [y, g.int64([1, 0]), g.int64([T, 1]), axes]),
      g.int64([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
    ]);
    const futureward = g.node('Pad', [
      g.node('Slice', [y, g.int64([0, 1]), g.int64([T - 1, 2]), axes]),
      g.int64([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ]);
    o = g.node('Add', [o, g.node('Concat', [pastward, futureward], { axis: { int: 2 } })]);
  }
  const o4 = g.node('Reshape', [o, shape([-1, fold])]); // [V*T, fold, H, W], unshuffled
  const joined =
    fold === c
      ? o4
      : g.node('Concat', [o4, g.node('Slice', [x, g.int64([fold]), g.int64([c]), g.int64([1])])], {
          axis: { int: 1 },
        });
  // The shuffled channel 2j + a of a half is unshuffled channel a*(h/2) + j: the conv's input
  // channel `old` takes the weight column of channel new(old).
  const inPerm = Array.from({ length: c }, (_, old) => {
    if (old >= fold) return old;
    const half = Math.floor(old / h);
    const i = old % h;
    return half * h + 2 * (i % (h / 2)) + Math.floor(i / (h / 2));
  });
  return convBn(g, r, joined, `${p}.conv1.net.conv.weight`, `${p}.conv1.net.bn`, `${p}.conv1.net`, {
    inPerm,
    regroup,
  });
}

/**
 * Squeeze-excitation `${p}`: x [N, C, H, W] -> x * sigmoid(fc2(relu(fc1(mean_hw x)))). With `width`
 * > C the input carries zero channels from C on; fc1 ignores them and fc2 gives them gate 0.5.
 */
function squeezeExcite(g: GraphBuilder, r: ParamReader, x: string, p: string, width?: number): string {
  const fc = (inp: string, name: string, pad: 'in' | 'out') => {
    const w = r.torch(`${p}.${name}.weight`);
    const b = r.raw(`${p}.${name}.bias`);
    const [cout, cin] = w.dims;
    const to = width ?? (pad === 'in' ? cin : cout);
    const conv = regroupConv(w.data, b, w.dims, 1, {
      outTo: pad === 'out' ? to : cout,
      inTo: pad === 'in' ? to : cin,
      groups: 1,
    });
    return g.node('Conv', [
      inp,
      g.initializer(`${p}.${name}.weight`, conv.w, conv.dims),
      g.initializer(`${p}.${name}.bias`, conv.bias, [conv.bias.length]),
    ]);
  };
  const s = g.node('GlobalAveragePool', [x]);
  const gate = g.node('Sigmoid', [fc(g.node('Relu', [fc(s, 'fc1', 'in')]), 'fc2', 'out')]);
  return g.node('Mul', [x, gate]);
}

/** Channel block of ONNX Runtime's NCHWc convs on AVX-512 (AVX2: 8); grouped convs align to it. */
const NCHWC_BLOCK = 16;

/**
 * How a block's inner width (conv1 out, conv2, SE, conv3 in) is laid out in the graph. ONNX Runtime
 * runs grouped convs in its fast NCHWc layout only when a group spans whole 16-channel blocks; a
 * RegNet group of 8 channels (RegNetY-200MF's) does not. So groups of 8 are merged in pairs (one
 * group of 16 with zero weights across the old boundary) and the width padded to a multiple of 16
 * with zero channels: about twice the grouped conv's multiply-adds (~8% of RegNetY-200MF's), measured
 * 22% faster for the whole backbone (bench/score). Other group widths are left as they are (merging
 * narrower groups would multiply the work by 16 / width). Results are unchanged: the extra channels
 * stay exactly 0 up to conv3. On CPUs whose NCHWc block is 8 (AVX2) the merge only adds work.
 */
function innerLayout(blk: RegNetBlock): Regroup | undefined {
  const width = blk.outChs / blk.groups; // channels per group
  if (blk.groups === 1 || width !== NCHWC_BLOCK / 2) return undefined;
  const padded = Math.ceil(blk.outChs / NCHWC_BLOCK) * NCHWC_BLOCK;
  return { outTo: padded, inTo: padded, groups: padded / NCHWC_BLOCK };
}

export interface BackboneExportOptions {
  /** Frames per video T, fixed in the graph (the GSMs shift along it). */
  frames: number;
  /** Parameter prefix (default 'backbone'). */
  prefix?: string;
}

/**
 * The RegNetY backbone with its GSMs as an ONNX model: input `frames` [N = V*T, 3, H, W] float32
 * (NCHW, the T frames of each video consecutive; H, W symbolic) -> output `features` [V, T, D].
 * Frozen BNs are folded into the convs; grouped convs use Conv's `group`.
 */
export function exportBackbone(params: Params, cfg: BackboneConfig, opts: BackboneExportOptions): Uint8Array {
  const prefix = opts.prefix ?? 'backbone';
  const T = opts.frames;
  if (!Number.isInteger(T) || T < 1) {
    throw new McoreError('E_CONFIG', `exportBackbone: frames must be a positive integer, got ${T}`);
  }
  const r = new ParamReader(params, backboneSpecs(cfg, prefix));
  const g = new GraphBuilder('mcore_backbone');
  g.setMetadata('mcore.graph', 'backbone');
  g.setMetadata('mcore.frames', String(T));
  let x = g.input('frames', ['N', 3, 'H', 'W']);
  const stem = `${prefix}.stem`;
  x = g.node('Relu', [convBn(g, r, x, `${stem}.conv.weight`, `${stem}.bn`, stem, { stride: 2 })]);
  for (const blk of regnetBlocks(cfg)) {
    const p = `${prefix}.${blk.name}`;
    const inner = innerLayout(blk);
    const widen: Regroup | undefined = inner && { outTo: inner.outTo, inTo: blk.inChs, groups: 1 };
    let h = cfg.gsm
      ? gsmConvBn(g, r, x, p, blk, T, widen)
      : convBn(g, r, x, `${p}.conv1.conv.weight`, `${p}.conv1.bn`, `${p}.conv1`, { regroup: widen });
    h = g.node('Relu', [h]);
    h = g.node('Relu', [
      convBn(g, r, h, `${p}.conv2.conv.weight`, `${p}.conv2.bn`, `${p}.conv2`, {
        stride: blk.stride,
        groups: blk.groups,
        regroup: inner,
      }),
    ]);
    if (blk.seChs > 0) h = squeezeExcite(g, r, h, `${p}.se`, inner?.outTo);
    h = convBn(g, r, h, `${p}.conv3.conv.weight`, `${p}.conv3.bn`, `${p}.conv3`, {
      regroup: inner && { outTo: blk.outChs, inTo: inner.outTo, groups: 1 },
    });
    const shortcut = blk.downsample
      ? convBn(g, r, x, `${p}.downsample.conv.weight`, `${p}.downsample.bn`, `${p}.downsample`, {
          stride: blk.stride,
        })
      : x;
    x = g.node('Relu', [g.node('Add', [h, shortcut])]);
  }
  const D = cfg.widths[cfg.widths.length - 1];
  g.node('Reshape', [g.node('GlobalAveragePool', [x]), g.int64([-1, T, D])], {}, 'features');
  g.output('features', ['V', T, D]);
  return g.toModel();
}

/** torch GRU gate blocks (r, z, n) of a [3H, ...] array -> ONNX's order (z, r, h). */
function gatesToOnnx(data: Float32Array, H: number): Float32Array {
  const row = data.length / (3 * H); // values per gate row
  const out = new Float32Array(data.length);
  const block = H * row;
  out.set(data.subarray(block, 2 * block), 0); // z
  out.set(data.subarray(0, block), block); // r
  out.set(data.subarray(2 * block, 3 * block), 2 * block); // n
  return out;
}

/**
 * The segmenter as an ONNX model: input `features` [V, T, D] (T symbolic) -> output `logits`
 * [V, T, K-1]. The BiGRU is ONNX's GRU (bidirectional, linear_before_reset = 1, PyTorch's reset-after
 * cell) on [T, V, D], then the Linear; no dropout (inference).
 */
export function exportSegmenter(params: Params, cfg: ModelConfig): Uint8Array {
  const prefix = 'segmenter';
  const D = featureDim(cfg);
  const H = D;
  const C = cfg.stages - 1;
  const r = new ParamReader(params, segmenterSpecs(cfg, prefix));
  const g = new GraphBuilder('mcore_segmenter');
  g.setMetadata('mcore.graph', 'segmenter');
  g.input('features', ['V', 'T', D]);
  const stack = (name: string, cols: number) => {
    const out = new Float32Array(2 * 3 * H * cols);
    ['', '_reverse'].forEach((d, i) => {
      out.set(gatesToOnnx(r.torch(`${prefix}.gru.${name}_l0${d}`).data, H), i * 3 * H * cols);
    });
    return out;
  };
  const W = g.initializer(`${prefix}.gru.W`, stack('weight_ih', D), [2, 3 * H, D]);
  const R = g.initializer(`${prefix}.gru.R`, stack('weight_hh', H), [2, 3 * H, H]);
  const bias = new Float32Array(2 * 6 * H);
  ['', '_reverse'].forEach((d, i) => {
    bias.set(gatesToOnnx(r.raw(`${prefix}.gru.bias_ih_l0${d}`), H), i * 6 * H);
    bias.set(gatesToOnnx(r.raw(`${prefix}.gru.bias_hh_l0${d}`), H), i * 6 * H + 3 * H);
  });
  const B = g.initializer(`${prefix}.gru.B`, bias, [2, 6 * H]);
  const xs = g.node('Transpose', ['features'], { perm: { ints: [1, 0, 2] } }); // [T, V, D]
  const [y] = g.nodeN('GRU', [xs, W, R, B], 1, {
    direction: { string: 'bidirectional' },
    hidden_size: { int: H },
    linear_before_reset: { int: 1 },
  }); // [T, 2, V, H]
  const yv = g.node('Reshape', [
    g.node('Transpose', [y], { perm: { ints: [2, 0, 1, 3] } }),
    g.int64([0, 0, -1]),
  ]);
  const fc = `${prefix}.fc_out`;
  const wFc = g.initializer(`${fc}.weight`, r.raw(`${fc}.weight`), [2 * H, C]);
  const bFc = g.initializer(`${fc}.bias`, r.raw(`${fc}.bias`), [C]);
  g.node('Add', [g.node('MatMul', [yv, wFc]), bFc], {}, 'logits');
  g.output('logits', ['V', 'T', C]);
  return g.toModel();
}

/** x [..., in] -> x W + b with the Linear `${name}` (W [in, out] as stored). */
function linear(
  g: GraphBuilder,
  r: ParamReader,
  x: string,
  name: string,
  opts: { scale?: number } = {},
): string {
  const [inF, outF] = r.shape(`${name}.weight`);
  let w = r.raw(`${name}.weight`);
  let wName = `${name}.weight`;
  if (opts.scale !== undefined) {
    const s = opts.scale;
    w = w.map((v) => v * s);
    wName = `${name}.weight_scaled`;
  }
  const y = g.node('MatMul', [x, g.initializer(wName, w, [inF, outF])]);
  if (!r.has(`${name}.bias`)) return y;
  return g.node('Add', [y, g.initializer(`${name}.bias`, r.raw(`${name}.bias`), [outF])]);
}

/** LayerNorm `${name}` over the last axis, eps 1e-5. */
function layerNorm(g: GraphBuilder, r: ParamReader, x: string, name: string, D: number): string {
  return g.node(
    'LayerNormalization',
    [
      x,
      g.initializer(`${name}.weight`, r.raw(`${name}.weight`), [D]),
      g.initializer(`${name}.bias`, r.raw(`${name}.bias`), [D]),
    ],
    { axis: { int: -1 }, epsilon: { float: 1e-5 } },
  );
}

/** GELU, exact form: 0.5 x (1 + erf(x / sqrt 2)). */
function gelu(g: GraphBuilder, x: string): string {
  const e = g.node('Erf', [g.node('Mul', [x, g.scalar(Math.SQRT1_2)])]);
  return g.node('Mul', [g.node('Mul', [x, g.node('Add', [e, g.scalar(1)])]), g.scalar(0.5)]);
}

/**
 * The scorer as an ONNX model: inputs `q_tokens`, `e_tokens` [N, K*L, D] -> output `delta` [N]:
 * each stage of q attends to the same stage of e through the decoder, the regressor scores every
 * token, and delta is the mean over the K*L tokens (compareTokens, spec section 2).
 */
export function exportScorer(params: Params, cfg: ModelConfig): Uint8Array {
  const D = featureDim(cfg);
  const K = cfg.stages;
  const L = cfg.tokensPerStage;
  const heads = cfg.decoder.heads;
  if (D % heads !== 0) {
    throw new McoreError('E_CONFIG', `exportScorer: width ${D} is not divisible by ${heads} heads`);
  }
  const dh = D / heads;
  const specs = { ...decoderSpecs(cfg, 'decoder'), ...regressorSpecs(cfg, 'regressor') };
  const r = new ParamReader(params, specs);
  const g = new GraphBuilder('mcore_scorer');
  const lin = (x: string, name: string, scale?: number) => linear(g, r, x, name, { scale });
  g.setMetadata('mcore.graph', 'scorer');
  g.input('q_tokens', ['N', K * L, D]);
  g.input('e_tokens', ['N', K * L, D]);
  const seq = g.int64([-1, L, D]);
  let x = g.node('Reshape', ['q_tokens', seq]); // [N*K, L, D]
  const mem = g.node('Reshape', ['e_tokens', seq]);
  const split = g.int64([0, 0, heads, dh]);
  const toHeads = (v: string, perm: number[]) =>
    g.node('Transpose', [g.node('Reshape', [v, split])], { perm: { ints: perm } });
  for (let i = 0; i < cfg.decoder.layers; i++) {
    const p = `decoder.layers.${i}`;
    const qn = layerNorm(g, r, x, `${p}.norm_q`, D);
    const mn = layerNorm(g, r, mem, `${p}.norm_v`, D);
    const q = toHeads(lin(qn, `${p}.attn.q_map`, 1 / Math.sqrt(dh)), [0, 2, 1, 3]); // [NK, h, Lq, dh]
    const k = toHeads(lin(mn, `${p}.attn.k_map`), [0, 2, 3, 1]); // [NK, h, dh, Lm]
    const v = toHeads(lin(mn, `${p}.attn.v_map`), [0, 2, 1, 3]); // [NK, h, Lm, dh]
    const attn = g.node('Softmax', [g.node('MatMul', [q, k])], { axis: { int: -1 } }); // [NK, h, Lq, Lm]
    const o = g.node('Transpose', [g.node('MatMul', [attn, v])], { perm: { ints: [0, 2, 1, 3] } });
    const merged = g.node('Reshape', [o, g.int64([0, 0, D])]); // [NK, Lq, D]
    x = g.node('Add', [x, lin(merged, `${p}.attn.proj`)]);
    const hidden = gelu(g, lin(layerNorm(g, r, x, `${p}.norm2`, D), `${p}.mlp.fc1`));
    x = g.node('Add', [x, lin(hidden, `${p}.mlp.fc2`)]);
  }
  const layers = cfg.regressor.hidden.length + 1;
  for (let i = 1; i <= layers; i++) {
    x = lin(x, `regressor.layer${i}`);
    if (i < layers) x = g.node('Relu', [x]);
  }
  const perToken = g.node('Reshape', [x, g.int64([-1, K * L])]); // [N, K*L]
  g.node('ReduceMean', [perToken], { axes: { ints: [1] }, keepdims: { int: 0 } }, 'delta');
  g.output('delta', ['N']);
  return g.toModel();
}
