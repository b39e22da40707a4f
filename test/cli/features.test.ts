import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { sampleClips } from '../../src/data/clips.ts';
import { sampleFineDiving } from '../../src/data/finediving.ts';
import {
  type FineDivingAnnotations,
  loadFineDivingAnnotations,
} from '../../src/data/finediving-annotations.ts';
import { openDataset, parseDatasetSpec, runGeometry } from '../../src/data/open.ts';
import { initParams } from '../../src/model/params.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { saveWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import { clipFeatureFile, DEFAULT_FEATURE_CACHE } from '../../src/train/feature-cache.ts';
import { mcoreIn } from '../helpers/cli.ts';
import {
  buildFixture,
  FIXTURE_KEYS,
  FIXTURE_TRAIN_KEYS,
  fineDivingAnnotationsDir,
  hasFineDivingAnnotations,
} from '../helpers/finediving-fixture.ts';

describe('finediving dataset specs', () => {
  it('parses root, annotations, keys and stages; rejects the rest with the fix', () => {
    expect(parseDatasetSpec('finediving:root=/d/frames,annotations=/d/Annotations,keys=01/1|03/12')).toEqual({
      kind: 'finediving',
      options: { root: '/d/frames', annotations: '/d/Annotations', keys: '01/1|03/12' },
    });
    expect(parseDatasetSpec('finediving:annotations=A,root=R,stages=4').options).toEqual({
      root: 'R',
      annotations: 'A',
      stages: 4,
    });
    const bad: [string, RegExp][] = [
      ['finediving:root=R', /missing annotations=DIR/],
      ['finediving', /missing root=DIR and annotations=DIR/],
      [
        'finediving:root=R,annotations=A,fps=25',
        /unknown option 'fps' \(known: root, annotations, keys, stages\)/,
      ],
      ['finediving:root=R,annotations', /'annotations' is not key=value/],
      ['finediving:root=R,annotations=A,stages=1', /stages must be an integer in \[2, 32\], got '1'/],
    ];
    for (const [spec, message] of bad) expect(() => parseDatasetSpec(spec), spec).toThrow(message);
  });

  it('gives FineDiving the reference geometry and square datasets their S x S crop', () => {
    const fd = runGeometry('finediving:root=R,annotations=A', 32);
    expect([fd.width, fd.height]).toEqual([32, 57]); // round(32 * 200 / 112) = round(57.14)
    expect(fd.transform(false)).toEqual({
      resize: { width: 32, height: 57 },
      crop: 32,
      train: false,
      flipProb: 0.5,
    });
    expect(runGeometry('finediving:root=R,annotations=A', 112).height).toBe(200);
    const sd = runGeometry('synthdive:clips=10', 32);
    expect([sd.width, sd.height, sd.transform(true)]).toEqual([
      32,
      32,
      { crop: 32, train: true, flipProb: 0.5 },
    ]);
  });
});

describe.skipIf(!hasFineDivingAnnotations)(
  `mcore features and head-only training on a FineDiving-layout folder (skipped when ${fineDivingAnnotationsDir} is absent)`,
  () => {
    let tmp: string;
    let spec: string;
    let weights: string;
    let ann: FineDivingAnnotations;

    beforeAll(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-features-'));
      ann = await loadFineDivingAnnotations(fineDivingAnnotationsDir);
      const root = path.join(tmp, 'frames');
      await buildFixture(root, ann, FIXTURE_KEYS);
      spec = `finediving:root=${root},annotations=${fineDivingAnnotationsDir},keys=${FIXTURE_KEYS.join('|')}`;
      await useBackend('wasm');
      const specs = backboneSpecs(resolveConfig().model.backbone, 'backbone');
      const params = initParams(specs, createRng(3));
      weights = path.join(tmp, 'backbone.safetensors');
      await saveWeights(weights, params, specs);
      tf.dispose(Object.values(params));
    });

    afterAll(async () => {
      await rm(tmp, { recursive: true, force: true });
    });

    it('opens the spec with reference sampling and 32 x 57 frames', async () => {
      const ds = await openDataset(spec, runGeometry(spec, 32));
      expect(ds.clips.map((c) => c.key)).toEqual(FIXTURE_KEYS);
      const clips = sampleClips(ds, 8);
      for (const c of clips) expect(c.frames).toEqual(sampleFineDiving(ann.records.get(c.key)!, 8).frames);
      // Frame 0 of 01/1 is absolute frame 7378: red 7378 % 256 = 210, green floor(7378 / 256) = 28.
      const f = await ds.loadFrame('01/1', 0);
      expect([f.width, f.height]).toEqual([32, 57]);
      expect(Math.abs(f.data[0] - 210)).toBeLessThanOrEqual(3);
      expect(Math.abs(f.data[1] - 28)).toBeLessThanOrEqual(3);
    });

    it('computes the features into ./.cache/mcore/features, then trains one head-only epoch from them', async () => {
      // Real data defaults to the paper's model; this fixture's backbone is the tiny one.
      const sets = ['variant=mcore-tiny', 'model.frames=8', 'train.batchPairs=2'].flatMap((s) => [
        '--set',
        s,
      ]);
      const f = await mcoreIn(tmp, 'features', '--dataset', spec, '--backbone', weights, ...sets);
      expect(f.stderr.split('\n')[0]).toMatch(
        /^model mcore-tiny: 8 frames of 32x32 px, stages from the dataset \(finediving data;/,
      );
      expect(f.stderr).toMatch(/features 6\/6/);
      expect(f.code).toBe(0);
      expect(f.stdout).toMatch(/features of 6 clips \(8 x 32 float32 each\): computed 6, reused 0/);
      const cacheRoot = path.join(tmp, DEFAULT_FEATURE_CACHE);
      const keys = await readdir(cacheRoot);
      expect(keys.length).toBe(1);
      const dir = path.join(cacheRoot, keys[0]);
      expect(f.stdout).toContain(`cache: ${path.join(DEFAULT_FEATURE_CACHE, keys[0])}`);
      const header = JSON.parse(await readFile(path.join(dir, 'features.json'), 'utf8'));
      expect(header).toMatchObject({
        D: 32,
        T: 8,
        dataset: spec,
        transform: { resize: { width: 32, height: 57 } },
      });
      const mtimes = async () =>
        Promise.all(FIXTURE_KEYS.map(async (k) => (await stat(path.join(dir, clipFeatureFile(k)))).mtimeMs));
      const before = await mtimes();

      const out = path.join(tmp, 'run');
      const t = await mcoreIn(
        tmp,
        'train',
        '--dataset',
        spec,
        '--out',
        out,
        '--backbone',
        weights,
        ...sets,
        ...['train.mode=head-only', 'train.epochs=1'].flatMap((s) => ['--set', s]),
      );
      expect(t.stderr).toMatch(/epoch 1\/1/);
      expect(t.code).toBe(0);
      expect(t.stdout).toMatch(/trained 1 epochs/);
      const ckpt = JSON.parse(await readFile(path.join(out, 'checkpoint.json'), 'utf8'));
      expect(ckpt.epoch).toBe(1);
      expect(ckpt.config.config.train.mode).toBe('head-only');
      expect((await stat(path.join(out, ckpt.folder, 'weights.safetensors'))).size).toBeGreaterThan(1000);
      // 3 training clips in pairs of 2: 2 steps, a finite loss.
      const log = (await readFile(path.join(out, 'log.jsonl'), 'utf8')).trim().split('\n');
      expect(log.length).toBe(1);
      expect(Number.isFinite(JSON.parse(log[0]).loss)).toBe(true);
      expect(FIXTURE_TRAIN_KEYS.length).toBe(3);
      // The run read the cache: the same key folder, no clip rewritten.
      expect(await readdir(cacheRoot)).toEqual(keys);
      expect(await mtimes()).toEqual(before);

      // Its scoring bundle records the FineDiving geometry the model trained with (squeeze to 32 x 57, crop 32).
      const bundle = path.join(tmp, 'bundle');
      const x = await mcoreIn(tmp, 'export', '--run', out, '--out', bundle);
      expect(x.code, x.stderr).toBe(0);
      const manifest = JSON.parse(await readFile(path.join(bundle, 'manifest.json'), 'utf8'));
      expect(manifest.transform.resize).toEqual({ width: 32, height: 57, fit: 'squeeze' });
      expect(manifest.transform.crop).toBe(32);
    });
  },
);
