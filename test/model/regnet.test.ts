import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackendName, useBackend } from '../../src/backend.ts';
import { McoreError } from '../../src/errors.ts';
import { BN_EPS, batchNorm, batchNormSpecs } from '../../src/model/batchnorm.ts';
import { type BackboneConfig, modelConfig } from '../../src/model/config.ts';
import { gsm } from '../../src/model/gsm.ts';
import { conv2d } from '../../src/model/kernels.ts';
import { countParams, initParams, type ParamSpecs, type Params } from '../../src/model/params.ts';
import { backboneForward, backboneSpecs, regnetBlocks } from '../../src/model/regnet.ts';
import { createRng, type Rng } from '../../src/rng.ts';

const FULL = modelConfig('mcore-regnety002').backbone;
const TINY = modelConfig('mcore-tiny').backbone;

beforeAll(async () => {
  await useBackend('cpu');
  await useBackend('wasm');
});

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/**
 * Values for every spec: convs as initialised, plus random GSM convs (a non-zero gate), random BN
 * scale/shift/statistics and SE biases (fc1's positive over small fc1 weights, so that no 2-unit SE
 * squeeze is dead on the few test frames), so that every path carries signal.
 */
function randomValues(specs: ParamSpecs, seed: number): Record<string, Float32Array> {
  const rng = createRng(seed);
  const out: Record<string, Float32Array> = {};
  for (const name of Object.keys(specs).sort()) {
    const s = specs[name];
    const n = s.shape.reduce((a, b) => a * b, 1);
    let v: Float32Array;
    if (name.endsWith('conv3D.weight')) v = randn(rng, n, 0.2);
    else if (name.endsWith('running_var')) v = randn(rng, n).map((z) => 0.5 + 0.5 * z * z);
    else if (name.endsWith('se.fc1.bias'))
      v = randn(rng, n, 0.1).map((z) => 0.5 + z); // SE ReLU units alive
    else if (name.endsWith('se.fc1.weight')) v = randn(rng, n, 0.05);
    else if (name.endsWith('running_mean') || name.endsWith('.bias')) v = randn(rng, n, 0.2);
    else if (name.endsWith('bn.weight')) v = randn(rng, n, 0.2).map((z) => 1 + z);
    else v = randn(rng, n, s.init.kind === 'normal' ? s.init.std : 0.2);
    out[name] = v;
  }
  return out;
}

function toParams(specs: ParamSpecs, values: Record<string, Float32Array>): Params {
  const out: Params = {};
  for (const [name, s] of Object.entries(specs)) out[name] = tf.tensor(values[name], s.shape);
  return out;
}

/** The backbone written out plainly (conv, then BatchNorm, materialised GSM output), forward only. */
function referenceForward(params: Params, cfg: BackboneConfig, frames: tf.Tensor5D): tf.Tensor {
  const [v, t, h, w] = frames.shape;
  const convBnRef = (p: string, x: tf.Tensor4D, stride: number, pad: number, groups = 1) =>
    batchNorm(
      params,
      `${p}.bn`,
      conv2d(x, params[`${p}.conv.weight`] as tf.Tensor4D, { stride, pad, groups }),
    );
  let x = tf.relu(convBnRef('backbone.stem', tf.reshape(frames, [v * t, h, w, 3]) as tf.Tensor4D, 2, 1));
  for (const blk of regnetBlocks(cfg)) {
    const p = `backbone.${blk.name}`;
    const inp = x as tf.Tensor4D;
    let y = cfg.gsm
      ? convBnRef(`${p}.conv1.net`, gsm(params, `${p}.conv1.gsm`, inp, t), 1, 0)
      : convBnRef(`${p}.conv1`, inp, 1, 0);
    y = tf.relu(y);
    y = tf.relu(convBnRef(`${p}.conv2`, y as tf.Tensor4D, blk.stride, 1, blk.groups));
    const c = y.shape[3] as number;
    const s = tf.mean(y, [1, 2], true) as tf.Tensor4D;
    const z = tf.relu(
      tf.add(
        tf.conv2d(s, params[`${p}.se.fc1.weight`] as tf.Tensor4D, 1, 'valid'),
        params[`${p}.se.fc1.bias`],
      ),
    );
    const g = tf.sigmoid(
      tf.add(
        tf.conv2d(z as tf.Tensor4D, params[`${p}.se.fc2.weight`] as tf.Tensor4D, 1, 'valid'),
        params[`${p}.se.fc2.bias`],
      ),
    );
    y = convBnRef(`${p}.conv3`, tf.mul(y, g) as tf.Tensor4D, 1, 0);
    const sc = blk.downsample ? convBnRef(`${p}.downsample`, inp, blk.stride, 0) : inp;
    x = tf.relu(tf.add(y, sc));
    expect(x.shape[3]).toBe(c);
  }
  return tf.reshape(tf.mean(x, [1, 2]), [v, t, x.shape[3] as number]);
}

describe('batchNorm', () => {
  it('is the frozen affine map (x - mean) / sqrt(var + eps) * weight + bias', async () => {
    await useBackend('wasm');
    const specs = batchNormSpecs(2, 'bn');
    expect(Object.keys(specs).sort()).toEqual(['bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.weight']);
    expect(specs['bn.running_mean'].trainable).toBe(false);
    expect(specs['bn.weight']).toMatchObject({ trainable: true, init: { kind: 'ones' }, group: 'backbone' });
    const params: Params = {
      'bn.weight': tf.tensor1d([2, 3]),
      'bn.bias': tf.tensor1d([0.5, -1]),
      'bn.running_mean': tf.tensor1d([1, 0]),
      'bn.running_var': tf.tensor1d([4 - BN_EPS, 0.25 - BN_EPS]),
    };
    // channel 0: (3 - 1) / 2 * 2 + 0.5 = 2.5; channel 1: (2 - 0) / 0.5 * 3 - 1 = 11.
    const y = batchNorm(params, 'bn', tf.tensor2d([3, 2], [1, 2])).dataSync();
    expect(y[0]).toBeCloseTo(2.5, 5);
    expect(y[1]).toBeCloseTo(11, 4);
    expect(() => batchNorm(params, 'bn', tf.zeros([1, 3]))).toThrow(McoreError);
    expect(() => batchNorm(params, 'other', tf.zeros([1, 2]))).toThrow(/missing parameter 'other.weight'/);
  });
});

describe('RegNetY-200MF geometry', () => {
  it('has timm regnety_002 blocks: strides, groups, SE widths, shortcuts and GSM folds', () => {
    const blocks = regnetBlocks(FULL);
    expect(blocks.map((b) => b.name)).toEqual([
      's1.b1',
      's2.b1',
      's3.b1',
      's3.b2',
      's3.b3',
      's3.b4',
      ...[1, 2, 3, 4, 5, 6, 7].map((i) => `s4.b${i}`),
    ]);
    expect(blocks.map((b) => b.inChs)).toEqual([
      32, 24, 56, 152, 152, 152, 152, 368, 368, 368, 368, 368, 368,
    ]);
    expect(blocks.map((b) => b.stride)).toEqual([2, 2, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1]);
    expect(blocks.map((b) => b.groups)).toEqual([3, 7, 19, 19, 19, 19, 46, 46, 46, 46, 46, 46, 46]);
    expect(blocks.map((b) => b.seChs)).toEqual([8, 6, 14, 38, 38, 38, 38, 92, 92, 92, 92, 92, 92]);
    expect(blocks.filter((b) => b.downsample).map((b) => b.name)).toEqual([
      's1.b1',
      's2.b1',
      's3.b1',
      's4.b1',
    ]);
    expect(blocks.map((b) => b.fold)).toEqual([8, 8, 16, 40, 40, 40, 40, 92, 92, 92, 92, 92, 92]);
  });

  it('counts 2,793,996 trainable parameters without GSM and 21,602 more with the 13 GSMs', () => {
    const plain = backboneSpecs({ ...FULL, gsm: false });
    const withGsm = backboneSpecs(FULL);
    expect(countParams(plain)).toBe(2_793_996);
    expect(countParams(withGsm) - countParams(plain)).toBe(21_602);
    expect(countParams(withGsm, 'backbone.s4.b7.conv1.gsm.')).toBe(29 * 92 + 2);
  });

  it('uses timm names and layouts (GSM-wrapped conv1 under conv1.net)', () => {
    const specs = backboneSpecs(FULL);
    const shape = (k: string) => specs[`backbone.${k}`]?.shape;
    expect(shape('stem.conv.weight')).toEqual([3, 3, 3, 32]);
    expect(shape('s1.b1.conv1.net.conv.weight')).toEqual([1, 1, 32, 24]);
    expect(shape('s1.b1.conv2.conv.weight')).toEqual([3, 3, 8, 24]);
    expect(shape('s1.b1.se.fc1.weight')).toEqual([1, 1, 24, 8]);
    expect(shape('s1.b1.se.fc2.bias')).toEqual([24]);
    expect(shape('s1.b1.downsample.conv.weight')).toEqual([1, 1, 32, 24]);
    expect(shape('s4.b7.conv1.gsm.conv3D.weight')).toEqual([3, 3, 3, 46, 2]);
    expect(shape('s4.b7.conv1.gsm.bn.running_var')).toEqual([92]);
    expect(shape('s4.b7.conv3.bn.weight')).toEqual([368]);
    expect(shape('s3.b2.downsample.conv.weight')).toBeUndefined();
    expect(specs['backbone.s2.b1.conv2.conv.weight'].layout).toBe('conv2d');
    const pattern =
      /^backbone\.(stem\.(conv\.weight|bn\.\w+)|s\d\.b\d\.(conv1\.(gsm\.(conv3D\.(weight|bias)|bn\.\w+)|net\.(conv\.weight|bn\.\w+))|conv[23]\.(conv\.weight|bn\.\w+)|se\.fc[12]\.(weight|bias)|downsample\.(conv\.weight|bn\.\w+)))$/;
    for (const k of Object.keys(specs)) expect(k).toMatch(pattern);
    const plain = backboneSpecs({ ...FULL, gsm: false }, 'bb');
    expect(plain['bb.s3.b2.conv1.conv.weight'].shape).toEqual([1, 1, 152, 152]);
    expect(plain['bb.s3.b2.conv1.bn.weight'].shape).toEqual([152]);
    expect(Object.keys(plain).some((k) => k.includes('gsm'))).toBe(false);
  });

  it('initialises convs normal(0, sqrt(2 / fan_out)), BN to ones/zeros and GSM convs to zero', async () => {
    await useBackend('wasm');
    const specs = backboneSpecs(FULL);
    expect(specs['backbone.s2.b1.conv2.conv.weight'].init).toEqual({
      kind: 'normal',
      std: Math.sqrt(2 / 72),
    });
    expect(specs['backbone.s1.b1.se.fc1.weight'].init).toEqual({ kind: 'normal', std: Math.sqrt(2 / 8) });
    const name = 'backbone.s4.b2.conv3.conv.weight';
    const params = initParams({ [name]: specs[name] }, createRng(1));
    const w = params[name].dataSync();
    let ss = 0;
    for (const v of w) ss += v * v;
    expect(Math.sqrt(ss / w.length) / Math.sqrt(2 / 368)).toBeCloseTo(1, 1);
    expect(specs['backbone.s3.b1.conv1.gsm.conv3D.weight'].init.kind).toBe('zeros');
    expect(specs['backbone.s3.b1.conv3.bn.weight'].init.kind).toBe('ones');
    tf.dispose(Object.values(params));
  });

  it('rejects inconsistent configs and wrong frame shapes', () => {
    expect(() => regnetBlocks({ ...TINY, widths: [8, 12, 24, 32] })).toThrow(McoreError);
    expect(() => regnetBlocks({ ...TINY, depths: [1, 1] })).toThrow(/same stages/);
    const specs = backboneSpecs(TINY);
    const params = toParams(specs, randomValues(specs, 1));
    expect(() => backboneForward(params, TINY, tf.zeros([2, 16, 16, 3]) as unknown as tf.Tensor5D)).toThrow(
      McoreError,
    );
    tf.dispose(Object.values(params));
  });
});

describe('backboneForward', () => {
  const V = 2;
  const T = 3;
  const specs = backboneSpecs(TINY);
  const values = randomValues(specs, 42);
  const frameData = randn(createRng(43), V * T * 32 * 32 * 3);

  it('gives [V, T, D], agrees across cpu and wasm and with the plain conv-then-BN composition', async () => {
    const outs: Record<string, Float32Array> = {};
    for (const b of ['cpu', 'wasm'] as BackendName[]) {
      await useBackend(b);
      const params = toParams(specs, values);
      const frames = tf.tensor5d(frameData, [V, T, 32, 32, 3]);
      const y = backboneForward(params, TINY, frames);
      expect(y.shape).toEqual([V, T, 32]);
      outs[b] = y.dataSync() as Float32Array;
      if (b === 'cpu') {
        const ref = tf.tidy(() => referenceForward(params, TINY, frames).dataSync());
        let err = 0;
        for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(ref[i] - outs[b][i]));
        expect(err).toBeLessThan(1e-4);
      }
      tf.dispose([...Object.values(params), frames, y]);
    }
    let err = 0;
    let scale = 0;
    for (let i = 0; i < outs.cpu.length; i++) {
      err = Math.max(err, Math.abs(outs.cpu[i] - outs.wasm[i]));
      scale = Math.max(scale, Math.abs(outs.cpu[i]));
    }
    expect(scale).toBeGreaterThan(0.01);
    expect(err).toBeLessThan(1e-4);
  });

  it('mixes frames within a video through the GSMs, never across videos', async () => {
    await useBackend('wasm');
    const params = toParams(specs, values);
    const changed = frameData.slice();
    const frameSize = 32 * 32 * 3;
    for (let i = 0; i < frameSize; i++) changed[T * frameSize + i] += 1; // video 1, frame 0
    const run = (cfg: BackboneConfig, s: Params, d: Float32Array) =>
      tf.tidy(() => backboneForward(s, cfg, tf.tensor5d(d, [V, T, 32, 32, 3])).arraySync());
    const a = run(TINY, params, frameData);
    const b = run(TINY, params, changed);
    const differs = (u: number[], w: number[]) => u.some((x, i) => Math.abs(x - w[i]) > 1e-6);
    expect(a[0].every((f, t) => !differs(f, b[0][t]))).toBe(true); // video 0 untouched
    expect(differs(a[1][0], b[1][0])).toBe(true);
    expect(differs(a[1][1], b[1][1])).toBe(true); // frame 1 sees frame 0 through the shifts
    const plainCfg = { ...TINY, gsm: false };
    const plainSpecs = backboneSpecs(plainCfg);
    const plain = toParams(plainSpecs, randomValues(plainSpecs, 42));
    const c = run(plainCfg, plain, frameData);
    const d = run(plainCfg, plain, changed);
    expect(differs(c[1][0], d[1][0])).toBe(true);
    expect(differs(c[1][1], d[1][1])).toBe(false); // without GSM, frames are independent
    tf.dispose([...Object.values(params), ...Object.values(plain)]);
  });

  it('gives every trainable parameter a non-zero gradient and keeps tf.memory flat', async () => {
    await useBackend('wasm');
    const params = toParams(specs, values);
    const vars: Params = {};
    for (const [name, t] of Object.entries(params)) {
      if (specs[name].trainable) {
        vars[name] = tf.variable(t, true, `grad-test/${name}`);
        t.dispose();
      } else vars[name] = t;
    }
    const frames = tf.tensor5d(frameData, [V, T, 32, 32, 3]);
    const target = tf.tensor3d(randn(createRng(44), V * T * 32), [V, T, 32]);
    const trainable = Object.keys(specs).filter((n) => specs[n].trainable);
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(
          () => tf.sum(tf.mul(backboneForward(vars, TINY, frames), target)) as tf.Scalar,
          trainable.map((n) => vars[n] as tf.Variable),
        );
        return Object.fromEntries(trainable.map((n) => [n, grads[`grad-test/${n}`].dataSync()]));
      });
    const g = step();
    const zero = trainable.filter((n) => !Array.from(g[n]).some((v) => v !== 0));
    expect(zero).toEqual([]);
    expect(Object.keys(g).length).toBe(trainable.length);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...Object.values(vars), frames, target]);
  });

  it('runs the full RegNetY-200MF config to 368 features per frame', async () => {
    await useBackend('wasm');
    const full = backboneSpecs(FULL);
    const params = initParams(full, createRng(3));
    const frames = tf.tensor5d(randn(createRng(4), 2 * 32 * 32 * 3), [1, 2, 32, 32, 3]);
    const y = backboneForward(params, FULL, frames);
    expect(y.shape).toEqual([1, 2, 368]);
    const d = y.dataSync();
    expect(d.every(Number.isFinite)).toBe(true);
    expect(d.some((v) => v > 0)).toBe(true);
    tf.dispose([...Object.values(params), frames, y]);
  });
});
