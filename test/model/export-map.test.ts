/**
 * Writing the reference layout against the reference itself: the weights of
 * test/fixtures/reference/mcore-reference-tiny.pth (written by torch 1.13 under the reference's module
 * names) go through import (renamed to ours) and export (renamed back, src/model/export-map.ts) into a
 * new file; every state dict must hold exactly the original's keys (EnhNet and num_batches_tracked
 * included), the same shapes, and bit-identical weights.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PyDict } from '../../src/io/pickle.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { parseTorchCheckpoint, readTorchCheckpoint, type TorchTensor } from '../../src/io/torch.ts';
import { encodeTorchCheckpoint } from '../../src/io/torch-write.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import {
  REFERENCE_STATE_DICTS,
  referenceCheckpoint,
  type TorchLayoutTensor,
} from '../../src/model/export-map.ts';
import { importSpecs, sourceName } from '../../src/model/import-map.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const REF = path.join(import.meta.dirname, '..', 'fixtures', 'reference');

let cfg: ModelConfig;
let original: PyDict;
let params: Record<string, TorchLayoutTensor>;

const entry = (d: PyDict, e: string) => d.get(e) as PyDict;
const keysOf = (d: PyDict) => [...d.keys()] as string[];

beforeAll(async () => {
  cfg = JSON.parse((await readSafetensors(path.join(REF, 'reference-io.safetensors'))).metadata.config);
  original = (await readTorchCheckpoint(path.join(REF, 'mcore-reference-tiny.pth'))) as PyDict;
  params = {};
  for (const ours of Object.keys(importSpecs(cfg, 'mcore-reference'))) {
    const theirs = sourceName(ours, 'mcore-reference') as string;
    const dot = theirs.indexOf('.');
    const t = entry(original, theirs.slice(0, dot)).get(`module.${theirs.slice(dot + 1)}`) as TorchTensor;
    params[ours] = { shape: t.shape, data: t.data as Float32Array };
  }
});

describe('referenceCheckpoint', () => {
  it("holds exactly the reference's keys, shapes and (bit for bit) weights", () => {
    const widths = cfg.backbone.widths;
    const ckpt = referenceCheckpoint(params, {
      featureDim: widths[widths.length - 1],
      epoch: 199,
      history: [
        { epoch: 1, metrics: { srcc: 0.5, mse: 40, rl2: 0.01 } },
        { epoch: 141, metrics: { srcc: 0.9270140426, mse: 33.680214, rl2: 0.0031234 } },
        { epoch: 142, metrics: { srcc: 0.7, mse: 50, rl2: 0.02 } },
      ],
    });
    const back = parseTorchCheckpoint(encodeTorchCheckpoint(ckpt.writer, ckpt.root), 'written') as PyDict;
    expect(keysOf(back)).toEqual(keysOf(original));
    for (const e of REFERENCE_STATE_DICTS) {
      const a = entry(original, e);
      const b = entry(back, e);
      expect(keysOf(b).sort(), e).toEqual(keysOf(a).sort());
      expect(ckpt.keys[e]).toEqual(keysOf(b));
      for (const k of keysOf(a)) {
        const v = a.get(k);
        const w = b.get(k) as TorchTensor;
        const t = v as TorchTensor;
        expect(w.shape, k).toEqual(t.shape);
        expect(w.dtype, k).toBe(t.dtype);
        if (e === 'EnhNet_model' || k.endsWith('num_batches_tracked')) continue;
        expect(
          Buffer.from((w.data as Float32Array).buffer).equals(
            Buffer.from((t.data as Float32Array).slice().buffer),
          ),
          k,
        ).toBe(true);
      }
    }
    // The numbers the reference keeps, as numpy float64 like its own.
    for (const k of ['rho_best', 'L2_min', 'RL2_min', 'epoch', 'epoch_best_aqa']) {
      expect(back.get(k), k).toEqual(original.get(k));
    }
    const groups = (back.get('optimizer') as PyDict).get('param_groups') as PyDict[];
    const theirs = (original.get('optimizer') as PyDict).get('param_groups') as PyDict[];
    expect(groups.map((g) => g.get('params'))).toEqual(theirs.map((g) => g.get('params')));
    expect(groups.map((g) => g.get('lr'))).toEqual(theirs.map((g) => g.get('lr')));
  });

  it('starts from the reference values without history, and refuses an incomplete model', () => {
    const ckpt = referenceCheckpoint(params, { featureDim: 32, epoch: 0 });
    const back = parseTorchCheckpoint(encodeTorchCheckpoint(ckpt.writer, ckpt.root), 'written') as PyDict;
    expect([
      back.get('rho_best'),
      back.get('L2_min'),
      back.get('RL2_min'),
      back.get('epoch_best_aqa'),
    ]).toEqual([0, 1000, 1000, 0]);
    const head = Object.fromEntries(Object.entries(params).filter(([k]) => !k.startsWith('backbone.')));
    expectMcoreError(
      () => referenceCheckpoint(head, { featureDim: 32, epoch: 0 }),
      'E_WEIGHTS',
      'no weights for base_model (a head-only run needs its backbone weights)',
    );
    expectMcoreError(
      () =>
        referenceCheckpoint(
          { ...params, 'other.w': params['regressor.layer1.bias'] },
          { featureDim: 32, epoch: 0 },
        ),
      'E_WEIGHTS',
      'no reference name for other.w',
    );
  });
});
