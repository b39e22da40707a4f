/**
 * End to end: train a tiny run, export it as a bundle, score a SynthDive clip written as a frame folder
 * and as an MP4 in ONNX Runtime, and check against the tfjs pipeline (mcoreMethod encode + predict) on
 * the same frames with the same exemplars.
 */
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { sampleClips } from '../../src/data/clips.ts';
import { exportFrameFolders, exportMp4 } from '../../src/data/export.ts';
import { openSynthDive } from '../../src/data/open.ts';
import { transformClip } from '../../src/data/transforms.ts';
import type { Frame } from '../../src/data/types.ts';
import { disposeParams, type Params } from '../../src/model/params.ts';
import { loadWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import {
  BUNDLE_FILES,
  createScoringCore,
  parseExemplarBank,
  parseManifest,
  sampleIndices,
  wrapSession,
} from '../../src/score/core.ts';
import { readQueryInput } from '../../src/score/input.ts';
import { renderReport } from '../../src/score/report.ts';
import { signed } from '../../src/score/result-text.ts';
import { type LoadedBundle, loadBundle, type ScoreResult, score } from '../../src/score/scorer.ts';
import { readCheckpointInfo } from '../../src/train/checkpoint.ts';
import type { Method } from '../../src/train/method.ts';
import { exportRunBundle } from '../../src/verbs/export.ts';
import { methodOf, type RunRecord, trainRun } from '../../src/verbs/run.ts';
import { attrOf, checkDeltaBars, markItems, rectOf } from '../helpers/vega-svg.ts';

const DATASET = 'synthdive:seed=1,clips=36,size=32';
const QUERY = 'synthdive-0001';

let tmp: string;
let bundleDir: string;
let bundle: LoadedBundle;
let method: Method;
let params: Params;
let folder: string;
let mp4: string;
let dataset: ReturnType<typeof openSynthDive>;
let T: number;
let S: number;

beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(tmpdir(), 'mcore-score-'));
  const config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: 32 },
    train: { epochs: 1, seed: 0, scoreScale: 10 },
  });
  const runDir = path.join(tmp, 'run');
  await trainRun({ dataset: DATASET, config }, { out: runDir, resume: false });
  bundleDir = path.join(tmp, 'bundle');
  await exportRunBundle(runDir, bundleDir);
  bundle = await loadBundle(bundleDir);
  const info = await readCheckpointInfo<RunRecord>(runDir);
  method = methodOf(info.config);
  ({ params } = await loadWeights(path.join(runDir, info.folder, 'weights.safetensors'), method.specs));
  dataset = openSynthDive({ seed: 1, clips: 36, size: 32 });
  T = config.model.frames;
  S = config.model.imageSize;
  await exportFrameFolders(dataset, path.join(tmp, 'frames'), { keys: [QUERY] });
  await exportMp4(dataset, path.join(tmp, 'mp4'), { keys: [QUERY] });
  folder = path.join(tmp, 'frames', 'synthdive', '1');
  mp4 = path.join(tmp, 'mp4', 'synthdive', '1.mp4');
});

afterAll(async () => {
  await bundle?.dispose();
  if (params) disposeParams(params);
  await rm(tmp, { recursive: true, force: true });
});

/** [V, T, S, S, 3] test-mode input of clips' frames. */
function clipTensor(clips: Frame[][]): tf.Tensor5D {
  const per = T * S * S * 3;
  const data = new Float32Array(clips.length * per);
  clips.forEach((frames, i) => {
    data.set(transformClip(frames, { crop: S, train: false, flipProb: 0 }, createRng(0)), i * per);
  });
  return tf.tensor5d(data, [clips.length, T, S, S, 3]);
}

/** The tfjs pipeline's prediction for `query` frames against the exemplars the ORT result used. */
async function tfjsPrediction(
  query: Frame[],
  r: ScoreResult,
): Promise<{ score: number; transitions: number[] }> {
  const byKey = new Map(sampleClips(dataset, T).map((c) => [c.key, c]));
  const exemplarFrames = await Promise.all(
    r.exemplars.map((e) => Promise.all(byKey.get(e.key)!.frames.map((i) => dataset.loadFrame(e.key, i)))),
  );
  const before = tf.memory().numTensors;
  const input = clipTensor([query, ...exemplarFrames]);
  const [q, ...ex] = method.encode(params, input);
  input.dispose();
  const pred = method.predict(
    params,
    q,
    ex.map((encoding, i) => ({ encoding, score: r.exemplars[i].score })),
  );
  expect(tf.memory().numTensors).toBe(before);
  return { score: pred, transitions: q.transitions! };
}

function checkShape(r: ScoreResult, kind: 'video' | 'frames'): void {
  expect(r.input.kind).toBe(kind);
  expect(r.input.sampled).toHaveLength(T);
  expect(r.stages.map((s) => s.name)).toEqual(['take-off', 'flight', 'entry']);
  // Stages tile the sampled frames and the source frames without gaps.
  expect(r.stages[0].start).toBe(0);
  expect(r.stages[2].end).toBe(T);
  expect(r.stages[0].sourceStart).toBe(0);
  expect(r.stages[2].sourceEnd).toBe(r.input.sourceFrames);
  for (let s = 1; s < 3; s++) {
    expect(r.stages[s].start).toBe(r.stages[s - 1].end);
    expect(r.stages[s].start).toBe(r.transitions[s - 1]);
    expect(r.stages[s].sourceStart).toBe(r.stages[s - 1].sourceEnd);
    expect(r.stages[s].sourceStart).toBe(r.input.sampled[r.stages[s].start]);
  }
  if (kind === 'video') {
    expect(r.input.fps).toBe(25);
    expect(r.stages[1].startSec).toBeCloseTo(r.stages[1].sourceStart / 25, 9);
  } else {
    expect(r.stages[1].startSec).toBeUndefined();
  }
  expect(r.perStage).toHaveLength(3);
  for (const e of r.exemplars)
    expect(Object.keys(e).sort()).toEqual(['actionType', 'delta', 'key', 'predicted', 'score']);
  expect(Object.keys(r.timings).sort()).toEqual(
    ['backboneMs', 'decodeMs', 'poolMs', 'scorerMs', 'segmenterMs', 'totalMs'].sort(),
  );
  // score = mean(y_e + delta_e); every exemplar's delta = mean of its per-stage deltas.
  const mean = r.exemplars.reduce((a, e) => a + e.score + e.delta, 0) / r.exemplars.length;
  expect(r.score).toBeCloseTo(mean, 9);
  r.exemplars.forEach((e, i) => {
    const avg = r.perStage.reduce((a, s) => a + s.deltas[i].delta, 0) / r.perStage.length;
    expect(r.perStage.map((s) => s.deltas[i].exemplar)).toEqual([e.key, e.key, e.key]);
    expect(Math.abs(avg - e.delta)).toBeLessThan(1e-5);
  });
}

describe('score in ONNX Runtime', () => {
  it('the exemplar bank holds every training clip, encoded as the tfjs method encodes it', async () => {
    const train = sampleClips(dataset, T).filter((c) => c.info.split === 'train');
    expect(bundle.exemplars.records.map((r) => r.key)).toEqual(train.map((c) => c.key));
    const first = train.slice(0, 3);
    const frames = await Promise.all(
      first.map((c) => Promise.all(c.frames.map((i) => dataset.loadFrame(c.key, i)))),
    );
    const input = clipTensor(frames);
    const enc = method.encode(params, input);
    input.dispose();
    const per = enc[0].data.length;
    first.forEach((_clip, i) => {
      expect(bundle.exemplars.records[i].transitions).toEqual(enc[i].transitions);
      const ours = bundle.exemplars.tokens.subarray(i * per, (i + 1) * per);
      let worst = 0;
      for (let j = 0; j < per; j++) worst = Math.max(worst, Math.abs(ours[j] - enc[i].data[j]));
      expect(worst).toBeLessThan(1e-4);
    });
  });

  it('a frame folder scores as the tfjs pipeline does (within 1e-3), with per-stage deltas that average to delta', async () => {
    const r = await bundle.score(folder, { exemplars: 10, seed: 3 });
    checkShape(r, 'frames');
    expect(r.exemplars).toHaveLength(10);
    expect(r.protocol).toEqual({ pool: bundle.exemplars.records.length, requested: 10, seed: 3 });
    expect(r.warnings).toEqual([]);
    const q = await readQueryInput(folder, { count: T, width: S, height: S, fit: 'squeeze' });
    const ref = await tfjsPrediction(q.frames, r);
    expect(r.transitions).toEqual(ref.transitions);
    expect(Math.abs(r.score - ref.score)).toBeLessThan(1e-3);
    // The same call again gives the same exemplars and score (seeded choice).
    const again = await bundle.score(folder, { exemplars: 10, seed: 3 });
    expect(again.exemplars.map((e) => e.key)).toEqual(r.exemplars.map((e) => e.key));
    expect(again.score).toBe(r.score);
  });

  it('the runtime-neutral core over sessions opened from bytes scores exactly as loadBundle', async () => {
    const file = (name: string) => readFile(path.join(bundleDir, name));
    const manifest = parseManifest((await file(BUNDLE_FILES.manifest)).toString('utf8'), 'manifest.json');
    const exemplars = parseExemplarBank(
      (await file(BUNDLE_FILES.exemplarIndex)).toString('utf8'),
      await file(BUNDLE_FILES.exemplarTokens),
      manifest,
      { index: 'exemplars.json', tokens: 'exemplars.safetensors' },
    );
    const open = async (name: string) =>
      wrapSession(await ort.InferenceSession.create(await file(name)), ort.Tensor);
    const core = createScoringCore({
      manifest,
      exemplars,
      sessions: {
        backbone: await open(BUNDLE_FILES.backbone),
        segmenter: await open(BUNDLE_FILES.segmenter),
        scorer: await open(BUNDLE_FILES.scorer),
      },
    });
    try {
      const q = await readQueryInput(folder, { count: T, width: S, height: S, fit: 'squeeze' });
      // The browser samples the same source frames.
      expect(q.indices).toEqual(sampleIndices(0, q.sourceFrames - 1, T));
      const viaCore = await core.scoreQuery(q, { exemplars: 7, seed: 5 });
      const viaNode = await bundle.score(folder, { exemplars: 7, seed: 5 });
      expect(viaCore.transitions).toEqual(viaNode.transitions);
      expect(viaCore.exemplars).toEqual(viaNode.exemplars);
      expect(Math.abs(viaCore.score - viaNode.score)).toBeLessThan(1e-6);
      expect(viaCore.perStage).toEqual(viaNode.perStage);
      expect(() => core.checkOptions({ actionType: 'no-such-type' })).toThrow(/has no exemplars/);
    } finally {
      await core.dispose();
    }
  });

  it('an MP4 of the clip scores as the tfjs pipeline does, with exemplars of its action type', async () => {
    const type = dataset.clips.find((c) => c.key === QUERY)!.actionType;
    const r = await score(mp4, { bundleDir, actionType: type, exemplars: 10, keepFrames: true });
    checkShape(r, 'video');
    for (const e of r.exemplars) expect(e.actionType).toBe(type);
    expect(r.warnings).toEqual([
      `only ${r.exemplars.length} exemplar(s) of action type '${type}' in the bundle (asked for 10)`,
    ]);
    expect(r.frames).toHaveLength(T);
    const ref = await tfjsPrediction(r.frames!, r);
    expect(r.transitions).toEqual(ref.transitions);
    expect(Math.abs(r.score - ref.score)).toBeLessThan(1e-3);

    const html = await renderReport(r);
    expect(html).toMatch(/^<!DOCTYPE html>/);
    // The per-stage chart: one bar per (stage, exemplar), heights proportional to the deltas; the means.
    expect(checkDeltaBars(html, r.perStage)).toBeGreaterThan(0);
    expect(markItems(html, 'deltaBars')).toHaveLength(3 * r.exemplars.length);
    expect(markItems(html, 'deltaMeans').map((el) => attrOf(el, 'aria-label'))).toEqual(
      r.perStage.map((s) => `${s.stage}: mean ${signed(s.mean)}`),
    );
    // The timeline: a bar per stage over its sampled frames, and (T = 16) a JPEG thumbnail of every frame.
    const stageBars = markItems(html, 'stageBars');
    expect(stageBars.map((el) => /^(\S+):/.exec(attrOf(el, 'aria-label')!)![1])).toEqual(
      r.stages.map((s) => s.name),
    );
    const widths = stageBars.map((el) => rectOf(el).w);
    r.stages.forEach((s, k) => {
      expect(widths[k] / widths[0]).toBeCloseTo((s.end - s.start) / (r.stages[0].end - r.stages[0].start), 6);
    });
    const thumbs = markItems(html, 'thumbnails');
    expect(thumbs).toHaveLength(16);
    for (const el of thumbs) expect(attrOf(el, 'xlink:href')).toMatch(/^data:image\/jpeg;base64,/);
    expect(html).toContain('<title>sampled frame 5 (source frame');
    expect(html).not.toMatch(/(src|href)="http/);
    for (const name of ['take-off', 'flight', 'entry']) expect(html).toContain(name);
  });

  it('a folder with fewer frames than T is sampled with repetition and says so', async () => {
    const short = path.join(tmp, 'short');
    await cp(folder, short, { recursive: true });
    const files = (await readdir(short)).sort();
    for (const f of files.slice(5)) await rm(path.join(short, f));
    const r = await bundle.score(short, { exemplars: 2 });
    expect(r.input.sourceFrames).toBe(5);
    // numpy.linspace(0, 4, 16) truncated: steps of 4/15.
    expect(r.input.sampled).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4]);
    expect(r.warnings).toEqual([`${short}: only 5 frames for ${T} samples; frames are repeated`]);
  });

  it('refuses bad inputs with one-line messages', async () => {
    await expect(bundle.score(path.join(tmp, 'nope.mp4'))).rejects.toThrow(
      /no such video file or frame folder/,
    );
    await expect(bundle.score(path.join(folder, '00000.jpg'))).rejects.toThrow(/is a single image/);
    await expect(bundle.score(path.join(bundleDir, 'manifest.json'))).rejects.toThrow(/not a readable video/);
    await expect(bundle.score(folder, { actionType: '999z' })).rejects.toThrow(/known: 103b, 103c/);
  });
});
