/**
 * Writes a StagedDataset (SynthDive or any other) to disk, in forms other tools read: JPEG frame folders
 * in FineDiving's layout `<dir>/<video_name>/<instance>/<frame:05d>.jpg`, or one MP4 per clip; either
 * way with a manifest (see manifest.ts) that `loadManifestDataset` reads back as the same clips.
 * video_name is the dataset's name ('synthdive'), instance the clip's position in `dataset.clips`.
 *
 * Example:
 *   const ds = createSynthDive({ seed: 1, clips: 12, width: 32, height: 32 });
 *   await exportFrameFolders(ds, 'out/frames');  // out/frames/synthdive/0/00000.jpg ... + out/frames/manifest.json
 *   await exportMp4(ds, 'out/mp4', { fps: 25 });  // out/mp4/synthdive/0.mp4 ... + out/mp4/manifest-mp4.json
 *   const back = await loadManifestDataset('out/frames/manifest.json', { width: 32, height: 32 });
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { McoreError } from '../errors.ts';
import { writeJpeg } from './images.ts';
import type { ManifestFile } from './manifest.ts';
import type { ClipInfo, Frame, StagedDataset } from './types.ts';
import { encodeMp4 } from './video.ts';

/** One clip written: `done` of `total` clips, `path` its folder or video file. */
export interface ExportProgress {
  kind: 'clip';
  key: string;
  done: number;
  total: number;
  path: string;
}

export interface ExportOptions {
  /** Clips to write (default: all), by key. */
  keys?: readonly string[];
  /** Folder name under `dir` (default: the dataset's name). */
  videoName?: string;
  /** Manifest file name under `dir` (default 'manifest.json' for frames, 'manifest-mp4.json' for MP4). */
  manifestName?: string;
  onProgress?: (p: ExportProgress) => void;
}

export interface ExportResult {
  manifestPath: string;
  clips: number;
  frames: number;
}

/** The clips to export with their instance numbers (positions in dataset.clips). */
function selectClips(dataset: StagedDataset, keys: readonly string[] | undefined): [ClipInfo, number][] {
  const all = dataset.clips.map((c, i) => [c, i] as [ClipInfo, number]);
  if (!keys) return all;
  const byKey = new Map(all.map((e) => [e[0].key, e]));
  const unknown = keys.filter((k) => !byKey.has(k));
  if (unknown.length > 0) {
    throw new McoreError(
      'E_INPUT',
      `export: dataset '${dataset.name}' has no clip ${unknown
        .slice(0, 5)
        .map((k) => `'${k}'`)
        .join(', ')}`,
    );
  }
  return keys.map((k) => byKey.get(k)!);
}

function folderName(dataset: StagedDataset, videoName: string | undefined): string {
  return (videoName ?? dataset.name).replace(/[^\w.-]+/g, '_') || 'dataset';
}

function manifestEntry(
  c: ClipInfo,
  where: { frames: string } | { video: string },
): ManifestFile['clips'][number] {
  return {
    key: c.key,
    ...where,
    score: c.score,
    actionType: c.actionType,
    difficulty: c.difficulty,
    judgeScores: [...c.judgeScores],
    transitions: [...c.transitions],
    split: c.split,
  };
}

async function writeManifest(path: string, manifest: ManifestFile): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${JSON.stringify(manifest, null, 1)}\n`);
  await rename(tmp, path);
}

/**
 * Writes every frame of the chosen clips as JPEG (`quality`, default 92) into
 * `<dir>/<video_name>/<instance>/<frame:05d>.jpg` and a manifest with `frames` entries.
 */
export async function exportFrameFolders(
  dataset: StagedDataset,
  dir: string,
  options: ExportOptions & { quality?: number } = {},
): Promise<ExportResult> {
  const chosen = selectClips(dataset, options.keys);
  const video = folderName(dataset, options.videoName);
  const entries: ManifestFile['clips'] = [];
  let frames = 0;
  for (const [clip, instance] of chosen) {
    const rel = `${video}/${instance}`;
    const folder = join(dir, video, String(instance));
    await rm(folder, { recursive: true, force: true });
    await mkdir(folder, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < clip.numFrames; i++) {
      const frame = await dataset.loadFrame(clip.key, i);
      writes.push(writeJpeg(join(folder, `${String(i).padStart(5, '0')}.jpg`), frame, options.quality ?? 92));
      if (writes.length >= 8) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    frames += clip.numFrames;
    entries.push(manifestEntry(clip, { frames: rel }));
    options.onProgress?.({
      kind: 'clip',
      key: clip.key,
      done: entries.length,
      total: chosen.length,
      path: folder,
    });
  }
  const manifestPath = join(dir, options.manifestName ?? 'manifest.json');
  await writeManifest(manifestPath, { name: dataset.name, stages: [...dataset.stageNames], clips: entries });
  return { manifestPath, clips: entries.length, frames };
}

/**
 * Writes one H.264 MP4 per chosen clip (`fps`, default 25) as `<dir>/<video_name>/<instance>.mp4`,
 * streaming its frames into ffmpeg, and a manifest with `video` entries.
 */
export async function exportMp4(
  dataset: StagedDataset,
  dir: string,
  options: ExportOptions & { fps?: number; crf?: number } = {},
): Promise<ExportResult> {
  const chosen = selectClips(dataset, options.keys);
  const video = folderName(dataset, options.videoName);
  const entries: ManifestFile['clips'] = [];
  let frames = 0;
  await mkdir(join(dir, video), { recursive: true });
  for (const [clip, instance] of chosen) {
    const rel = `${video}/${instance}.mp4`;
    const path = join(dir, video, `${instance}.mp4`);
    async function* clipFrames(): AsyncGenerator<Frame> {
      for (let i = 0; i < clip.numFrames; i++) yield await dataset.loadFrame(clip.key, i);
    }
    const written = await encodeMp4(clipFrames(), options.fps ?? 25, path, { crf: options.crf });
    frames += written.frames;
    entries.push(manifestEntry(clip, { video: rel }));
    options.onProgress?.({ kind: 'clip', key: clip.key, done: entries.length, total: chosen.length, path });
  }
  const manifestPath = join(dir, options.manifestName ?? 'manifest-mp4.json');
  await writeManifest(manifestPath, { name: dataset.name, stages: [...dataset.stageNames], clips: entries });
  return { manifestPath, clips: entries.length, frames };
}
