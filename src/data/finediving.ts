/**
 * FineDiving on disk (`/work/shared/docs/finediving-format.md`): the annotation pickles plus trimmed
 * frames at `<root>/<video_name>/<instance>/<absolute_frame:05d>.jpg`, as a StagedDataset.
 *
 * Frame range: taken from the annotation (`start_frame`..`end_frame`, which equals
 * `len(frames_labels)` frames). The reference loader globs the instance folder and takes start/end
 * from the first and last file names instead; the two agree exactly when the folder holds the
 * annotated frames, which `validateFineDivingLayout` checks (and `mcore data check finediving` runs).
 *
 * Stage transitions of a clip (ClipInfo.transitions, clip-relative frame indices), for K stages: the
 * first frame of each of the 2nd .. (K-1)th distinct step labels (by first appearance in
 * `frames_labels`) and of the last distinct label (Entry). For K = 3: t0 = first frame of the 2nd
 * distinct label (the first somersault/twist step, i.e. the end of take-off), t1 = first frame of the
 * last distinct label (Entry). Labels that recur (e.g. twist, somersault, twist) count once.
 *
 * Sampling (spec section 4): `sampleFineDiving` takes `linspace(start, end, T)` over ABSOLUTE frame
 * numbers, truncated, as the reference does; this differs from linspace over 0..n-1 plus start in 11
 * of the 3000 instances (float rounding at exact integers, e.g. 01/114), so use `sampledClips(T)`
 * rather than a clip-relative linspace. Transitions are recomputed on the sampled frames with
 * `transitionsFromLabels`.
 *
 * @example
 * const ds = await openFineDiving({ root: 'FINADiving_MTL_256s', annotations: 'Annotations' });
 * ds.clips.length; // 3000 (2251 train, then 749 test)
 * ds.clips.find((c) => c.key === '01/1'); // { actionType: '407c', score: 88, numFrames: 85, transitions: [3, 35], ... }
 * const problems = await validateFineDivingLayout(ds, { checkImages: false }); // [] when the frames are complete
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { mapLimit } from '../concurrency.ts';
import { McoreError } from '../errors.ts';
import type { SampledClip } from './clips.ts';
import {
  type FineDivingAnnotations,
  type FineDivingRecord,
  loadFineDivingAnnotations,
} from './finediving-annotations.ts';
import { sampleIndices, transitionsFromLabels } from './frame-sampling.ts';
import { readImage } from './images.ts';
import type { ClipInfo, StagedDataset } from './types.ts';

/** Frames sampled per clip by the reference. */
export const FINEDIVING_FRAMES = 96;

export interface FineDivingOptions {
  /** Folder holding `<video_name>/<instance>/<frame:05d>.jpg`. */
  root: string;
  /** The annotation folder, or annotations already loaded with loadFineDivingAnnotations. */
  annotations: string | FineDivingAnnotations;
  /** Number of stages K (default 3: take-off, flight, entry). */
  stages?: number;
  /** Keep only these clip keys (`video_name/instance`); default all. Unknown keys are an E_INPUT error. */
  keys?: readonly string[];
}

/** A FineDiving clip: ClipInfo plus where its frames are. */
export interface FineDivingClip extends ClipInfo {
  videoName: string;
  instance: number;
  /** Absolute frame numbers of the first and last frame (file names), inclusive. */
  startFrame: number;
  endFrame: number;
}

export interface FineDivingDataset extends StagedDataset {
  clips: FineDivingClip[];
  root: string;
  stages: number;
  /** All annotations (not only the kept clips). */
  annotations: FineDivingAnnotations;
  /** The annotation record of a kept clip. */
  record(key: string): FineDivingRecord;
  /** `<root>/<video_name>/<instance>` */
  clipDir(key: string): string;
  /** The file of frame `index` (0-based within the clip). */
  framePath(key: string, index: number): string;
  /** Every clip sampled as the reference does (absolute linspace; transitions from the labels). */
  sampledClips(T?: number): SampledClip[];
}

/** One clip sampled for the model. */
export interface FineDivingSample {
  /** T absolute frame numbers, `linspace(start, end, T)` truncated. */
  indices: number[];
  /** The same frames as 0-based clip indices (indices - start). */
  frames: number[];
  /** K-1 transitions as positions in the T sampled frames (transitionsFromLabels). */
  transitions: number[];
}

/** The file name of an absolute frame number: at least 5 digits, zero-padded, `.jpg`. */
export function frameFileName(frame: number): string {
  return `${String(frame).padStart(5, '0')}.jpg`;
}

/** Stage names for K stages: take-off, flight (numbered when several), entry. */
export function fineDivingStageNames(stages: number): string[] {
  if (stages === 2) return ['take-off+flight', 'entry'];
  if (stages === 3) return ['take-off', 'flight', 'entry'];
  return ['take-off', ...Array.from({ length: stages - 2 }, (_, i) => `flight ${i + 1}`), 'entry'];
}

/**
 * Clip-relative transitions from per-frame step labels (module doc): the rule of transitionsFromLabels
 * applied to every frame. Returns undefined when the clip has fewer than K distinct labels.
 */
export function fineDivingTransitions(labels: ArrayLike<number>, stages: number): number[] | undefined {
  const all = Array.from({ length: labels.length }, (_, i) => i);
  const t = transitionsFromLabels(all, 0, labels, stages);
  const ok = t.every((v, i) => v >= 1 && v < labels.length && (i === 0 || v > t[i - 1]));
  return ok ? t : undefined;
}

/**
 * Samples T frames of an instance as the reference: absolute `linspace(start, end, T)` truncated, then
 * the transitions recomputed on the sampled labels (transitionsFromLabels, K stages).
 */
export function sampleFineDiving(
  record: FineDivingRecord,
  T: number = FINEDIVING_FRAMES,
  stages = 3,
): FineDivingSample {
  const indices = sampleIndices(record.startFrame, record.endFrame, T);
  return {
    indices,
    frames: indices.map((f) => f - record.startFrame),
    transitions: transitionsFromLabels(indices, record.startFrame, record.framesLabels, stages),
  };
}

/** Opens FineDiving: annotations (loaded here when a folder is given) and the frame root. */
export async function openFineDiving(options: FineDivingOptions): Promise<FineDivingDataset> {
  const { root, stages = 3 } = options;
  if (!Number.isInteger(stages) || stages < 2) {
    throw new McoreError('E_INPUT', `FineDiving: stages must be an integer >= 2, got ${stages}`);
  }
  const annotations =
    typeof options.annotations === 'string'
      ? await loadFineDivingAnnotations(options.annotations)
      : options.annotations;
  const split = new Map<string, 'train' | 'test'>();
  for (const k of annotations.trainKeys) split.set(k, 'train');
  for (const k of annotations.testKeys) split.set(k, 'test');
  let keys = [...annotations.trainKeys, ...annotations.testKeys];
  if (options.keys !== undefined) {
    const unknown = options.keys.filter((k) => !split.has(k));
    if (unknown.length > 0) {
      throw new McoreError(
        'E_INPUT',
        `FineDiving: ${unknown.length} requested keys are in neither split (e.g. '${unknown[0]}'); keys look like 'video_name/instance', e.g. '01/1'`,
      );
    }
    const wanted = new Set(options.keys);
    keys = keys.filter((k) => wanted.has(k));
  }

  const clips: FineDivingClip[] = [];
  const short: string[] = [];
  for (const key of keys) {
    const r = annotations.records.get(key)!;
    const transitions = fineDivingTransitions(r.framesLabels, stages);
    if (transitions === undefined) {
      short.push(key);
      continue;
    }
    clips.push({
      key,
      actionType: r.actionType,
      difficulty: r.difficulty,
      score: r.diveScore,
      judgeScores: r.judgeScores,
      numFrames: r.endFrame - r.startFrame + 1,
      transitions,
      split: split.get(key)!,
      videoName: r.videoName,
      instance: r.instance,
      startFrame: r.startFrame,
      endFrame: r.endFrame,
    });
  }
  if (short.length > 0) {
    throw new McoreError(
      'E_INPUT',
      `FineDiving: stages=${stages} needs ${stages} distinct step labels per clip, but ${short.length} clips have fewer (e.g. ${short[0]}); use fewer stages`,
    );
  }

  const byKey = new Map(clips.map((c) => [c.key, c]));
  const clipOf = (key: string): FineDivingClip => {
    const c = byKey.get(key);
    if (c === undefined) throw new McoreError('E_INPUT', `clip '${key}' is not in dataset 'finediving'`);
    return c;
  };
  const clipDir = (key: string) => {
    const c = clipOf(key);
    return path.join(root, c.videoName, String(c.instance));
  };
  const framePath = (key: string, index: number) => {
    const c = clipOf(key);
    if (!Number.isInteger(index) || index < 0 || index >= c.numFrames) {
      throw new McoreError(
        'E_INPUT',
        `clip '${key}': frame index ${index} is outside [0, ${c.numFrames}) (frames ${c.startFrame}-${c.endFrame})`,
      );
    }
    return path.join(root, c.videoName, String(c.instance), frameFileName(c.startFrame + index));
  };

  return {
    name: 'finediving',
    stageNames: fineDivingStageNames(stages),
    clips,
    root,
    stages,
    annotations,
    record: (key) => annotations.records.get(clipOf(key).key)!,
    clipDir,
    framePath,
    sampledClips(T = FINEDIVING_FRAMES) {
      return clips.map((info) => {
        const s = sampleFineDiving(annotations.records.get(info.key)!, T, stages);
        return {
          key: info.key,
          actionType: info.actionType,
          score: info.score,
          transitions: s.transitions,
          info,
          frames: s.frames,
        };
      });
    },
    async loadFrame(key, index) {
      const file = framePath(key, index);
      try {
        return await readImage(file);
      } catch (err) {
        if ((await stat(file).catch(() => undefined)) !== undefined) throw err;
        throw new McoreError(
          'E_DATA_LAYOUT',
          `${file}: frame ${index} of clip ${key} is missing; run 'mcore data check finediving --root ${root} --annotations <dir>' to list every layout problem`,
        );
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Layout validation

export type LayoutProblemKind =
  /** `<root>/<video_name>` does not exist. */
  | 'missing-video-folder'
  /** The video folder exists but `<instance>` does not. */
  | 'missing-instance-folder'
  /** No instance folder, and frames lie directly in the video folder (untrimmed `video/*.jpg`). */
  | 'untrimmed-layout'
  /** The instance folder holds a different number of .jpg frames than len(frames_labels). */
  | 'frame-count'
  /** The right number of frames, but names other than the annotated start..end. */
  | 'frame-names'
  /** A frame that does not decode (checkImages). */
  | 'unreadable-image'
  /** Frames of one clip with different sizes (checkImages). */
  | 'frame-size';

export const LAYOUT_PROBLEM_KINDS: readonly LayoutProblemKind[] = [
  'missing-video-folder',
  'missing-instance-folder',
  'untrimmed-layout',
  'frame-count',
  'frame-names',
  'unreadable-image',
  'frame-size',
];

export interface LayoutProblem {
  kind: LayoutProblemKind;
  /** Clip key `video_name/instance`. */
  key: string;
  /** The folder or file at fault. */
  path: string;
  message: string;
}

export interface ValidateOptions {
  /** Decode every frame (slow: ~300k JPEGs for the full set). */
  checkImages: boolean;
  /** Frames decoded at once (default 8). */
  concurrency?: number;
  /** Called after each clip with (clips done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Lists a folder; undefined when it does not exist or is not a folder. */
async function list(dir: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new McoreError('E_DATA_LAYOUT', `${dir}: cannot list the folder (${code ?? err})`);
  }
}

const isJpg = (e: Dirent) => !e.isDirectory() && /\.jpe?g$/i.test(e.name);

/** "a, b, c and 4 more" */
function some(names: readonly string[], n = 3): string {
  const head = names.slice(0, n).join(', ');
  return names.length > n ? `${head} and ${names.length - n} more` : head;
}

/** Compares the .jpg names of an instance folder with the annotated start..end; undefined when equal. */
function checkNames(clip: FineDivingClip, dir: string, names: readonly string[]): LayoutProblem | undefined {
  const n = clip.numFrames;
  const expected = new Set(Array.from({ length: n }, (_, i) => frameFileName(clip.startFrame + i)));
  const present = new Set(names);
  const missing = [...expected].filter((f) => !present.has(f));
  const extra = names.filter((f) => !expected.has(f)).sort();
  if (names.length === n && missing.length === 0) return undefined;
  const range = `${frameFileName(clip.startFrame)}..${frameFileName(clip.endFrame)}`;
  const detail: string[] = [];
  if (missing.length > 0) detail.push(`missing ${some(missing)}`);
  if (extra.length > 0) detail.push(`unexpected ${some(extra)}`);
  if (names.length !== n) {
    return {
      kind: 'frame-count',
      key: clip.key,
      path: dir,
      message: `holds ${names.length} frames but the annotation has ${n} (len(frames_labels), frames ${range}): ${detail.join('; ')}`,
    };
  }
  const numbers = names.map((f) => (/^\d+\.jpg$/i.test(f) ? Number.parseInt(f, 10) : Number.NaN));
  const sorted = numbers.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  let hint = '';
  if (sorted.length === n && sorted[n - 1] - sorted[0] === n - 1) {
    hint =
      sorted[0] === clip.startFrame
        ? `; names must be zero-padded to 5 digits (${frameFileName(clip.startFrame)})`
        : `; the frames are numbered ${sorted[0]}..${sorted[n - 1]}, but must keep their absolute frame numbers in the source video (${clip.startFrame}..${clip.endFrame})`;
  }
  return {
    kind: 'frame-names',
    key: clip.key,
    path: dir,
    message: `file names do not match the annotated frames ${range}: ${detail.join('; ')}${hint}`,
  };
}

/** Decodes every frame of a clip; problems for the unreadable ones and for a size change. */
async function checkClipImages(
  clip: FineDivingClip,
  dir: string,
  names: readonly string[],
  concurrency: number,
): Promise<LayoutProblem[]> {
  const sizes = new Map<string, string>();
  // failOn 'warning' (stricter than readImage): a truncated JPEG can decode with a libjpeg warning
  const decode = (file: string) =>
    sharp(file, { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true });
  const failed: string[] = [];
  await mapLimit(names, concurrency, async (name) => {
    try {
      const { info } = await decode(path.join(dir, name));
      sizes.set(name, `${info.width}x${info.height}`);
    } catch {
      failed.push(name);
    }
  });
  // Each failed file is decoded again on its own, for its reason: with decodes in parallel libvips can
  // lose its error text (a truncated JPEG then reads "Input file has corrupt header:" only).
  const problems: LayoutProblem[] = [];
  for (const name of failed.sort()) {
    const file = path.join(dir, name);
    try {
      const { info } = await decode(file);
      sizes.set(name, `${info.width}x${info.height}`);
    } catch (err) {
      const lines = (err as Error).message.split('\n').map((l) => l.trim());
      const reason = [...new Set(lines.filter((l) => l.length > 0))].join('; ');
      problems.push({
        kind: 'unreadable-image',
        key: clip.key,
        path: file,
        message: `cannot decode the JPEG (${reason})`,
      });
    }
  }
  const ordered = [...names].sort().filter((n) => sizes.has(n));
  if (ordered.length > 0) {
    const first = sizes.get(ordered[0])!;
    const odd = ordered.filter((n) => sizes.get(n) !== first);
    if (odd.length > 0) {
      problems.push({
        kind: 'frame-size',
        key: clip.key,
        path: path.join(dir, odd[0]),
        message: `${odd.length} of ${ordered.length} frames are not ${first} like ${ordered[0]}, e.g. ${odd[0]} is ${sizes.get(odd[0])}`,
      });
    }
  }
  return problems;
}

/**
 * Checks the frame layout of every clip before training and returns ALL problems found (empty when
 * the layout is complete), in clip order. Never throws for a layout problem; throws E_INPUT when
 * `root` itself is not a folder.
 */
export async function validateFineDivingLayout(
  ds: FineDivingDataset,
  options: ValidateOptions,
): Promise<LayoutProblem[]> {
  const { checkImages, concurrency = 8, onProgress } = options;
  const rootInfo = await stat(ds.root).catch(() => undefined);
  if (rootInfo === undefined || !rootInfo.isDirectory()) {
    throw new McoreError(
      'E_INPUT',
      `${ds.root}: no such folder; pass the FineDiving frame folder (holding <video_name>/<instance>/<frame:05d>.jpg)`,
    );
  }
  const videos = new Map<string, Dirent[] | undefined>();
  const problems: LayoutProblem[] = [];
  let done = 0;
  for (const clip of ds.clips) {
    const videoDir = path.join(ds.root, clip.videoName);
    if (!videos.has(clip.videoName)) videos.set(clip.videoName, await list(videoDir));
    const videoEntries = videos.get(clip.videoName);
    const dir = path.join(videoDir, String(clip.instance));
    const entries = videoEntries === undefined ? undefined : await list(dir);
    if (videoEntries === undefined) {
      problems.push({
        kind: 'missing-video-folder',
        key: clip.key,
        path: videoDir,
        message: `video folder not found (frames ${clip.startFrame}-${clip.endFrame} expected in ${dir})`,
      });
    } else if (entries === undefined) {
      const loose = videoEntries.filter(isJpg).map((e) => e.name);
      if (loose.length > 0) {
        const own = loose.filter((f) => {
          const v = Number.parseInt(f, 10);
          return v >= clip.startFrame && v <= clip.endFrame;
        }).length;
        problems.push({
          kind: 'untrimmed-layout',
          key: clip.key,
          path: videoDir,
          message: `no folder ${clip.instance}/ but ${loose.length} frames lie directly in the video folder (${own} of them in this clip's range ${clip.startFrame}-${clip.endFrame}); FineDiving needs trimmed frames at ${path.join(videoDir, String(clip.instance), frameFileName(clip.startFrame))}`,
        });
      } else {
        problems.push({
          kind: 'missing-instance-folder',
          key: clip.key,
          path: dir,
          message: `instance folder not found (frames ${clip.startFrame}-${clip.endFrame} expected)`,
        });
      }
    } else {
      const names = entries.filter(isJpg).map((e) => e.name);
      const p = checkNames(clip, dir, names);
      if (p !== undefined) problems.push(p);
      if (checkImages) problems.push(...(await checkClipImages(clip, dir, names, concurrency)));
    }
    onProgress?.(++done, ds.clips.length);
  }
  return problems;
}
