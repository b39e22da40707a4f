import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExportProgress, exportFrameFolders, exportMp4 } from '../../src/data/export.ts';
import { sampleIndices } from '../../src/data/frame-sampling.ts';
import { loadManifestDataset } from '../../src/data/manifest.ts';
import { createSynthDive, type SynthDive } from '../../src/data/synthdive/index.ts';
import type { Frame } from '../../src/data/types.ts';
import { decodeFrames, probeVideo, VideoClipCache } from '../../src/data/video.ts';
import { McoreError } from '../../src/errors.ts';

let dir: string;
let ds: SynthDive;
let keys: string[];

/** Mean absolute difference of two frames in grey levels. */
function mae(a: Frame, b: Frame): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i] - b.data[i]);
  return s / a.data.length;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcore-export-'));
  ds = createSynthDive({ seed: 1, clips: 12, width: 32, height: 32 });
  keys = [ds.clips[0].key, ds.clips[5].key, ds.clips[11].key];
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exportFrameFolders', () => {
  it("writes FineDiving's layout and a manifest the loader reads back as the same clips", async () => {
    const events: ExportProgress[] = [];
    const out = join(dir, 'frames');
    const res = await exportFrameFolders(ds, out, { keys, onProgress: (e) => events.push(e) });
    // The manifest is a real-data format: the hidden stage qualities stay out of it.
    const want = keys.map((k) => {
      const { stageQualities: _, ...info } = ds.clips.find((c) => c.key === k)!;
      return info;
    });
    expect(res.clips).toBe(3);
    expect(res.frames).toBe(want.reduce((a, c) => a + c.numFrames, 0));
    expect(events.map((e) => [e.kind, e.key, e.done, e.total])).toEqual(
      keys.map((k, i) => ['clip', k, i + 1, 3]),
    );
    // <dir>/synthdive/<instance>/<frame:05d>.jpg, instance = position in dataset.clips
    expect((await readdir(join(out, 'synthdive'))).sort()).toEqual(['0', '11', '5']);
    const files = await readdir(join(out, 'synthdive', '5'));
    expect(files).toHaveLength(ds.clips[5].numFrames);
    expect(files.sort()[0]).toBe('00000.jpg');
    expect(files.sort().at(-1)).toBe(`${String(ds.clips[5].numFrames - 1).padStart(5, '0')}.jpg`);
    const manifest = JSON.parse(await readFile(res.manifestPath, 'utf8'));
    expect(manifest.stages).toEqual(['take-off', 'flight', 'entry']);
    expect(manifest.clips[1].frames).toBe('synthdive/5');

    const back = await loadManifestDataset(res.manifestPath, { width: 32, height: 32 });
    expect(back.name).toBe('synthdive');
    expect(back.stageNames).toEqual(ds.stageNames);
    expect(back.clips).toEqual(want);
    // every frame of every exported clip within a small error of the rendered one (JPEG q92, 4:4:4)
    let worst = 0;
    let total = 0;
    let n = 0;
    for (const c of want) {
      for (let i = 0; i < c.numFrames; i++) {
        const e = mae(await back.loadFrame(c.key, i), ds.loadFrameSync(c.key, i));
        worst = Math.max(worst, e);
        total += e;
        n++;
      }
    }
    expect(worst).toBeLessThan(6); // measured 3.5 (mean 2.6; adjacent rendered frames differ by 4.3)
    expect(total / n).toBeLessThan(4);
    // the frame really is frame i: farther from the clip's frame 0 at the flight transition than from itself
    const c = want[0];
    const t = c.transitions[1];
    const f = await back.loadFrame(c.key, t);
    expect(mae(f, ds.loadFrameSync(c.key, t))).toBeLessThan(mae(f, ds.loadFrameSync(c.key, 0)));
  });

  it('unknown keys are E_INPUT', async () => {
    await expect(exportFrameFolders(ds, join(dir, 'x'), { keys: ['synthdive-0099'] })).rejects.toThrow(
      McoreError,
    );
  });
});

describe('exportMp4', () => {
  it('one MP4 per clip; probe, decodeFrames and the manifest loader read the clips back', async () => {
    const out = join(dir, 'mp4');
    const res = await exportMp4(ds, out, { keys, fps: 25 });
    expect(res.clips).toBe(3);
    expect((await readdir(join(out, 'synthdive'))).sort()).toEqual(['0.mp4', '11.mp4', '5.mp4']);
    // The manifest is a real-data format: the hidden stage qualities stay out of it.
    const want = keys.map((k) => {
      const { stageQualities: _, ...info } = ds.clips.find((c) => c.key === k)!;
      return info;
    });
    for (const [c, instance] of want.map((c, i) => [c, [0, 5, 11][i]] as const)) {
      const path = join(out, 'synthdive', `${instance}.mp4`);
      const info = await probeVideo(path);
      expect(info.frameCount).toBe(c.numFrames);
      expect(info.fps).toBe(25);
      const d = await decodeFrames(path, { count: 8 });
      expect(d.indices).toEqual(sampleIndices(0, c.numFrames - 1, 8));
      expect(d.frames).toHaveLength(8);
      d.frames.forEach((f, k) => {
        expect(mae(f, ds.loadFrameSync(c.key, d.indices[k]))).toBeLessThan(8); // measured <= 4.5 (crf 18)
      });
    }

    const cache = new VideoClipCache({ dir: join(dir, 'cache') });
    const back = await loadManifestDataset(res.manifestPath, {
      width: 32,
      height: 32,
      framesPerClip: 8,
      cache,
    });
    expect(back.clips).toEqual(want);
    expect(back.source(keys[1])).toEqual({
      kind: 'video',
      path: join(out, 'synthdive', '5.mp4'),
      firstFrame: 0,
    });
    // loadFrame serves the 8-frame sample set from one decode; a frame outside it decodes alone
    const c = want[1];
    const set = sampleIndices(0, c.numFrames - 1, 8);
    for (const i of [set[3], set[3] + 1]) {
      expect(mae(await back.loadFrame(c.key, i), ds.loadFrameSync(c.key, i))).toBeLessThan(8);
    }
    const entries = (await readdir(join(dir, 'cache'))).filter((n) => n.endsWith('.clip'));
    expect(entries).toHaveLength(2);
    expect(back.warnings).toEqual([]);
  });
});
