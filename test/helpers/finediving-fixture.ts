/**
 * A FineDiving-layout frame folder for tests: real annotation keys (from the shared annotation .pkl
 * files) with synthetic JPEG frames at `<root>/<video_name>/<instance>/<frame:05d>.jpg`.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { frameFileName } from '../../src/data/finediving.ts';
import type { FineDivingAnnotations } from '../../src/data/finediving-annotations.ts';

/** The shared FineDiving annotations (absent on machines without the dataset: skip those tests). */
export const fineDivingAnnotationsDir = path.resolve(import.meta.dirname, '../../../shared/data/finediving');
export const hasFineDivingAnnotations = existsSync(fineDivingAnnotationsDir);

/** Real keys: 3 train, 3 test, in split-file order (01/121 and 01/1 share the video folder '01'). */
export const FIXTURE_TRAIN_KEYS = ['FINADivingWorldCup2021_Men3m_final_r1/8', '03/12', '01/121'];
export const FIXTURE_TEST_KEYS = ['FINADivingWorldCup2021_Women3m_semifinal_r3/3', '07/11', '01/1'];
export const FIXTURE_KEYS = [...FIXTURE_TRAIN_KEYS, ...FIXTURE_TEST_KEYS];

/** A 64x36 frame whose red channel is frame % 256 and green floor(frame / 256) % 256 (flat colour). */
export async function frameJpeg(frame: number): Promise<Buffer> {
  const w = 64;
  const h = 36;
  const data = Buffer.alloc(w * h * 3);
  for (let p = 0; p < w * h; p++) {
    data[3 * p] = frame % 256;
    data[3 * p + 1] = Math.floor(frame / 256) % 256;
    data[3 * p + 2] = 128;
  }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95, chromaSubsampling: '4:4:4' })
    .toBuffer();
}

/** Writes every annotated frame of `keys` at <root>/<video>/<instance>/<frame:05d>.jpg. */
export async function buildFixture(
  root: string,
  ann: FineDivingAnnotations,
  keys: readonly string[],
): Promise<void> {
  for (const key of keys) {
    const r = ann.records.get(key)!;
    const dir = path.join(root, r.videoName, String(r.instance));
    await mkdir(dir, { recursive: true });
    for (let f = r.startFrame; f <= r.endFrame; f++)
      await writeFile(path.join(dir, frameFileName(f)), await frameJpeg(f));
  }
}
