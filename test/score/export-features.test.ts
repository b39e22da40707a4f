/**
 * Exporting a head-only run builds the exemplar bank from the run's feature cache (segmenter only), not
 * by decoding every training clip and running the backbone again: on FineDiving that was 2,251 clips
 * through RegNetY-200MF, the longest step of the rehearsal (bench/scale). The bank must be the one the
 * frames give.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { loadSampledFrames, sampleClips } from '../../src/data/clips.ts';
import { openDataset, runGeometry } from '../../src/data/open.ts';
import { initParams } from '../../src/model/params.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { loadWeights, saveWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import { readBundle, squeezeCropTransform } from '../../src/score/bundle.ts';
import { exportBundle } from '../../src/score/export.ts';
import { exportRunBundle } from '../../src/verbs/export.ts';
import { methodOf, readRunRecord, trainRun } from '../../src/verbs/run.ts';

const SPEC = 'synthdive:seed=6,clips=24,size=32';
let tmp: string;
const events: string[] = [];

beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-export-features-'));
  const config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: 32 },
    train: { epochs: 1, seed: 0, mode: 'head-only' },
  });
  const weights = path.join(tmp, 'backbone.safetensors');
  const specs = backboneSpecs(config.model.backbone, 'backbone');
  const params = initParams(specs, createRng(4));
  await saveWeights(weights, params, specs);
  tf.dispose(Object.values(params));
  await trainRun(
    { dataset: SPEC, config, backboneWeights: weights },
    { out: path.join(tmp, 'run'), resume: false, featureCache: path.join(tmp, 'cache') },
  );
  await exportRunBundle(path.join(tmp, 'run'), path.join(tmp, 'bundle'), {
    onProgress: (e) => events.push(e.kind),
  });
}, 120_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('exportRunBundle of a head-only run', () => {
  it('takes the exemplar features from the run feature cache: no clip is computed again', async () => {
    const [key] = await readdir(path.join(tmp, 'cache'));
    const files = await readdir(path.join(tmp, 'cache', key, 'clips'));
    expect(files.length).toBe(24);
    // the cache read at once (one 'features' event: all reused), then the bank
    expect(events.filter((e) => e === 'features')).toHaveLength(1);
    expect(events.at(-1)).toBe('exemplars');
    const mtimes = await Promise.all(
      files.map(async (f) => (await stat(path.join(tmp, 'cache', key, 'clips', f))).mtimeMs),
    );
    await exportRunBundle(path.join(tmp, 'run'), path.join(tmp, 'bundle'));
    const after = await Promise.all(
      files.map(async (f) => (await stat(path.join(tmp, 'cache', key, 'clips', f))).mtimeMs),
    );
    expect(after).toEqual(mtimes);
  });

  it('gives the bank that encoding the frames with the bundle backbone gives', async () => {
    const { info, record } = await readRunRecord(path.join(tmp, 'run'));
    const cfg = record.config;
    const method = methodOf(record);
    const { params } = await loadWeights(
      path.join(tmp, 'run', info.folder, 'weights.safetensors'),
      method.specs,
    );
    const backbone = await loadWeights(
      record.backboneWeights!,
      backboneSpecs(cfg.model.backbone, 'backbone'),
    );
    Object.assign(params, backbone.params);
    const geometry = runGeometry(SPEC, 32);
    const dataset = await openDataset(SPEC, { width: geometry.width, height: geometry.height });
    const clips = sampleClips(dataset, 16).filter((c) => c.info.split === 'train');
    const byKey = new Map(clips.map((c) => [c.key, c]));
    await exportBundle(path.join(tmp, 'from-frames'), params, {
      model: cfg.model,
      scoreScale: cfg.train.scoreScale,
      stageNames: dataset.stageNames,
      transform: squeezeCropTransform(geometry.width, geometry.height, 32),
      exemplars: clips.map((c) => ({ key: c.key, actionType: c.actionType, score: c.score })),
      loadFrames: (key) => loadSampledFrames(dataset, byKey.get(key)!),
    });
    tf.dispose(Object.values(params));
    const a = await readBundle(path.join(tmp, 'bundle'));
    const b = await readBundle(path.join(tmp, 'from-frames'));
    expect(a.exemplars.records.length).toBe(clips.length);
    expect(a.exemplars.records.map((r) => [r.key, r.score, r.transitions])).toEqual(
      b.exemplars.records.map((r) => [r.key, r.score, r.transitions]),
    );
    const x = a.exemplars.tokens;
    const y = b.exemplars.tokens;
    expect(x.length).toBe(y.length);
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < x.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
      maxAbs = Math.max(maxAbs, Math.abs(y[i]));
    }
    expect(maxAbs).toBeGreaterThan(0.01);
    expect(maxDiff).toBeLessThan(1e-5 * maxAbs);
  });
});
