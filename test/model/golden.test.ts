/**
 * Golden tests: mcore's modules against the PyTorch peer (bench/peer/mcore_peer.py) on the fixed weights
 * and inputs of test/fixtures/golden (made by bench/peer/make_fixtures.py; the peer computes in float64 on
 * the stored float32 data). Weights are loaded through loadWeights (torch layout -> ours), so these tests
 * also check every layout conversion. Frames: torch (V, T, 3, H, W) -> ours [V, T, H, W, 3].
 *
 * Tolerance: every value within 1e-4 x max(1, |expected|) for activations and losses; gradients within
 * 1e-4 x the tensor's own scale max|expected| (gradients of the tiny backbone are ~1e-5), and within 1e-6
 * absolute where the float64 gradient is zero (segmenter.fc_out.bias: a softmax over time ignores a shift).
 * Measured errors are ~1e-7 of the scale.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { type LossConfig, resolveConfig } from '../../src/config.ts';
import { readSafetensors, type SafeTensor } from '../../src/io/safetensors.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { decoderForward } from '../../src/model/decoder.ts';
import { gsm, gsmGate, gsmShift, gsmShuffle, gsmSpecs } from '../../src/model/gsm.ts';
import { aqaLoss, contrastiveLoss, tasLoss, totalLoss } from '../../src/model/losses.ts';
import { mcoreForward, mcoreSpecs } from '../../src/model/mcore.ts';
import { disposeParams, namedGrads, type ParamSpecs, type Params } from '../../src/model/params.ts';
import { backboneForward, backboneSpecs } from '../../src/model/regnet.ts';
import { regressorForward } from '../../src/model/regressor.ts';
import { segmenterForward } from '../../src/model/segmenter.ts';
import { stagePool } from '../../src/model/stage-pool.ts';
import { decodeTransitions } from '../../src/model/transitions.ts';
import { loadWeights, toTorchLayout } from '../../src/model/weights.ts';

const GOLDEN = path.join(import.meta.dirname, '..', 'fixtures', 'golden');
/** The paper's losses: the defaults (test/config.test.ts pins them). */
const LOSS: LossConfig = resolveConfig().loss;

interface Fixture {
  cfg: ModelConfig;
  io: Record<string, SafeTensor>;
  params: Params;
  specs: ParamSpecs;
}

async function loadFixture(name: string, backbone: boolean): Promise<Fixture> {
  const { tensors: io, metadata } = await readSafetensors(path.join(GOLDEN, `${name}.io.safetensors`));
  expect(metadata.generator).toBe('bench/peer/make_fixtures.py');
  const cfg = JSON.parse(metadata.config) as ModelConfig;
  const specs = mcoreSpecs(cfg, { backbone });
  const { params, unused } = await loadWeights(path.join(GOLDEN, `${name}.weights.safetensors`), specs);
  expect(unused).toEqual([]);
  return { cfg, io, params, specs };
}

function f32(t: SafeTensor): Float32Array {
  return t.data as Float32Array;
}

function ints(t: SafeTensor): number[][] {
  const flat = Array.from(t.data as BigInt64Array, Number);
  const [rows, cols] = t.shape;
  return Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
}

function tensor(t: SafeTensor): tf.Tensor {
  return tf.tensor(f32(t), t.shape, 'float32');
}

/** Worst error of `actual` against `expected`, each element scaled by max(1, |expected|). */
function expectClose(actual: tf.Tensor | Float32Array, expected: SafeTensor, what: string, tol = 1e-4): void {
  const a = actual instanceof Float32Array ? actual : (actual.dataSync() as Float32Array);
  if (!(actual instanceof Float32Array)) expect(actual.shape, `${what} shape`).toEqual(expected.shape);
  const e = f32(expected);
  expect(a.length, `${what} size`).toBe(e.length);
  let worst = 0;
  for (let i = 0; i < e.length; i++)
    worst = Math.max(worst, Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i])));
  expect(worst, `${what}: worst scaled error`).toBeLessThanOrEqual(tol);
}

/** Gradient `g` (our layout, spec `name`) against torch's, relative to the tensor's own scale. */
function expectGradClose(
  g: tf.Tensor,
  expected: SafeTensor,
  name: string,
  specs: ParamSpecs,
  tol = 1e-4,
): void {
  const s = specs[name];
  const ours = toTorchLayout(g.dataSync() as Float32Array, s.shape, s.layout);
  const e = f32(expected);
  expect(ours.length, `grad ${name} size`).toBe(e.length);
  let scale = 0;
  for (const v of e) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(ours[i] - e[i]));
  if (scale < 1e-12) expect(worst, `grad ${name}: zero in float64`).toBeLessThanOrEqual(1e-6);
  else expect(worst / scale, `grad ${name}: worst error / tensor scale`).toBeLessThanOrEqual(tol);
}

beforeAll(async () => {
  await useBackend('wasm');
});

describe('golden: head modules on given features (D 32, T 16, 2 pairs)', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await loadFixture('head', false);
  });
  afterAll(() => disposeParams(fx.params));

  it('segmenter logits', () => {
    const { cfg, io, params } = fx;
    tf.tidy(() => {
      const logits = segmenterForward(params, cfg, tensor(io.features) as tf.Tensor3D, { training: false });
      expectClose(logits, io.logits, 'segmenter logits');
    });
  });

  it('stage pooling (stages of 1 frame included)', () => {
    tf.tidy(() => {
      const tokens = stagePool(tensor(fx.io.features) as tf.Tensor3D, ints(fx.io.gt_transitions), 5);
      expectClose(tokens, fx.io.tokens, 'stage tokens');
    });
  });

  it('decoder (memory longer than the query) and regressor', () => {
    const { cfg, io, params } = fx;
    tf.tidy(() => {
      const q = tensor(io['decoder.q']) as tf.Tensor3D;
      const m = tensor(io['decoder.m']) as tf.Tensor3D;
      expectClose(decoderForward(params, cfg, q, m), io['decoder.out'], 'decoder output');
      const r = regressorForward(params, cfg, tensor(io['regressor.in']) as tf.Tensor2D);
      expectClose(r, io['regressor.out'], 'regressor output');
    });
  });

  it('transition decoding (0 -> 1, window ends)', () => {
    const dl = fx.io['decode.logits'];
    expect(decodeTransitions(f32(dl), dl.shape[1], 3)).toEqual(ints(fx.io['decode.transitions']));
  });

  it('forward deltas: training (ground-truth transitions) and test (decoded transitions)', () => {
    const { cfg, io, params } = fx;
    tf.tidy(() => {
      const features = tensor(io.features) as tf.Tensor3D;
      const gt = ints(io.gt_transitions);
      const train = mcoreForward(params, cfg, { features }, { training: true, transitions: gt });
      expectClose(train.deltaQE, io.delta_qe, 'delta(q, e)');
      expectClose(train.deltaEQ, io.delta_eq, 'delta(e, q)');
      expectClose(train.tokens, io.tokens, 'forward tokens');
      expectClose(train.logits, io.logits, 'forward logits');
      const test = mcoreForward(params, cfg, { features }, { training: false });
      expect(test.transitions).toEqual(ints(io.pred_transitions));
      expectClose(test.deltaQE, io.pred_delta_qe, 'test delta(q, e)');
      expectClose(test.deltaEQ, io.pred_delta_eq, 'test delta(e, q)');
    });
  });

  it('loss terms and total', () => {
    const { cfg, io, params } = fx;
    tf.tidy(() => {
      const gt = ints(io.gt_transitions);
      const out = mcoreForward(
        params,
        cfg,
        { features: tensor(io.features) as tf.Tensor3D },
        { training: true, transitions: gt },
      );
      const yq = Array.from(f32(io.yq));
      const ye = Array.from(f32(io.ye));
      expectClose(aqaLoss(out.deltaQE, out.deltaEQ, yq, ye), io['loss.aqa'], 'L_aqa');
      expectClose(tasLoss(out.logits, gt, [1, 2]), io['loss.tas'], 'L_tas');
      expectClose(contrastiveLoss(out.tokens, 'token', { stages: 3 }), io['loss.cont_token'], 'L_cont token');
      expectClose(contrastiveLoss(out.tokens, 'stage', { stages: 3 }), io['loss.cont_stage'], 'L_cont stage');
      const terms = totalLoss(out, { scores: [...yq, ...ye], transitions: gt }, LOSS);
      expectClose(terms.total, io['loss.total'], 'L total');
    });
  });

  it('gradients of the total loss w.r.t. every head parameter', () => {
    const { cfg, io, params, specs } = fx;
    const gt = ints(io.gt_transitions);
    const scores = [...f32(io.yq), ...f32(io.ye)];
    const features = tensor(io.features) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    const { value, grads } = namedGrads(
      () => {
        const out = mcoreForward(params, cfg, { features }, { training: true, transitions: gt });
        return totalLoss(out, { scores, transitions: gt }, LOSS).total;
      },
      params,
      Object.keys(specs),
    );
    expectClose(value, io['loss.total'], 'L total (grad pass)');
    for (const name of Object.keys(specs)) expectGradClose(grads[name], io[`grad.${name}`], name, specs);
    expect(Object.keys(grads).length).toBe(Object.keys(specs).length);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    features.dispose();
  });

  it('gradients w.r.t. the features of L_tas and of the stage-level L_cont', () => {
    const { cfg, io, params } = fx;
    const gt = ints(io.gt_transitions);
    const features = tensor(io.features) as tf.Tensor3D;
    const gTas = tf.grad((F: tf.Tensor) =>
      tasLoss(segmenterForward(params, cfg, F as tf.Tensor3D, { training: false, gradFeatures: true }), gt),
    )(features);
    expectGradClose(gTas, io['grad_tas.features'], 'features', {
      features: { ...SAME, shape: features.shape },
    });
    const gCont = tf.grad((F: tf.Tensor) =>
      contrastiveLoss(stagePool(F as tf.Tensor3D, gt, 5), 'stage', { stages: 3 }),
    )(features);
    expectGradClose(gCont, io['grad_cont_stage.features'], 'features', {
      features: { ...SAME, shape: features.shape },
    });
    tf.dispose([gTas, gCont, features]);
  });
});

/** frames: torch (V, T, 3, H, W) -> ours [V, T, H, W, 3]. */
function framesNHWC(t: SafeTensor): tf.Tensor5D {
  return tf.tidy(() => tf.transpose(tensor(t), [0, 1, 3, 4, 2]) as tf.Tensor5D);
}

describe('golden: end to end through RegNetY + GSM (widths 8-32, depths 1,1,2,1, 32x32, T 8, 2 pairs)', () => {
  let fx: Fixture;
  let frames: tf.Tensor5D;
  beforeAll(async () => {
    fx = await loadFixture('full', true);
    frames = framesNHWC(fx.io.frames);
  });
  afterAll(() => {
    disposeParams(fx.params);
    frames.dispose();
  });

  it('backbone features', () => {
    tf.tidy(() => {
      const F = backboneForward(fx.params, fx.cfg.backbone, frames, 'backbone');
      expectClose(F, fx.io.features, 'backbone features');
    });
  });

  it('the GSM of s3.b2 (fold 8) on its real input', () => {
    tf.tidy(() => {
      const x = gsmInput(fx.io['gsm.s3.b2.in']);
      const y = gsmShuffle(gsmShift(fx.params, 'backbone.s3.b2.conv1.gsm', x, 8));
      expectClose(gsmOutput(y, fx.io['gsm.s3.b2.out'].shape), fx.io['gsm.s3.b2.out'], 'GSM s3.b2');
    });
  });

  it('forward, loss terms (training) and test-mode decoding', () => {
    const { cfg, io, params } = fx;
    tf.tidy(() => {
      const gt = ints(io.gt_transitions);
      const out = mcoreForward(params, cfg, { frames }, { training: true, transitions: gt });
      expectClose(out.features, io.features, 'forward features');
      expectClose(out.logits, io.logits, 'forward logits');
      expectClose(out.tokens, io.tokens, 'forward tokens');
      expectClose(out.deltaQE, io.delta_qe, 'delta(q, e)');
      expectClose(out.deltaEQ, io.delta_eq, 'delta(e, q)');
      const scores = [...f32(io.yq), ...f32(io.ye)];
      const terms = totalLoss(out, { scores, transitions: gt }, LOSS);
      expectClose(terms.aqa, io['loss.aqa'], 'L_aqa');
      expectClose(terms.tas, io['loss.tas'], 'L_tas');
      expectClose(terms.cont, io['loss.cont_token'], 'L_cont token');
      expectClose(terms.total, io['loss.total'], 'L total');
      const test = mcoreForward(params, cfg, { frames }, { training: false });
      expect(test.transitions).toEqual(ints(io.pred_transitions));
      expectClose(test.deltaQE, io.pred_delta_qe, 'test delta(q, e)');
      expectClose(test.deltaEQ, io.pred_delta_eq, 'test delta(e, q)');
    });
  });

  it('gradients of the total loss w.r.t. every trainable parameter, backbone and GSMs included', () => {
    const { cfg, io, params, specs } = fx;
    const gt = ints(io.gt_transitions);
    const scores = [...f32(io.yq), ...f32(io.ye)];
    const names = Object.keys(specs).filter((k) => specs[k].trainable);
    expect(names.filter((k) => k.includes('.gsm.conv3D.')).length).toBe(10); // 5 blocks x weight, bias
    const before = tf.memory().numTensors;
    const { value, grads } = namedGrads(
      () => {
        const out = mcoreForward(params, cfg, { frames }, { training: true, transitions: gt });
        return totalLoss(out, { scores, transitions: gt }, LOSS).total;
      },
      params,
      names,
    );
    expectClose(value, io['loss.total'], 'L total (grad pass)');
    for (const name of names) expectGradClose(grads[name], io[`grad.${name}`], name, specs);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** GSM tensors: torch (N, C, T, H, W) -> ours [N*T, H, W, C]. */
function gsmInput(t: SafeTensor): tf.Tensor4D {
  const [n, c, frames, h, w] = t.shape;
  return tf.reshape(tf.transpose(tensor(t), [0, 2, 3, 4, 1]), [n * frames, h, w, c]) as tf.Tensor4D;
}

/** ours [N*T, H, W, C] -> torch (N, C, T, H, W) values. */
function gsmOutput(y: tf.Tensor, torchShape: number[]): Float32Array {
  const [n, c, frames, h, w] = torchShape;
  return tf.transpose(tf.reshape(y, [n, frames, h, w, c]), [0, 4, 1, 2, 3]).dataSync() as Float32Array;
}

describe('golden: a lone GSM (fold 16: 4 channels per shuffle row)', () => {
  it('gate, and the module with 48 pass-through channels', async () => {
    const file = path.join(GOLDEN, 'gsm.safetensors');
    const { tensors } = await readSafetensors(file);
    const specs = gsmSpecs(64, 'gsm'); // fold(64) = 16
    const { params, unused } = await loadWeights(file, specs);
    expect(unused).toEqual(['io.gate', 'io.x', 'io.y']);
    tf.tidy(() => {
      const frames = tensors['io.x'].shape[2];
      const x = gsmInput(tensors['io.x']);
      const g = gsmGate(params, 'gsm', x, frames);
      expectClose(gsmOutput(g, tensors['io.gate'].shape), tensors['io.gate'], 'GSM gate');
      const rest = tf.randomNormal([...x.shape.slice(0, 3), 48], 0, 1, 'float32', 3);
      const y = gsm(params, 'gsm', tf.concat([x, rest], 3) as tf.Tensor4D, frames);
      const [nt, h, w] = x.shape;
      expectClose(
        gsmOutput(tf.slice(y, [0, 0, 0, 0], [nt, h, w, 16]), tensors['io.y'].shape),
        tensors['io.y'],
        'GSM',
      );
      expect(tf.slice(y, [0, 0, 0, 16], [nt, h, w, 48]).dataSync()).toEqual(rest.dataSync());
    });
    disposeParams(params);
  });
});

describe('golden: backbone without GSM', () => {
  it('features of 4 frames', async () => {
    const file = path.join(GOLDEN, 'backbone-nogsm.safetensors');
    const { tensors, metadata } = await readSafetensors(file);
    const cfg = JSON.parse(metadata.config) as ModelConfig;
    expect(cfg.backbone.gsm).toBe(false);
    const specs = backboneSpecs(cfg.backbone, 'backbone');
    expect(Object.keys(specs).some((k) => k.includes('gsm'))).toBe(false);
    const { params, unused } = await loadWeights(file, specs);
    expect(unused).toEqual(['io.features', 'io.frames']);
    tf.tidy(() => {
      const F = backboneForward(params, cfg.backbone, framesNHWC(tensors['io.frames']), 'backbone');
      expectClose(F, tensors['io.features'], 'backbone features (no GSM)');
    });
    disposeParams(params);
  });
});

const SAME = {
  shape: [] as number[],
  layout: 'same',
  init: { kind: 'zeros' },
  group: 'head',
  trainable: true,
} as const;
