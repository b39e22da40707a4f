/**
 * The feature extractor (spec 2.1, 2.1b): RegNetY-200MF as timm's `regnety_002` (Radosavovic et al.,
 * "Designing Network Design Spaces", CVPR 2020; timm `models/regnet.py`), classification head removed,
 * global average pool -> D = last width features per frame, with a Gate Shift Module wrapping the first
 * 1x1 conv of every block (MCoRe `models/shift.py`). All BatchNorms are frozen (./batchnorm.ts).
 *
 * Geometry: stem 3x3/2 conv + BN + ReLU; stages s1..s4 of Y-blocks
 *   conv1 1x1 + BN + ReLU (GSM in front) -> conv2 3x3 grouped (group width 8, stride 2 in the first
 *   block of a stage) + BN + ReLU -> SE (mean -> 1x1 -> ReLU -> 1x1 -> sigmoid, squeeze width
 *   round(seRatio x block input channels)) -> conv3 1x1 + BN -> + shortcut -> ReLU,
 * with a 1x1 conv + BN shortcut (`downsample`) where the input width or the stride changes. Static
 * padding ((stride - 1) + (k - 1)) div 2 as timm's `create_conv2d(padding='')`.
 *
 * Names are timm's state-dict keys under `prefix` (`backbone.s3.b2.conv2.conv.weight`); with the GSM
 * the first conv moves under `conv1.net` and the GSM adds `conv1.gsm.*`, as in the MCoRe checkpoint.
 * Differences from timm: each BN scale is folded into its conv's weight at run time (same result), and
 * conv3's BN weight starts at one (timm's `zero_init_last` starts it at zero; pretrained weights
 * replace both).
 */
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { batchNormAffine, batchNormSpecs } from './batchnorm.ts';
import type { BackboneConfig } from './config.ts';
import { gsmConv1x1, gsmFold, gsmSpecs } from './gsm.ts';
import { conv2d, matMul } from './kernels.ts';
import { type ParamSpecs, type Params, spec } from './params.ts';

/** One Y-block of the backbone. */
export interface RegNetBlock {
  /** timm name, e.g. `s3.b2`. */
  name: string;
  inChs: number;
  outChs: number;
  /** Stride of conv2 and of the shortcut conv. */
  stride: number;
  /** Groups of the 3x3 conv2 (width / group width). */
  groups: number;
  /** SE squeeze width round(seRatio x inChs); 0 means no SE. */
  seChs: number;
  /** Whether the shortcut is a 1x1 conv + BN (`downsample`) rather than the identity. */
  downsample: boolean;
  /** Input channels routed through this block's GSM. */
  fold: number;
}

/** Python's round(): halves go to the even neighbour (timm computes int(round(in_chs * se_ratio))). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** timm's static padding for a k x k conv with stride s. */
export function staticPad(kernel: number, stride: number): number {
  return Math.floor((stride - 1 + (kernel - 1)) / 2);
}

/** The blocks of the backbone in order, with their widths, strides, groups, SE width and GSM fold. */
export function regnetBlocks(cfg: BackboneConfig): RegNetBlock[] {
  const issues: string[] = [];
  if (cfg.widths.length !== cfg.depths.length || cfg.widths.length === 0) {
    issues.push(`widths (${cfg.widths.length}) and depths (${cfg.depths.length}) must list the same stages`);
  }
  cfg.widths.forEach((w, i) => {
    if (!Number.isInteger(w) || w <= 0 || w % cfg.groupWidth !== 0) {
      issues.push(`widths[${i}] = ${w} must be a positive multiple of groupWidth ${cfg.groupWidth}`);
    }
  });
  cfg.depths.forEach((d, i) => {
    if (!Number.isInteger(d) || d < 1) issues.push(`depths[${i}] = ${d} must be a positive integer`);
  });
  if (!Number.isInteger(cfg.stemWidth) || cfg.stemWidth < 4)
    issues.push(`stemWidth ${cfg.stemWidth} must be >= 4`);
  if (!(cfg.seRatio >= 0)) issues.push(`seRatio ${cfg.seRatio} must be >= 0`);
  if (issues.length > 0) throw new McoreError('E_CONFIG', `backbone config: ${issues.join('; ')}`);
  const blocks: RegNetBlock[] = [];
  let inChs = cfg.stemWidth;
  cfg.widths.forEach((outChs, s) => {
    for (let b = 0; b < cfg.depths[s]; b++) {
      const stride = b === 0 ? 2 : 1;
      blocks.push({
        name: `s${s + 1}.b${b + 1}`,
        inChs,
        outChs,
        stride,
        groups: outChs / cfg.groupWidth,
        seChs: roundHalfEven(inChs * cfg.seRatio),
        downsample: inChs !== outChs || stride !== 1,
        fold: gsmFold(inChs),
      });
      inChs = outChs;
    }
  });
  return blocks;
}

/** Spec of a conv weight HWIO [k, k, in/groups, out], timm init normal(0, sqrt(2 / fan_out)). */
function convWeight(k: number, inChs: number, outChs: number, groups = 1): ParamSpecs[string] {
  const fanOut = (k * k * outChs) / groups;
  return spec(
    [k, k, inChs / groups, outChs],
    { kind: 'normal', std: Math.sqrt(2 / fanOut) },
    'backbone',
    'conv2d',
  );
}

function convBnSpecs(prefix: string, k: number, inChs: number, outChs: number, groups = 1): ParamSpecs {
  return {
    [`${prefix}.conv.weight`]: convWeight(k, inChs, outChs, groups),
    ...batchNormSpecs(outChs, `${prefix}.bn`),
  };
}

/**
 * Specs of the backbone under `prefix`: `stem.*`, then per block `sX.bY.conv1.*` (with the GSM:
 * `conv1.gsm.*` and `conv1.net.*`), `conv2.*`, `se.fc1.*`, `se.fc2.*`, `conv3.*`, `downsample.*`.
 */
export function backboneSpecs(cfg: BackboneConfig, prefix = 'backbone'): ParamSpecs {
  const specs: ParamSpecs = convBnSpecs(`${prefix}.stem`, 3, 3, cfg.stemWidth);
  for (const blk of regnetBlocks(cfg)) {
    const p = `${prefix}.${blk.name}`;
    const w = blk.outChs;
    if (cfg.gsm) {
      Object.assign(
        specs,
        gsmSpecs(blk.inChs, `${p}.conv1.gsm`),
        convBnSpecs(`${p}.conv1.net`, 1, blk.inChs, w),
      );
    } else {
      Object.assign(specs, convBnSpecs(`${p}.conv1`, 1, blk.inChs, w));
    }
    Object.assign(specs, convBnSpecs(`${p}.conv2`, 3, w, w, blk.groups));
    if (blk.seChs > 0) {
      specs[`${p}.se.fc1.weight`] = convWeight(1, w, blk.seChs);
      specs[`${p}.se.fc1.bias`] = spec([blk.seChs], { kind: 'zeros' }, 'backbone');
      specs[`${p}.se.fc2.weight`] = convWeight(1, blk.seChs, w);
      specs[`${p}.se.fc2.bias`] = spec([w], { kind: 'zeros' }, 'backbone');
    }
    Object.assign(specs, convBnSpecs(`${p}.conv3`, 1, w, w));
    if (blk.downsample) Object.assign(specs, convBnSpecs(`${p}.downsample`, 1, blk.inChs, w));
  }
  return specs;
}

function param(params: Params, name: string): tf.Tensor {
  const t = params[name];
  if (t === undefined) {
    throw new McoreError('E_WEIGHTS', `missing parameter '${name}' (build params from backboneSpecs)`);
  }
  return t;
}

/**
 * timm's ConvNormAct without the activation: x [N, H, W, Cin] -> [N, H', W', Cout] =
 * BN(conv(x, `${prefix}.conv.weight`)) with the frozen BN `${prefix}.bn` folded into the weight.
 */
function convBn(
  params: Params,
  prefix: string,
  x: tf.Tensor4D,
  opts: { stride?: number; groups?: number; inputGrad?: boolean } = {},
): tf.Tensor4D {
  const w = param(params, `${prefix}.conv.weight`) as tf.Tensor4D;
  const stride = opts.stride ?? 1;
  const { scale, shift } = batchNormAffine(params, `${prefix}.bn`);
  const y = conv2d(x, tf.mul(w, scale) as tf.Tensor4D, {
    stride,
    pad: staticPad(w.shape[0], stride),
    groups: opts.groups ?? 1,
    inputGrad: opts.inputGrad,
  });
  return tf.add(y, shift) as tf.Tensor4D;
}

/** conv1 of a GSM block: BN(conv(gsm(x))) with `${p}.conv1.gsm` and `${p}.conv1.net`; x [V*T, H, W, C]. */
function gsmConvBn(params: Params, p: string, x: tf.Tensor4D, frames: number): tf.Tensor4D {
  const w = param(params, `${p}.conv1.net.conv.weight`) as tf.Tensor4D;
  const { scale, shift } = batchNormAffine(params, `${p}.conv1.net.bn`);
  const y = gsmConv1x1(params, `${p}.conv1.gsm`, x, tf.mul(w, scale) as tf.Tensor4D, frames);
  return tf.add(y, shift) as tf.Tensor4D;
}

/** Squeeze-excitation: x [N, H, W, C] -> x * sigmoid(fc2(relu(fc1(mean_hw x)))), fcs 1x1 convs with bias. */
function squeezeExcite(params: Params, prefix: string, x: tf.Tensor4D): tf.Tensor4D {
  const [n, , , c] = x.shape;
  const w1 = param(params, `${prefix}.fc1.weight`);
  const rd = (w1.shape as number[])[3];
  const s = tf.mean(x, [1, 2]) as tf.Tensor2D; // [N, C]
  const z = tf.relu(tf.add(matMul(s, tf.reshape(w1, [c, rd])), param(params, `${prefix}.fc1.bias`)));
  const w2 = tf.reshape(param(params, `${prefix}.fc2.weight`), [rd, c]) as tf.Tensor2D;
  const gate = tf.sigmoid(tf.add(matMul(z as tf.Tensor2D, w2), param(params, `${prefix}.fc2.bias`)));
  return tf.mul(x, tf.reshape(gate, [n, 1, 1, c])) as tf.Tensor4D;
}

/** One Y-block: x [V*T, H, W, in] -> [V*T, H/stride, W/stride, out] (T frames per video, for the GSM). */
function yBlock(
  params: Params,
  cfg: BackboneConfig,
  p: string,
  blk: RegNetBlock,
  x: tf.Tensor4D,
  frames: number,
): tf.Tensor4D {
  let h = cfg.gsm ? gsmConvBn(params, p, x, frames) : convBn(params, `${p}.conv1`, x);
  h = tf.relu(h);
  h = tf.relu(convBn(params, `${p}.conv2`, h, { stride: blk.stride, groups: blk.groups }));
  if (blk.seChs > 0) h = squeezeExcite(params, `${p}.se`, h);
  h = convBn(params, `${p}.conv3`, h);
  const shortcut = blk.downsample ? convBn(params, `${p}.downsample`, x, { stride: blk.stride }) : x;
  return tf.relu(tf.add(h, shortcut)) as tf.Tensor4D;
}

/**
 * frames: [V, T, H, W, 3] (ImageNet-normalised RGB) -> per-frame features [V, T, D], D = last width,
 * by the backbone under `prefix`. The GSMs mix neighbouring frames of the same video only. No gradient
 * flows to `frames` (the stem treats them as data).
 *
 * @example backboneForward(params, cfg.backbone, frames) // [2, 8, 112, 112, 3] -> [2, 8, 368]
 */
export function backboneForward(
  params: Params,
  cfg: BackboneConfig,
  frames: tf.Tensor5D,
  prefix = 'backbone',
): tf.Tensor3D {
  if (frames.rank !== 5 || frames.shape[4] !== 3) {
    throw new McoreError(
      'E_SHAPE',
      `backbone: expected frames [V, T, H, W, 3], found [${frames.shape.join(', ')}]`,
    );
  }
  const [v, t, hh, ww] = frames.shape;
  const blocks = regnetBlocks(cfg);
  return tf.tidy(() => {
    let x = tf.reshape(frames, [v * t, hh, ww, 3]) as tf.Tensor4D;
    x = tf.relu(convBn(params, `${prefix}.stem`, x, { stride: 2, inputGrad: false }));
    for (const blk of blocks) x = yBlock(params, cfg, `${prefix}.${blk.name}`, blk, x, t);
    const d = x.shape[3];
    return tf.reshape(tf.mean(x, [1, 2]), [v, t, d]) as tf.Tensor3D;
  });
}
