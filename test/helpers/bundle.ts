/**
 * A small scoring bundle for tests and benches, made the way test/score/scorer.test.ts makes its own:
 * train a tiny run on SynthDive (one epoch), export it as a bundle, and write one held clip as a PNG
 * frame folder and as an MP4 (H.264 when ffmpeg has libx264).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { exportMp4 } from '../../src/data/export.ts';
import { writePng } from '../../src/data/images.ts';
import { openSynthDive } from '../../src/data/open.ts';
import { exportRunBundle } from '../../src/verbs/export.ts';
import { trainRun } from '../../src/verbs/run.ts';

export interface TestBundle {
  bundleDir: string;
  /** The query clip as lossless PNG frames at the bundle's size, and as an MP4 (25 fps). */
  folder: string;
  mp4: string;
  frames: number;
  imageSize: number;
}

/** Trains and exports a tiny bundle (T `frames`, `size` px) under `dir`; about 20 s at T 16, 32 px. */
export async function makeTestBundle(
  dir: string,
  o: { frames?: number; size?: number; clips?: number; query?: string } = {},
): Promise<TestBundle> {
  const frames = o.frames ?? 16;
  const size = o.size ?? 32;
  const clips = o.clips ?? 36;
  const query = o.query ?? 'synthdive-0001';
  await useBackend('wasm');
  const config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames, imageSize: size },
    train: { epochs: 1, seed: 0, scoreScale: 10 },
  });
  const runDir = path.join(dir, 'run');
  await trainRun(
    { dataset: `synthdive:seed=1,clips=${clips},size=${size}`, config },
    { out: runDir, resume: false },
  );
  const bundleDir = path.join(dir, 'bundle');
  await exportRunBundle(runDir, bundleDir);
  const dataset = openSynthDive({ seed: 1, clips, size });
  const clip = dataset.clips.find((c) => c.key === query)!;
  const folder = path.join(dir, 'frames', query);
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < clip.numFrames; i++) {
    await writePng(path.join(folder, `${String(i).padStart(5, '0')}.png`), await dataset.loadFrame(query, i));
  }
  await exportMp4(dataset, path.join(dir, 'mp4'), { keys: [query] });
  const instance = String(dataset.clips.indexOf(clip));
  return {
    bundleDir,
    folder,
    mp4: path.join(dir, 'mp4', 'synthdive', `${instance}.mp4`),
    frames,
    imageSize: size,
  };
}
