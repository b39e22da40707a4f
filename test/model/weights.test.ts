import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { McoreError } from '../../src/errors.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { disposeParams, initParams, type ParamSpecs, spec } from '../../src/model/params.ts';
import {
  fromTorchLayout,
  loadWeights,
  saveWeights,
  torchShape,
  toTorchLayout,
} from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';

const GOLDEN = path.join(import.meta.dirname, '..', 'fixtures', 'golden');

let dir: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await mkdtemp(path.join(tmpdir(), 'mcore-w-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

/** One spec per layout, with odd sizes so that a wrong permutation cannot pass by symmetry. */
const specs: ParamSpecs = {
  'm.fc.weight': spec([3, 2], { kind: 'normal', std: 1 }, 'head', 'linear'),
  'm.fc.bias': spec([2], { kind: 'normal', std: 1 }, 'head'),
  'm.gru.weight_ih_l0': spec([2, 9], { kind: 'normal', std: 1 }, 'head', 'gru'),
  'm.conv.weight': spec([3, 1, 2, 5], { kind: 'normal', std: 1 }, 'backbone', 'conv2d'),
  'm.gsm.conv3D.weight': spec([3, 2, 1, 4, 2], { kind: 'normal', std: 1 }, 'backbone', 'conv3d'),
  'm.bn.running_var': spec([5], { kind: 'normal', std: 1 }, 'backbone', 'same', false),
};

describe('layout conversion', () => {
  it('maps our layouts to torch shapes', () => {
    expect(torchShape([3, 2], 'linear')).toEqual([2, 3]);
    expect(torchShape([368, 1104], 'gru')).toEqual([1104, 368]);
    expect(torchShape([3, 3, 8, 24], 'conv2d')).toEqual([24, 8, 3, 3]);
    expect(torchShape([3, 3, 3, 4, 2], 'conv3d')).toEqual([2, 4, 3, 3, 3]);
    expect(torchShape([7], 'same')).toEqual([7]);
    expect(() => torchShape([3, 3], 'conv2d')).toThrow(/rank 4/);
  });

  it('transposes linear weights: ours [in, out] -> torch [out, in]', () => {
    // ours [[0, 1], [2, 3], [4, 5]] (in = 3, out = 2) -> torch [[0, 2, 4], [1, 3, 5]]
    expect(Array.from(toTorchLayout(iota(6), [3, 2], 'linear'))).toEqual([0, 2, 4, 1, 3, 5]);
    expect(Array.from(fromTorchLayout(new Float32Array([0, 2, 4, 1, 3, 5]), [3, 2], 'linear'))).toEqual([
      0, 1, 2, 3, 4, 5,
    ]);
  });

  it('permutes conv2d HWIO -> OIHW', () => {
    // ours [kh=1, kw=2, in=1, out=3]: ours[0][w][0][o] = 3w + o; torch[o][0][0][w] -> [0, 3, 1, 4, 2, 5]
    expect(Array.from(toTorchLayout(iota(6), [1, 2, 1, 3], 'conv2d'))).toEqual([0, 3, 1, 4, 2, 5]);
    // ours [kh=2, kw=1, in=2, out=1]: ours[h][0][i][0] = 2h + i; torch[0][i][h][0] -> [0, 2, 1, 3]
    expect(Array.from(toTorchLayout(iota(4), [2, 1, 2, 1], 'conv2d'))).toEqual([0, 2, 1, 3]);
  });

  it('permutes conv3d DHWIO -> OIDHW', () => {
    // ours [kd=2, kh=1, kw=1, in=1, out=2]: ours[d][0][0][0][o] = 2d + o; torch[o][0][d][0][0] -> [0, 2, 1, 3]
    expect(Array.from(toTorchLayout(iota(4), [2, 1, 1, 1, 2], 'conv3d'))).toEqual([0, 2, 1, 3]);
    // ours [1, 1, kw=2, in=2, out=1]: ours[0][0][w][i][0] = 2w + i; torch[0][i][0][0][w] -> [0, 2, 1, 3]
    expect(Array.from(toTorchLayout(iota(4), [1, 1, 2, 2, 1], 'conv3d'))).toEqual([0, 2, 1, 3]);
  });

  it('inverts every layout exactly', () => {
    for (const s of Object.values(specs)) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const back = fromTorchLayout(toTorchLayout(iota(n), s.shape, s.layout), s.shape, s.layout);
      expect(Array.from(back)).toEqual(Array.from(iota(n)));
    }
  });
});

describe('saveWeights / loadWeights', () => {
  it('round-trips bit-identically, special values included', async () => {
    const before = tf.memory().numTensors;
    const params = initParams(specs, createRng(7));
    const special = new Float32Array([-0, 1e-45, -3.4028234663852886e38, Number.NaN, 1 / 3, 2 ** -126]);
    params['m.fc.weight'].dispose();
    const value = tf.tensor(special, [3, 2]);
    params['m.fc.weight'] = tf.variable(value, true, 'm.fc.weight');
    value.dispose();
    const file = path.join(dir, 'rt.safetensors');
    await saveWeights(file, params, specs, { step: '12' });
    const expected: Record<string, Uint32Array> = {};
    for (const [k, t] of Object.entries(params))
      expected[k] = new Uint32Array(((await t.data()) as Float32Array).buffer);
    disposeParams(params);

    const { params: loaded, unused, metadata } = await loadWeights(file, specs);
    expect(unused).toEqual([]);
    expect(metadata).toEqual({ format: 'pt', step: '12' });
    expect(Object.keys(loaded).sort()).toEqual(Object.keys(specs).sort());
    for (const [k, t] of Object.entries(loaded)) {
      expect(t.shape).toEqual(specs[k].shape);
      const bits = new Uint32Array(((await t.data()) as Float32Array).buffer);
      expect(Array.from(bits), k).toEqual(Array.from(expected[k]));
      expect(t instanceof tf.Variable, k).toBe(specs[k].trainable);
    }
    disposeParams(loaded);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('writes torch layout on disk', async () => {
    const one = { 'm.fc.weight': specs['m.fc.weight'] };
    const params = { 'm.fc.weight': tf.tensor(iota(6), [3, 2]) };
    const file = path.join(dir, 'layout.safetensors');
    await saveWeights(file, params, one);
    disposeParams(params);
    const { tensors } = await readSafetensors(file);
    expect(tensors['m.fc.weight'].shape).toEqual([2, 3]);
    expect(Array.from(tensors['m.fc.weight'].data as Float32Array)).toEqual([0, 2, 4, 1, 3, 5]);
  });

  it('loads a file written by the PyTorch peer (conv3d layout, BN buffers)', async () => {
    const gsmSpecs: ParamSpecs = {
      'gsm.conv3D.weight': spec([3, 3, 3, 8, 2], { kind: 'zeros' }, 'backbone', 'conv3d'),
      'gsm.conv3D.bias': spec([2], { kind: 'zeros' }, 'backbone'),
      'gsm.bn.weight': spec([16], { kind: 'ones' }, 'backbone'),
      'gsm.bn.bias': spec([16], { kind: 'zeros' }, 'backbone'),
      'gsm.bn.running_mean': spec([16], { kind: 'zeros' }, 'backbone', 'same', false),
      'gsm.bn.running_var': spec([16], { kind: 'ones' }, 'backbone', 'same', false),
    };
    const file = path.join(GOLDEN, 'gsm.safetensors');
    const torch = (await readSafetensors(file)).tensors['gsm.conv3D.weight'].data as Float32Array;
    const { params, unused } = await loadWeights(file, gsmSpecs);
    expect(unused).toEqual(['io.gate', 'io.x', 'io.y']);
    const ours = (await params['gsm.conv3D.weight'].data()) as Float32Array;
    // torch (o, i, d, h, w) with shape (2, 8, 3, 3, 3) against ours [d, h, w, i, o] with shape [3, 3, 3, 8, 2]
    const t = (o: number, i: number, d: number, h: number, w: number) =>
      torch[(((o * 8 + i) * 3 + d) * 3 + h) * 3 + w];
    const u = (o: number, i: number, d: number, h: number, w: number) =>
      ours[(((d * 3 + h) * 3 + w) * 8 + i) * 2 + o];
    for (const [o, i, d, h, w] of [
      [0, 0, 0, 0, 0],
      [1, 7, 2, 1, 0],
      [0, 3, 1, 2, 2],
      [1, 5, 0, 2, 1],
    ]) {
      expect(u(o, i, d, h, w)).toBe(t(o, i, d, h, w));
    }
    expect(params['gsm.bn.running_var'] instanceof tf.Variable).toBe(false);
    disposeParams(params);
  });

  it('lists every missing or mis-shaped entry in one error, and reports extras as unused', async () => {
    const file = path.join(dir, 'bad.safetensors');
    await writeSafetensors(file, {
      'm.fc.weight': { dtype: 'F32', shape: [3, 2], data: new Float32Array(6) }, // torch wants [2, 3]
      'm.fc.bias': { dtype: 'F32', shape: [2], data: new Float32Array(2) },
      'm.conv.weight': { dtype: 'I32', shape: [5, 2, 3, 1], data: new Int32Array(30) },
      'm.bn.num_batches_tracked': { dtype: 'I64', shape: [], data: new BigInt64Array(1) },
    });
    const before = tf.memory().numTensors;
    let err: unknown;
    try {
      await loadWeights(file, specs);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(McoreError);
    expect((err as McoreError).code).toBe('E_WEIGHTS');
    const msg = (err as Error).message;
    expect(msg).toContain('bad.safetensors');
    expect(msg).toContain('5 of 6 parameters');
    expect(msg).toContain('m.fc.weight: expected torch shape [2, 3], found [3, 2]');
    expect(msg).toContain('m.gru.weight_ih_l0: missing (expected torch shape [9, 2])');
    expect(msg).toContain('m.gsm.conv3D.weight: missing (expected torch shape [2, 4, 3, 2, 1])');
    expect(msg).toContain('m.bn.running_var: missing (expected torch shape [5])');
    expect(msg).toContain('m.conv.weight: dtype I32 is not a float type');
    expect(msg).not.toContain('m.fc.bias');
    expect(tf.memory().numTensors).toBe(before);

    const { params, unused } = await loadWeights(file, { 'm.fc.bias': specs['m.fc.bias'] });
    expect(unused).toEqual(['m.bn.num_batches_tracked', 'm.conv.weight', 'm.fc.weight']);
    disposeParams(params);
  });

  it('accepts float64 files (rounded to float32)', async () => {
    const file = path.join(dir, 'f64.safetensors');
    await writeSafetensors(file, {
      'm.fc.bias': { dtype: 'F64', shape: [2], data: new Float64Array([0.1, -2]) },
    });
    const { params } = await loadWeights(file, { 'm.fc.bias': specs['m.fc.bias'] });
    expect(Array.from(await params['m.fc.bias'].data())).toEqual([Math.fround(0.1), -2]);
    disposeParams(params);
  });

  it('refuses to save params that are missing, mis-shaped or without a spec', async () => {
    const params = {
      'm.fc.bias': tf.zeros([3]),
      'm.extra': tf.zeros([1]),
    };
    const one = { 'm.fc.bias': specs['m.fc.bias'], 'm.fc.weight': specs['m.fc.weight'] };
    const file = path.join(dir, 'nosave.safetensors');
    await expect(saveWeights(file, params, one)).rejects.toThrow(
      /m\.fc\.bias: shape \[3\], spec says \[2\][\s\S]*m\.fc\.weight: missing[\s\S]*m\.extra: has no spec/,
    );
    disposeParams(params);
  });
});
