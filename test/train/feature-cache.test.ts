import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { type RunConfig, resolveConfig } from '../../src/config.ts';
import { frameSource, type SampledClip, sampleClips } from '../../src/data/clips.ts';
import { openDataset, runGeometry } from '../../src/data/open.ts';
import type { StagedDataset } from '../../src/data/types.ts';
import { decoderId } from '../../src/data/video.ts';
import { initParams } from '../../src/model/params.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { loadWeights, saveWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import {
  clipFeatureFile,
  ensureFeatures,
  type FeatureCacheResult,
  featureCacheKey,
  featureKeyMaterial,
} from '../../src/train/feature-cache.ts';
import { extractFeatures } from '../../src/train/features.ts';

const SPEC = 'synthdive:seed=1,clips=24,size=32';
const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

let tmp: string;
let config: RunConfig;
let dataset: StagedDataset;
let clips: SampledClip[];
let weightsA: string;
let weightsB: string;
let first: FeatureCacheResult;

async function saveRandomBackbone(file: string, seed: number): Promise<void> {
  const specs = backboneSpecs(config.model.backbone, 'backbone');
  const params = initParams(specs, createRng(seed));
  await saveWeights(file, params, specs);
  tf.dispose(Object.values(params));
}

function run(cacheDir: string, extra: Partial<Parameters<typeof ensureFeatures>[0]> = {}) {
  return ensureFeatures({
    datasetSpec: SPEC,
    dataset,
    clips,
    backboneWeights: weightsA,
    config,
    cacheDir,
    ...extra,
  });
}

/** Backbone features of `keys` extracted in memory with tfjs (batches of 4), weights A. */
async function inMemory(keys: string[]): Promise<Map<string, Float32Array>> {
  const { params } = await loadWeights(weightsA, backboneSpecs(config.model.backbone, 'backbone'));
  const frames = frameSource(dataset, clips, runGeometry(SPEC, 32).transform);
  const mem = await extractFeatures(params, config.model, keys, (k) => frames.loadTest(k), { batch: 4 });
  tf.dispose(Object.values(params));
  return mem;
}

function compare(a: Map<string, Float32Array>, b: Map<string, Float32Array>) {
  let maxDiff = 0;
  let maxAbs = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
      maxAbs = Math.max(maxAbs, Math.abs(x[i]));
    }
  }
  return { maxDiff, maxAbs };
}

const clipFiles = async (dir: string) => (await readdir(path.join(dir, 'clips'))).sort();

beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-fcache-'));
  config = resolveConfig({}, ['model.frames=8', 'eval.batchVideos=4']);
  dataset = await openDataset(SPEC, runGeometry(SPEC, 32));
  clips = sampleClips(dataset, 8);
  weightsA = path.join(tmp, 'a.safetensors');
  weightsB = path.join(tmp, 'b.safetensors');
  await saveRandomBackbone(weightsA, 1);
  await saveRandomBackbone(weightsB, 2);
  first = await run(path.join(tmp, 'cache'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('featureCacheKey', () => {
  it('hashes the canonical JSON (sorted keys) of the key material', () => {
    const m = featureKeyMaterial({
      datasetSpec: 'synthdive',
      backboneSha256: 'ab',
      config: resolveConfig({}, ['model.frames=8']),
    });
    const canonical =
      '{"backbone":{"depths":[1,1,1,1],"groupWidth":8,"gsm":true,"seRatio":0.25,"stemWidth":8,"widths":[8,16,24,32]},' +
      '"backboneSha256":"ab","dataset":"synthdive","engine":"onnxruntime","format":"mcore-features/1","frames":8,"imageSize":32,' +
      `"transform":{"crop":32,"flipProb":0.5,"train":false},"videoDecoder":"${decoderId()}","videoScaler":"area"}`;
    expect(featureCacheKey(m)).toBe(sha256(canonical).slice(0, 32));
    // Key order does not matter; every field does.
    const reordered = Object.fromEntries(Object.entries(m).reverse()) as typeof m;
    expect(featureCacheKey(reordered)).toBe(featureCacheKey(m));
    const keys = new Set([
      featureCacheKey(m),
      featureCacheKey({ ...m, frames: 16 }),
      featureCacheKey({ ...m, imageSize: 64 }),
      featureCacheKey({ ...m, dataset: 'synthdive:clips=25' }),
      featureCacheKey({ ...m, backboneSha256: 'ac' }),
      featureCacheKey({ ...m, transform: { ...m.transform, resize: { width: 32, height: 57 } } }),
      featureCacheKey({ ...m, videoScaler: 'bicubic' }),
      featureCacheKey({ ...m, videoDecoder: 'ffmpeg 6.1.1' }),
      featureCacheKey({ ...m, engine: 'tfjs' }),
    ]);
    expect(keys.size).toBe(9);
  });

  it('names clip files readably and uniquely', () => {
    expect(clipFeatureFile('01/1')).toBe(path.join('clips', `01_1-${sha256('01/1').slice(0, 12)}.f32`));
    expect(clipFeatureFile('01/1')).not.toBe(clipFeatureFile('01_1'));
  });
});

describe('ensureFeatures on a tiny SynthDive (24 clips, T 8, 32 px, mcore-tiny)', () => {
  it('computes every clip once, as the in-memory extraction does, one file per clip', async () => {
    expect(first.computed).toBe(24);
    expect(first.reused).toBe(0);
    expect(first.features.size).toBe(24);
    const weightsBytes = await readFile(weightsA);
    const material = featureKeyMaterial({ datasetSpec: SPEC, backboneSha256: sha256(weightsBytes), config });
    expect(first.key).toBe(featureCacheKey(material));
    expect(first.dir).toBe(path.join(tmp, 'cache', first.key));
    const header = JSON.parse(await readFile(path.join(first.dir, 'features.json'), 'utf8'));
    expect(header).toMatchObject({ key: first.key, D: 32, T: 8, dtype: 'float32', frames: 8, dataset: SPEC });
    const files = await clipFiles(first.dir);
    expect(files.length).toBe(24);
    for (const c of clips) {
      const bytes = await readFile(path.join(first.dir, clipFeatureFile(c.key)));
      expect(bytes.length).toBe(8 * 32 * 4);
      const f = first.features.get(c.key)!;
      expect(Buffer.from(f.buffer, f.byteOffset, f.byteLength).equals(bytes)).toBe(true);
    }
    // The numbers of extracting in memory (tfjs) from the run's frame source, to float rounding.
    const mem = await inMemory(clips.slice(0, 6).map((c) => c.key));
    const { maxDiff, maxAbs } = compare(mem, first.features);
    expect(maxAbs).toBeGreaterThan(0.01);
    expect(maxDiff).toBeLessThan(1e-4 * maxAbs);
  });

  it("engine 'tfjs': the in-memory extraction bit for bit, under a key of its own", async () => {
    const r = await run(path.join(tmp, 'cache'), { engine: 'tfjs' });
    expect(r.key).not.toBe(first.key);
    expect(r.header.engine).toBe('tfjs');
    expect([r.computed, r.reused]).toEqual([24, 0]);
    const mem = await inMemory(clips.slice(0, 6).map((c) => c.key));
    const { maxDiff, maxAbs } = compare(mem, r.features);
    expect(maxAbs).toBeGreaterThan(0.01);
    expect(maxDiff).toBe(0);
    await rm(r.dir, { recursive: true });
  });

  it('reuses everything on a second call: nothing computed, identical bytes, files untouched', async () => {
    const before = await Promise.all(
      clips.map(async (c) => (await stat(path.join(first.dir, clipFeatureFile(c.key)))).mtimeMs),
    );
    const progress: [number, number][] = [];
    const tensors = tf.memory().numTensors;
    const again = await run(path.join(tmp, 'cache'), { onProgress: (d, t) => progress.push([d, t]) });
    expect(tf.memory().numTensors).toBe(tensors);
    expect([again.computed, again.reused, again.key]).toEqual([0, 24, first.key]);
    expect(progress).toEqual([[24, 24]]);
    for (const c of clips) {
      const a = again.features.get(c.key)!;
      const b = first.features.get(c.key)!;
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
    const after = await Promise.all(
      clips.map(async (c) => (await stat(path.join(first.dir, clipFeatureFile(c.key)))).mtimeMs),
    );
    expect(after).toEqual(before);
  });

  it('keys other weights elsewhere (different features)', async () => {
    const other = await run(path.join(tmp, 'cache'), { backboneWeights: weightsB });
    expect(other.key).not.toBe(first.key);
    expect(other.computed).toBe(24);
    const k = clips[0].key;
    expect(Array.from(other.features.get(k)!)).not.toEqual(Array.from(first.features.get(k)!));
    expect((await readdir(path.join(tmp, 'cache'))).sort()).toEqual([first.key, other.key].sort());
  });

  it('recomputes only a deleted clip (to the same bytes)', async () => {
    const victim = clips[5].key;
    await unlink(path.join(first.dir, clipFeatureFile(victim)));
    const r = await run(path.join(tmp, 'cache'));
    expect([r.computed, r.reused]).toEqual([1, 23]);
    const a = r.features.get(victim)!;
    const b = first.features.get(victim)!;
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect((await clipFiles(first.dir)).length).toBe(24);
  });

  it('resumes a killed run: throw in onProgress, then an AbortSignal, then completion', async () => {
    const cache = path.join(tmp, 'killed');
    // Killed after 8 clips (one clip per ONNX Runtime run): those 8 stay on disk.
    await expect(
      run(cache, {
        onProgress: (done) => {
          if (done >= 8) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    const dir = path.join(cache, first.key);
    expect((await clipFiles(dir)).length).toBe(8);
    // A temporary file left by a crash is removed; a truncated clip file is recomputed.
    await writeFile(path.join(dir, 'clips', 'x.f32.tmp-99999'), 'partial');
    await writeFile(path.join(dir, clipFeatureFile(clips[0].key)), Buffer.alloc(100));
    const controller = new AbortController();
    const seen: number[] = [];
    await expect(
      run(cache, {
        signal: controller.signal,
        onProgress: (done) => {
          seen.push(done);
          if (done >= 15) controller.abort(new Error('stopped'));
        },
      }),
    ).rejects.toThrow('stopped');
    // 7 intact on disk; the missing clips one by one (clip 0 first, rewritten in place) up to 15, then the
    // signal stops the next batch.
    expect(seen).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect((await clipFiles(dir)).length).toBe(15);
    const done = await run(cache);
    expect([done.computed, done.reused]).toEqual([9, 15]);
    for (const c of clips) {
      const a = done.features.get(c.key)!;
      const b = first.features.get(c.key)!;
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
    expect((await clipFiles(dir)).length).toBe(24);
  });
});
