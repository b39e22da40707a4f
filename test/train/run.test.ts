import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { saveWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import { absoluteRunRecord, initRunParams, methodOf, type RunRecord } from '../../src/verbs/run.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

beforeAll(async () => {
  await useBackend('cpu');
});

const config = resolveConfig({ model: { frames: 8, imageSize: 32 }, train: { seed: 3 } });

describe('initRunParams: --backbone in end-to-end training', () => {
  it('starts the backbone from W (values equal to W) and everything else from the seed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-run-'));
    const specs = backboneSpecs(config.model.backbone, 'backbone');
    const w = initParams(specs, createRng(99));
    const file = path.join(dir, 'w.safetensors');
    await saveWeights(file, w, specs);
    const record: RunRecord = { dataset: 'synthdive:clips=8', config, backboneWeights: file };
    const method = methodOf(record);
    const params = await initRunParams(record, method);
    const fresh = await initRunParams({ dataset: record.dataset, config }, method);
    const backboneNames = Object.keys(specs);
    expect(backboneNames.length).toBeGreaterThan(10);
    for (const name of backboneNames) {
      expect(Array.from(params[name].dataSync()), name).toEqual(Array.from(w[name].dataSync()));
    }
    // W differs from the seed's initialisation, so the test would fail if W were ignored.
    const conv = backboneNames.find((n) => n.endsWith('conv.weight'))!;
    expect(Array.from(fresh[conv].dataSync())).not.toEqual(Array.from(w[conv].dataSync()));
    for (const name of Object.keys(method.specs).filter((n) => !n.startsWith('backbone.'))) {
      expect(Array.from(params[name].dataSync()), name).toEqual(Array.from(fresh[name].dataSync()));
    }
    disposeParams(params);
    disposeParams(fresh);
    disposeParams(w);
  });

  it('refuses weights of another backbone with E_WEIGHTS naming the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-run-'));
    const other = resolveConfig({ variant: 'mcore-regnety002' }).model.backbone;
    const specs = backboneSpecs({ ...other, depths: [1, 1, 1, 1] }, 'backbone');
    const w = initParams(specs, createRng(1));
    const file = path.join(dir, 'wide.safetensors');
    await saveWeights(file, w, specs);
    disposeParams(w);
    const record: RunRecord = { dataset: 'synthdive:clips=8', config, backboneWeights: file };
    await expectMcoreRejection(initRunParams(record, methodOf(record)), 'E_WEIGHTS', 'wide.safetensors');
  });
});

describe('absoluteRunRecord', () => {
  it('records the manifest, FineDiving folders, weights and head-only feature cache as absolute paths', () => {
    const cwd = process.cwd();
    const headOnly = resolveConfig({ train: { mode: 'head-only' } });
    const r = absoluteRunRecord(
      { dataset: 'data/v.csv', config: headOnly, backboneWeights: 'w/b.safetensors' },
      'cache/f',
    );
    expect(r.dataset).toBe(path.join(cwd, 'data/v.csv'));
    expect(r.backboneWeights).toBe(path.join(cwd, 'w/b.safetensors'));
    expect(r.featureCache).toBe(path.join(cwd, 'cache/f'));
    const fd = absoluteRunRecord({ dataset: 'finediving:root=F,annotations=A,keys=01/1', config }, undefined);
    expect(fd.dataset).toBe(
      `finediving:root=${path.join(cwd, 'F')},annotations=${path.join(cwd, 'A')},keys=01/1`,
    );
    expect(fd.featureCache).toBeUndefined(); // end to end: no features
    expect(absoluteRunRecord({ dataset: 'synthdive:seed=1', config }).dataset).toBe('synthdive:seed=1');
  });
});
