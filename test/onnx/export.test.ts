import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { type BackboneConfig, featureDim, modelConfig } from '../../src/model/config.ts';
import { compareTokens, mcoreSpecs } from '../../src/model/mcore.ts';
import { initValue, type Params } from '../../src/model/params.ts';
import { backboneForward, backboneSpecs } from '../../src/model/regnet.ts';
import { segmenterForward } from '../../src/model/segmenter.ts';
import { exportBackbone, exportScorer, exportSegmenter } from '../../src/onnx/export.ts';
import { modelMetadata, modelOpset } from '../../src/onnx/graph.ts';
import {
  createSession,
  dispose,
  type OnnxArray,
  type OnnxSession,
  runBackbone,
  runScorer,
  runSegmenter,
} from '../../src/onnx/runtime.ts';
import { createRng, type Rng } from '../../src/rng.ts';

const cfg = modelConfig('mcore-tiny');
const D = featureDim(cfg);
const K = cfg.stages;
const L = cfg.tokensPerStage;
// V = 2 videos of T = 8 frames of 32 x 32.
const V = 2;
const T = 8;
const S = 32;
const TOL = 1e-4;
// delta is a mean of small regressor outputs, so float rounding leaves it within ~1e-7: a tighter
// bound lets the scorer check catch small slips (a LayerNorm eps, a GELU constant).
const SCORER_TOL = 1e-5;

/** max_i |a_i - b_i| / max(1, |b_i|). */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/**
 * Every parameter of the tiny model with its spec'd init, then the frozen BN statistics, BN and
 * LayerNorm affine maps and the GSM gate convs randomised (a zero gate would hide gate bugs), and the
 * decoder's Linear weights scaled by 3 (peakier attention, GELU away from its linear part).
 */
function randomParams(rng: Rng, opts: { zeroGate?: boolean } = {}): Params {
  const specs = mcoreSpecs(cfg, { backbone: true });
  const out: Params = {};
  for (const name of Object.keys(specs).sort()) {
    const s = specs[name];
    let v = initValue(s, rng);
    const n = v.length;
    if (name.endsWith('.running_mean')) v = randn(rng, n, 0.2);
    else if (name.endsWith('.running_var')) v = Float32Array.from({ length: n }, () => 0.5 + rng.next());
    else if (/(bn|norm_q|norm_v|norm2)\.weight$/.test(name)) v = v.map(() => 1 + 0.2 * rng.normal());
    else if (/(bn|norm_q|norm_v|norm2)\.bias$/.test(name)) v = randn(rng, n, 0.1);
    else if (name.includes('conv3D.')) v = opts.zeroGate ? new Float32Array(n) : randn(rng, n, 0.3);
    else if (name.startsWith('decoder.') && s.layout === 'linear') v = v.map((x) => 3 * x);
    out[name] = tf.tensor(v, s.shape, 'float32');
  }
  return out;
}

/** [V, T, H, W, 3] (NHWC) -> [V*T, 3, H, W] (NCHW). */
function toNchw(x: Float32Array, n: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let c = 0; c < 3; c++) out[((i * 3 + c) * h + y) * w + xx] = x[((i * h + y) * w + xx) * 3 + c];
  return out;
}

let params: Params;
let frames: Float32Array;
let features: Float32Array; // tfjs backbone features [V, T, D]
const sessions: OnnxSession[] = [];

async function session(model: Uint8Array | string): Promise<OnnxSession> {
  const s = await createSession(model, { threads: 2 });
  sessions.push(s);
  return s;
}

beforeAll(async () => {
  await useBackend('wasm');
  params = randomParams(createRng(11));
  frames = randn(createRng(12), V * T * S * S * 3);
  features = tf.tidy(() =>
    backboneForward(params, cfg.backbone, tf.tensor5d(frames, [V, T, S, S, 3])).dataSync(),
  ) as Float32Array;
});

afterAll(async () => {
  for (const s of sessions) await dispose(s);
  for (const t of Object.values(params)) t.dispose();
});

describe('exportBackbone', () => {
  it('is valid opset-17 ONNX that ORT loads, with symbolic N, H, W and T fixed', async () => {
    const before = tf.memory().numTensors;
    const bytes = exportBackbone(params, cfg.backbone, { frames: T });
    expect(tf.memory().numTensors).toBe(before);
    expect(modelOpset(bytes)).toBeGreaterThanOrEqual(17);
    expect(modelMetadata(bytes)).toMatchObject({ 'mcore.graph': 'backbone', 'mcore.frames': '8' });
    const s = await session(bytes);
    expect(s.inputs).toEqual([{ name: 'frames', shape: ['N', 3, 'H', 'W'] }]);
    expect(s.outputs).toEqual([{ name: 'features', shape: ['V', T, D] }]);
    // From a file too; bytes that are not ONNX are refused with E_INPUT.
    const dir = await mkdtemp(path.join(tmpdir(), 'mcore-onnx-'));
    const file = path.join(dir, 'backbone.onnx');
    await writeFile(file, bytes);
    const fromFile = await session(file);
    expect(fromFile.outputs).toEqual(s.outputs);
    await rm(dir, { recursive: true });
    await expect(createSession(new Uint8Array([1, 2, 3, 4]))).rejects.toMatchObject({ code: 'E_INPUT' });
  });

  it('matches backboneForward (wasm) within 1e-4, with a non-zero GSM gate', async () => {
    const s = await session(exportBackbone(params, cfg.backbone, { frames: T }));
    const out = await runBackbone(s, { data: toNchw(frames, V * T, S, S), dims: [V * T, 3, S, S] });
    expect(out.dims).toEqual([V, T, D]);
    expect(maxRelDiff(out.data, features)).toBeLessThan(TOL);
    // The gate matters: the same model with a zero gate is far from it, so the check above has power.
    const flat = randomParams(createRng(11), { zeroGate: true });
    const ungated = tf.tidy(() =>
      backboneForward(flat, cfg.backbone, tf.tensor5d(frames, [V, T, S, S, 3])).dataSync(),
    );
    for (const t of Object.values(flat)) t.dispose();
    expect(maxRelDiff(ungated, features)).toBeGreaterThan(100 * TOL);
  });

  it.each([
    { what: 'one frame per video (no GSM shifts)', frames: 1, backbone: {} },
    {
      what: 'groups of 8 at widths that are not multiples of 16',
      frames: 3,
      backbone: { widths: [8, 40], depths: [2, 1] },
    },
    {
      what: 'groups of 4 (left as they are)',
      frames: 3,
      backbone: { widths: [16, 24], depths: [1, 1], groupWidth: 4 },
    },
    {
      what: 'groups of 24, no GSM, no SE',
      frames: 3,
      backbone: { widths: [24, 48], depths: [1, 1], groupWidth: 24, gsm: false, seRatio: 0 },
    },
  ])('matches backboneForward for other shapes: $what', async ({ frames: t, backbone }) => {
    const bb: BackboneConfig = { ...cfg.backbone, ...backbone };
    const rng = createRng(21);
    const specs = backboneSpecs(bb, 'backbone');
    const p: Params = {};
    for (const [name, s] of Object.entries(specs)) {
      let v = initValue(s, rng);
      if (name.endsWith('.running_mean')) v = randn(rng, v.length, 0.2);
      else if (name.endsWith('.running_var')) v = v.map(() => 0.5 + rng.next());
      else if (name.includes('conv3D.')) v = randn(rng, v.length, 0.3);
      p[name] = tf.tensor(v, s.shape, 'float32');
    }
    const x = randn(createRng(22), V * t * S * S * 3);
    const want = tf.tidy(() => backboneForward(p, bb, tf.tensor5d(x, [V, t, S, S, 3])).dataSync());
    const s = await session(exportBackbone(p, bb, { frames: t }));
    const out = await runBackbone(s, { data: toNchw(x, V * t, S, S), dims: [V * t, 3, S, S] });
    tf.dispose(Object.values(p));
    expect(out.dims).toEqual([V, t, bb.widths[bb.widths.length - 1]]);
    expect(maxRelDiff(out.data, want)).toBeLessThan(TOL);
  });

  it('rejects frames that are not whole videos, and parameters that do not fit the config', async () => {
    const s = await session(exportBackbone(params, cfg.backbone, { frames: T }));
    const n = T + 4;
    await expect(
      runBackbone(s, { data: new Float32Array(n * 3 * S * S), dims: [n, 3, S, S] }),
    ).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(
      runBackbone(s, { data: new Float32Array(T * 4 * S * S), dims: [T, 4, S, S] }),
    ).rejects.toMatchObject({ code: 'E_SHAPE' });
    const { 'backbone.s2.b1.conv1.gsm.conv3D.weight': _, ...missing } = params;
    expect(() => exportBackbone(missing, cfg.backbone, { frames: T })).toThrow(/conv3D\.weight: missing/);
  });
});

describe('exportSegmenter', () => {
  it('matches segmenterForward (training false) within 1e-4, also for another V and T', async () => {
    const bytes = exportSegmenter(params, cfg);
    expect(modelOpset(bytes)).toBeGreaterThanOrEqual(17);
    const s = await session(bytes);
    expect(s.outputs).toEqual([{ name: 'logits', shape: ['V', 'T', K - 1] }]);
    const cases: OnnxArray[] = [
      { data: features, dims: [V, T, D] },
      { data: randn(createRng(13), 3 * 5 * D), dims: [3, 5, D] },
    ];
    for (const f of cases) {
      const expected = tf.tidy(() =>
        segmenterForward(params, cfg, tf.tensor3d(f.data, f.dims as [number, number, number]), {
          training: false,
        }).dataSync(),
      );
      const out = await runSegmenter(s, f);
      expect(out.dims).toEqual([f.dims[0], f.dims[1], K - 1]);
      expect(maxRelDiff(out.data, expected)).toBeLessThan(TOL);
    }
  });
});

describe('exportScorer', () => {
  it('matches compareTokens within 1e-5', async () => {
    const bytes = exportScorer(params, cfg);
    expect(modelOpset(bytes)).toBeGreaterThanOrEqual(17);
    const s = await session(bytes);
    const N = 3;
    const rng = createRng(14);
    // Small token variances (as after pooling ReLU features) make the LayerNorm eps count.
    const q = randn(rng, N * K * L * D, 0.01);
    const e = randn(rng, N * K * L * D, 0.003);
    const expected = tf.tidy(() =>
      compareTokens(params, cfg, tf.tensor3d(q, [N, K * L, D]), tf.tensor3d(e, [N, K * L, D])).dataSync(),
    );
    const out = await runScorer(s, { data: q, dims: [N, K * L, D] }, { data: e, dims: [N, K * L, D] });
    expect(out.dims).toEqual([N]);
    expect(maxRelDiff(out.data, expected)).toBeLessThan(SCORER_TOL);
    // Swapping query and exemplar changes delta: the two inputs are not confused.
    const swapped = await runScorer(s, { data: e, dims: [N, K * L, D] }, { data: q, dims: [N, K * L, D] });
    expect(maxRelDiff(swapped.data, expected)).toBeGreaterThan(100 * TOL);
  });
});
