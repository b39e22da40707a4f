/**
 * Importing PyTorch checkpoints: the reference-style `last.pth` and a timm-style RegNetY state dict of
 * test/fixtures/reference (bench/peer/make_reference_pth.py: the PyTorch peer's math under the reference's
 * module names, random weights, tiny config) are read, renamed and run through mcore's tfjs forward; the
 * outputs must match PyTorch's (float64 on the float32 weights) within 1e-4 x max(1, |expected|). Then
 * `mcore import` (src/verbs/import.ts) writes a weights file and a scoring bundle from them, and the
 * bundle's ONNX graphs must reproduce PyTorch's features and transitions too.
 *
 * Input frames (torch layout (V, T, 3, H, W), f = frame over all videos):
 *   ((f*f*7 + f*3 + c*11 + (h div 4)*(5 + f) + (w div 4)*3) mod 17) / 8 - 1
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { formatImport } from '../../src/cli/import.ts';
import { readSafetensors, type SafeTensor } from '../../src/io/safetensors.ts';
import {
  type FlatStateDict,
  flattenStateDicts,
  readTorchCheckpoint,
  TorchTensor,
} from '../../src/io/torch.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { detectSource, importParams, sourceName } from '../../src/model/import-map.ts';
import { mcoreForward, mcoreSpecs } from '../../src/model/mcore.ts';
import { disposeParams, type Params } from '../../src/model/params.ts';
import { backboneForward } from '../../src/model/regnet.ts';
import { loadWeights } from '../../src/model/weights.ts';
import { readBundle } from '../../src/score/bundle.ts';
import { createVideoEncoder } from '../../src/score/sessions.ts';
import { groupNames, importCheckpoint, referenceBundleTransform } from '../../src/verbs/import.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const expectWeightsError = (fn: () => unknown, ...parts: (string | RegExp)[]) =>
  expectMcoreError(fn, 'E_WEIGHTS', ...parts);

const REF = path.join(import.meta.dirname, '..', 'fixtures', 'reference');
const REFERENCE_PTH = path.join(REF, 'mcore-reference-tiny.pth');
const TIMM_PTH = path.join(REF, 'timm-regnety-tiny.pth');

let cfg: ModelConfig;
let io: Record<string, SafeTensor>;
let reference: FlatStateDict;
let timm: FlatStateDict;
let dir: string;

/** Frames in torch layout (V, T, 3, S, S), row-major. */
function torchFrames(V: number, T: number, S: number): Float32Array {
  const out = new Float32Array(V * T * 3 * S * S);
  let i = 0;
  for (let f = 0; f < V * T; f++)
    for (let c = 0; c < 3; c++)
      for (let h = 0; h < S; h++)
        for (let w = 0; w < S; w++) {
          out[i++] =
            ((f * f * 7 + f * 3 + c * 11 + Math.floor(h / 4) * (5 + f) + Math.floor(w / 4) * 3) % 17) / 8 - 1;
        }
  return out;
}

/** The same frames in our layout [V, T, S, S, 3]. */
function ourFrames(V: number, T: number, S: number): tf.Tensor5D {
  return tf.tidy(() =>
    tf.transpose(tf.tensor(torchFrames(V, T, S), [V, T, 3, S, S]), [0, 1, 3, 4, 2]),
  ) as tf.Tensor5D;
}

/** Worst error of `actual` against `expected`, each element scaled by max(1, |expected|). */
function worstError(actual: Float32Array, expected: SafeTensor): number {
  const e = expected.data as Float32Array;
  expect(actual.length).toBe(e.length);
  let worst = 0;
  for (let i = 0; i < e.length; i++)
    worst = Math.max(worst, Math.abs(actual[i] - e[i]) / Math.max(1, Math.abs(e[i])));
  return worst;
}

function ints(t: SafeTensor): number[][] {
  const flat = Array.from(t.data as BigInt64Array, Number);
  const [rows, cols] = t.shape;
  return Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
}

function withGsm(gsm: boolean): ModelConfig {
  return { ...cfg, backbone: { ...cfg.backbone, gsm } };
}

beforeAll(async () => {
  await useBackend('wasm');
  const file = await readSafetensors(path.join(REF, 'reference-io.safetensors'));
  expect(file.metadata.generator).toBe('bench/peer/make_reference_pth.py');
  cfg = JSON.parse(file.metadata.config) as ModelConfig;
  io = file.tensors;
  reference = flattenStateDicts(await readTorchCheckpoint(REFERENCE_PTH), REFERENCE_PTH);
  timm = flattenStateDicts(await readTorchCheckpoint(TIMM_PTH), TIMM_PTH);
  dir = await mkdtemp(path.join(tmpdir(), 'mcore-import-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('name map (spec section 8)', () => {
  it('maps our names to the reference and timm names', () => {
    const ref = (n: string) => sourceName(n, 'mcore-reference');
    expect(ref('backbone.stem.conv.weight')).toBe('base_model._features.stem.conv.weight');
    expect(ref('backbone.s3.b2.conv1.gsm.conv3D.weight')).toBe(
      'base_model._features.s3.b2.conv1.gsm.conv3D.weight',
    );
    expect(ref('backbone.s1.b1.conv1.net.bn.running_var')).toBe(
      'base_model._features.s1.b1.conv1.net.bn.running_var',
    );
    expect(ref('segmenter.gru.weight_hh_l0_reverse')).toBe(
      'psnet_model._pred_fine._gru.weight_hh_l0_reverse',
    );
    expect(ref('segmenter.fc_out.bias')).toBe('psnet_model._pred_fine._fc_out._fc_out.bias');
    expect(ref('decoder.layers.1.attn.q_map.weight')).toBe('decoder.model.1.attn.q_map.weight');
    expect(ref('regressor.layer3.weight')).toBe('regressor_delta.layer3.weight');
    const t = (n: string) => sourceName(n, 'timm-regnety');
    expect(t('backbone.s4.b1.conv1.net.conv.weight')).toBe('s4.b1.conv1.conv.weight');
    expect(t('backbone.s4.b1.conv1.conv.weight')).toBe('s4.b1.conv1.conv.weight');
    expect(t('backbone.s4.b1.downsample.bn.bias')).toBe('s4.b1.downsample.bn.bias');
    expect(t('backbone.s2.b1.conv1.gsm.bn.weight')).toBeUndefined();
    expect(t('segmenter.fc_out.bias')).toBeUndefined();
    expect(sourceName('decoder.layers.0.norm2.weight', 'mcore')).toBe('decoder.layers.0.norm2.weight');
  });

  it('recognises the three sources', () => {
    expect(detectSource(Object.keys(reference.tensors))).toBe('mcore-reference');
    expect(detectSource(Object.keys(timm.tensors))).toBe('timm-regnety');
    expect(detectSource(['backbone.stem.conv.weight', 'segmenter.fc_out.bias'])).toBe('mcore');
    expect(detectSource(['features.0.weight'])).toBeUndefined();
    expectWeightsError(
      () =>
        importParams(
          {
            tensors: { 'features.0.weight': new TorchTensor('F32', [1], new Float32Array(1)) },
            scalars: {},
            other: [],
          },
          cfg,
          { file: 'x.pth' },
        ),
      'x.pth',
      'cannot tell whose weights',
    );
  });
});

describe('the reference checkpoint (base_model, psnet_model, decoder, regressor_delta)', () => {
  it('imports every parameter, reports the unused entries and leaks no tensors', () => {
    const before = tf.memory().numTensors;
    const r = importParams(reference, cfg, { file: 'ref.pth' });
    expect(r.source).toBe('mcore-reference');
    expect(r.initialised).toEqual([]);
    expect(r.imported.sort()).toEqual(Object.keys(mcoreSpecs(cfg, { backbone: true })).sort());
    // EnhNet: 3 layers x 2 directions x 4 tensors; num_batches_tracked: stem + 4 BNs x 5 blocks + 4 downsamples
    const enh = r.unused.filter((n) => n.startsWith('EnhNet_model.enhance.'));
    const nbt = r.unused.filter((n) => n.endsWith('.num_batches_tracked'));
    expect(enh).toHaveLength(24);
    expect(nbt).toHaveLength(25);
    expect(r.unused).toHaveLength(49);
    expect(groupNames(r.unused)).toEqual([
      { group: 'EnhNet_model.enhance.*', count: 24 },
      { group: '*.num_batches_tracked', count: 25 },
    ]);
    disposeParams(r.params);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs like PyTorch: features, logits, decoded transitions and deltas within 1e-4', () => {
    const { params } = importParams(reference, cfg);
    const [V, T, , S] = [2, cfg.frames, 3, cfg.imageSize];
    const frames = ourFrames(V, T, S);
    const out = mcoreForward(params, cfg, { frames }, { training: false });
    expect(worstError(out.features.dataSync() as Float32Array, io.features)).toBeLessThanOrEqual(1e-4);
    expect(worstError(out.logits.dataSync() as Float32Array, io.logits)).toBeLessThanOrEqual(1e-4);
    expect(out.transitions).toEqual(ints(io.pred_transitions));
    expect(out.transitions).toEqual([
      [3, 5],
      [3, 4],
    ]);
    expect(worstError(out.deltaQE.dataSync() as Float32Array, io.pred_delta_qe)).toBeLessThanOrEqual(1e-4);
    expect(worstError(out.deltaEQ.dataSync() as Float32Array, io.pred_delta_eq)).toBeLessThanOrEqual(1e-4);
    // the GSM gates matter: with them zeroed the features are far from PyTorch's
    const zeroed: Params = { ...params };
    for (const n of Object.keys(params).filter((k) => k.endsWith('.gsm.conv3D.weight'))) {
      zeroed[n] = tf.zerosLike(params[n]);
    }
    const f0 = backboneForward(zeroed, cfg.backbone, frames);
    expect(worstError(f0.dataSync() as Float32Array, io.features)).toBeGreaterThan(1e-2);
    for (const n of Object.keys(zeroed)) if (zeroed[n] !== params[n]) zeroed[n].dispose();
    tf.dispose([frames, f0, out.features, out.logits, out.tokens, out.deltaQE, out.deltaEQ]);
    disposeParams(params);
  });

  it('lists every missing, mis-shaped and non-float entry in one error', () => {
    const tensors = { ...reference.tensors };
    delete tensors['decoder.model.1.mlp.fc2.bias'];
    tensors['regressor_delta.layer1.weight'] = new TorchTensor('F32', [15, 32], new Float32Array(15 * 32));
    tensors['psnet_model._pred_fine._fc_out._fc_out.bias'] = new TorchTensor(
      'I64',
      [2],
      new BigInt64Array(2),
    );
    const err = expectWeightsError(
      () => importParams({ ...reference, tensors }, cfg, { file: 'broken.pth' }),
      'broken.pth: 3 of ',
      'decoder.layers.1.mlp.fc2.bias <- decoder.model.1.mlp.fc2.bias: missing (expected torch shape [32])',
      'regressor.layer1.weight <- regressor_delta.layer1.weight: expected torch shape [16, 32], found [15, 32]',
      'segmenter.fc_out.bias <- psnet_model._pred_fine._fc_out._fc_out.bias: dtype I64 is not a float type',
    );
    expect(err.message.split('\n')).toHaveLength(4);
  });

  it('refuses a model config that does not match the file', () => {
    const wide = { ...cfg, regressor: { hidden: [32, 8] } };
    expectWeightsError(
      () => importParams(reference, wide, { file: 'ref.pth' }),
      'regressor.layer1.weight <- regressor_delta.layer1.weight: expected torch shape [32, 32], found [16, 32]',
      'regressor.layer2.weight <- regressor_delta.layer2.weight: expected torch shape [8, 32], found [8, 16]',
    );
  });
});

describe("timm's RegNetY state dict (no prefix, no GSM, head.fc)", () => {
  it('fills the plain backbone and runs like PyTorch', () => {
    const plain = withGsm(false);
    const r = importParams(timm, plain, { file: 'timm.pth' });
    expect(r.source).toBe('timm-regnety');
    expect(r.initialised).toEqual([]);
    expect(r.unused.filter((n) => !n.endsWith('.num_batches_tracked'))).toEqual([
      'head.fc.bias',
      'head.fc.weight',
    ]);
    expect(r.unused).toHaveLength(2 + 20); // stem + 3 BNs x 5 blocks + 4 downsamples
    const frames = ourFrames(2, cfg.frames, cfg.imageSize);
    const f = backboneForward(r.params, plain.backbone, frames);
    expect(worstError(f.dataSync() as Float32Array, io['timm.features_nogsm'])).toBeLessThanOrEqual(1e-4);
    tf.dispose([frames, f]);
    disposeParams(r.params);
  });

  it('under the GSM backbone: conv1 moves to conv1.net, the GSMs stay at their zero-gate init', () => {
    const r = importParams(timm, cfg, { file: 'timm.pth' });
    expect(r.initialised).toHaveLength(5 * 6);
    expect(r.initialised.every((n) => /^backbone\.s\d\.b\d\.conv1\.gsm\./.test(n))).toBe(true);
    expect(
      Array.from(r.params['backbone.s3.b2.conv1.gsm.conv3D.weight'].dataSync()).every((v) => v === 0),
    ).toBe(true);
    const frames = ourFrames(2, cfg.frames, cfg.imageSize);
    const f = backboneForward(r.params, cfg.backbone, frames);
    expect(worstError(f.dataSync() as Float32Array, io['timm.features_gsm0'])).toBeLessThanOrEqual(1e-4);
    // the GSM's channel shuffle is not the identity, even with a zero gate
    expect(worstError(f.dataSync() as Float32Array, io['timm.features_nogsm'])).toBeGreaterThan(1e-2);
    tf.dispose([frames, f]);
    disposeParams(r.params);
  });
});

describe('mcore import (src/verbs/import.ts)', () => {
  it('writes the weights as safetensors with a JSON sidecar', async () => {
    const out = path.join(dir, 'ref.safetensors');
    const s = await importCheckpoint(REFERENCE_PTH, { out, model: cfg });
    expect(s.kind).toBe('weights');
    expect(s.unused).toHaveLength(49);
    const specs = mcoreSpecs(cfg, { backbone: true });
    const loaded = await loadWeights(out, specs);
    const direct = importParams(reference, cfg);
    for (const n of Object.keys(specs)) {
      expect(Array.from(loaded.params[n].dataSync()), n).toEqual(Array.from(direct.params[n].dataSync()));
    }
    disposeParams(loaded.params);
    disposeParams(direct.params);
    const sidecar = JSON.parse(await readFile(path.join(dir, 'ref.json'), 'utf8'));
    expect(sidecar.source).toBe('mcore-reference');
    expect(sidecar.scalars.rho_best).toBe(0.9270140426);
    expect(sidecar.transform).toEqual(referenceBundleTransform(cfg.imageSize));
    expect(formatImport(s)).toContain(
      'unused entries: 49 (EnhNet_model.enhance.* 24, *.num_batches_tracked 25)',
    );
  });

  it('writes a scoring bundle with the reference protocol whose graphs run like PyTorch', async () => {
    const out = path.join(dir, 'bundle');
    const s = await importCheckpoint(REFERENCE_PTH, {
      out,
      model: cfg,
      exemplars: 'synthdive:clips=24,seed=2',
    });
    const b = await readBundle(out);
    expect(b.manifest.frames).toBe(cfg.frames);
    expect(b.manifest.scoreScale).toBe(1);
    expect(b.manifest.model).toEqual(cfg);
    expect(b.manifest.transform).toEqual({
      resize: { width: 32, height: 57, fit: 'squeeze' },
      crop: 32,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    expect(referenceBundleTransform(112).resize).toEqual({ width: 112, height: 200, fit: 'squeeze' });
    expect(b.manifest.source?.epoch).toBe(199);
    expect(b.exemplars.records.length).toBeGreaterThan(0);
    expect(s.manifest?.created).toBe(b.manifest.created);
    const report = JSON.parse(await readFile(path.join(out, 'import.json'), 'utf8'));
    expect(report.unused).toHaveLength(49);
    expect(report.other).toEqual(['optimizer (optimizer state)']);

    const enc = await createVideoEncoder(b.graphs, { ...b.manifest, crop: b.manifest.transform.crop });
    try {
      const got = await enc.encode(torchFrames(2, cfg.frames, cfg.imageSize), 2);
      expect(worstError(got.features, io.features)).toBeLessThanOrEqual(1e-4);
      expect(got.transitions).toEqual(ints(io.pred_transitions));
    } finally {
      await enc.dispose();
    }
  });

  it('refuses a bundle from timm weights and a bundle without exemplars', async () => {
    await expect(
      importCheckpoint(TIMM_PTH, { out: path.join(dir, 'b2'), model: cfg, exemplars: 'synthdive' }),
    ).rejects.toThrow(/timm weights hold only the backbone/);
    await expect(importCheckpoint(REFERENCE_PTH, { out: path.join(dir, 'b3'), model: cfg })).rejects.toThrow(
      /needs exemplars with known scores/,
    );
    const s = await importCheckpoint(TIMM_PTH, { out: path.join(dir, 'timm.safetensors'), model: cfg });
    expect(s.initialised).toHaveLength(30);
    expect(formatImport(s)).toContain('initialised, not imported: 30');
  });
});
