/**
 * exportRunPth on a head-only run (built here with saveCheckpoint, no training): the head comes from
 * the run's checkpoint, the backbone from the weights file the run recorded; both land bit for bit
 * under the reference's names, and the history's best metrics become rho_best, L2_min, RL2_min.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { flattenStateDicts, readTorchCheckpoint } from '../../src/io/torch.ts';
import { sourceName } from '../../src/model/import-map.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { saveWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState } from '../../src/train/adam.ts';
import { saveCheckpoint } from '../../src/train/checkpoint.ts';
import { exportRunPth } from '../../src/verbs/export-pth.ts';
import { methodOf, type RunRecord } from '../../src/verbs/run.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

let tmp: string;

beforeAll(async () => {
  await useBackend('cpu');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-export-pth-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function headOnlyRun(dir: string, backboneWeights?: string): Promise<RunRecord> {
  const raw = { variant: 'mcore-tiny', model: { frames: 16, imageSize: 32 }, train: { mode: 'head-only' } };
  const record: RunRecord = {
    dataset: 'synthdive:seed=1,clips=12,size=32',
    config: resolveConfig(raw),
    backboneWeights,
  };
  const method = methodOf(record);
  const params = initParams(method.specs, createRng(5));
  const history = [
    { epoch: 1, loss: 1, terms: {}, seconds: 1, metrics: { srcc: 0.61, mse: 30, rl2: 0.02 } },
    { epoch: 2, loss: 1, terms: {}, seconds: 1, metrics: { srcc: 0.58, mse: 25, rl2: 0.03 } },
  ];
  // The checkpoint records the raw config, as trainRun does (readRunRecord resolves it again).
  await saveCheckpoint(
    dir,
    params,
    method.specs,
    { epoch: 2, adam: createAdamState(), history },
    { ...record, config: raw },
  );
  disposeParams(params);
  return record;
}

describe('exportRunPth', () => {
  it('writes a head-only run with its recorded backbone, bit for bit', async () => {
    const record0 = resolveConfig({ variant: 'mcore-tiny', model: { frames: 16, imageSize: 32 } });
    const bbSpecs = backboneSpecs(record0.model.backbone, 'backbone');
    const bbFile = path.join(tmp, 'backbone.safetensors');
    const bb = initParams(bbSpecs, createRng(9));
    await saveWeights(bbFile, bb, bbSpecs);
    disposeParams(bb);
    const run = path.join(tmp, 'run');
    await headOnlyRun(run, bbFile);
    const pth = path.join(tmp, 'head.pth');
    const keys = await exportRunPth(run, pth);
    expect(keys.base_model.some((k) => k.includes('.conv1.gsm.conv3D.weight'))).toBe(true);

    const flat = flattenStateDicts(await readTorchCheckpoint(pth), pth);
    expect(flat.scalars.epoch).toBe(2);
    expect(flat.scalars.epoch_best_aqa).toBe(1);
    expect(flat.scalars.rho_best).toBe(0.61);
    expect(flat.scalars.L2_min).toBe(25);
    expect(flat.scalars.RL2_min).toBe(0.02);
    const head = await readSafetensors(path.join(run, 'ckpt-0002', 'weights.safetensors'));
    const back = await readSafetensors(bbFile);
    const all = { ...head.tensors, ...back.tensors };
    expect(Object.keys(back.tensors).length).toBeGreaterThan(10);
    for (const [ours, t] of Object.entries(all)) {
      const got = flat.tensors[sourceName(ours, 'mcore-reference') as string];
      expect(got, ours).toBeDefined();
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));
    }
  });

  it('refuses a head-only run that recorded no backbone weights', async () => {
    const run = path.join(tmp, 'run-no-backbone');
    await headOnlyRun(run);
    await expectMcoreRejection(
      exportRunPth(run, path.join(tmp, 'x.pth')),
      'E_CONFIG',
      'a head-only run without recorded backbone weights cannot be exported',
    );
  });
});
