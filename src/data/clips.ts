/**
 * From a StagedDataset to training inputs: T frames sampled per clip as the reference does, ground-truth
 * transitions recomputed on the sampled frames, decoded frames cached in memory, and the two input kinds
 * of the trainer: frames [V, T, S, S, 3] (end to end) or per-frame features [V, T, D] (head-only).
 */
import * as tf from '@tensorflow/tfjs-core';
import { mapLimit } from '../concurrency.ts';
import { McoreError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { sampledTransitions, sampleIndices } from './frame-sampling.ts';
import { type ClipTransform, transformClip } from './transforms.ts';
import type { ClipInfo, Frame, StagedDataset } from './types.ts';

/** A training clip: its key, action type, score and ground-truth transitions on the sampled frames. */
export interface ClipRecord {
  key: string;
  actionType: string;
  score: number;
  transitions: number[];
  /** Hidden stage qualities (synthetic data only; see ClipInfo.stageQualities). */
  stageQualities?: number[];
}

/** Where training inputs come from: cached features (head-only) or decoded frames (end to end). */
export interface ClipSource {
  clips: ClipRecord[];
  /** Input [V, ...] for `keys` in order; `augment` only in training. */
  load(keys: string[], opts: { augment: boolean; rng: Rng }): Promise<tf.Tensor>;
}

/** A clip as the model sees it: T sampled frame indices and transitions on them. */
export interface SampledClip extends ClipRecord {
  info: ClipInfo;
  /** The T sampled frame indices within the clip. */
  frames: number[];
}

/**
 * Samples T frames of every clip (linspace over the whole clip) and recomputes its transitions. A dataset
 * with its own reference sampling (FineDiving: linspace over absolute frame numbers, transitions from
 * the per-frame labels) provides `sampledClips(T)`, which wins.
 */
export function sampleClips(
  dataset: StagedDataset & { sampledClips?(T: number): SampledClip[] },
  T: number,
): SampledClip[] {
  if (dataset.sampledClips) return dataset.sampledClips(T);
  return dataset.clips.map((info) => {
    const frames = sampleIndices(0, info.numFrames - 1, T);
    return {
      key: info.key,
      actionType: info.actionType,
      score: info.score,
      transitions: sampledTransitions(frames, info.transitions),
      ...(info.stageQualities ? { stageQualities: [...info.stageQualities] } : {}),
      info,
      frames,
    };
  });
}

/**
 * The T sampled frames of a clip, up to 4 loaded at once (image files decode in parallel; a video
 * dataset shares one decode of the clip among them).
 */
export function loadSampledFrames(dataset: StagedDataset, clip: SampledClip): Promise<Frame[]> {
  return mapLimit(clip.frames, 4, (i) => dataset.loadFrame(clip.key, i));
}

/** Default byte budget of a FrameCache: 2 GiB of decoded frames. */
export const FRAME_CACHE_BYTES = 2 * 1024 ** 3;

/**
 * Loads the sampled frames of clips and keeps the most recently used ones, up to `maxBytes` of
 * pixels (default FRAME_CACHE_BYTES): a small dataset (the demo's: 29 MB) is decoded once, a large
 * one (FineDiving end to end at 112 px: ~6 MB a clip, ~19 GB in all) is decoded again when its clips
 * come back after eviction instead of filling the memory.
 */
export class FrameCache {
  /** Clip key -> frames and their bytes, least recently used first. */
  private readonly cache = new Map<string, { frames: Frame[]; bytes: number }>();
  private bytes = 0;
  constructor(
    private readonly dataset: StagedDataset,
    private readonly clips: Map<string, SampledClip>,
    private readonly maxBytes = FRAME_CACHE_BYTES,
  ) {}

  /** Decoded bytes held now. */
  get heldBytes(): number {
    return this.bytes;
  }

  async frames(key: string): Promise<Frame[]> {
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit.frames;
    }
    const clip = this.clips.get(key);
    if (!clip) throw new McoreError('E_INPUT', `clip '${key}' is not in dataset '${this.dataset.name}'`);
    const frames = await loadSampledFrames(this.dataset, clip);
    const bytes = frames.reduce((n, f) => n + f.data.byteLength, 0);
    for (const [old, entry] of this.cache) {
      if (this.bytes + bytes <= this.maxBytes) break;
      this.cache.delete(old);
      this.bytes -= entry.bytes;
    }
    if (bytes <= this.maxBytes && !this.cache.has(key)) {
      this.cache.set(key, { frames, bytes });
      this.bytes += bytes;
    }
    return frames;
  }
}

/** Frames source: [V, T, S, S, 3] ImageNet-normalised, augmented with `train` when asked. */
export function frameSource(
  dataset: StagedDataset,
  clips: SampledClip[],
  transform: (train: boolean) => ClipTransform,
  opts: { cacheBytes?: number } = {},
): ClipSource & { cache: FrameCache; loadTest(keys: string[]): Promise<tf.Tensor> } {
  const byKey = new Map(clips.map((c) => [c.key, c]));
  const cache = new FrameCache(dataset, byKey, opts.cacheBytes);
  const load = async (keys: string[], train: boolean, rng: Rng | undefined): Promise<tf.Tensor> => {
    const frames: Frame[][] = [];
    for (const key of keys) frames.push(await cache.frames(key));
    return packClips(frames, transform(train), rng ?? noRng);
  };
  return {
    clips: clips.filter((c) => c.info.split === 'train'),
    cache,
    load: (keys, { augment, rng }) => load(keys, augment, rng),
    loadTest: (keys) => load(keys, false, undefined),
  };
}

/**
 * Transforms the frames of V clips (each T frames) with one transform and packs them: [V, T, S, S, 3].
 * `rng` draws the crop and flip of training transforms (test transforms do not use it).
 */
export function packClips(
  clips: readonly (readonly Frame[])[],
  t: ClipTransform,
  rng: Rng = noRng,
): tf.Tensor5D {
  const T = clips[0].length;
  const per = T * t.crop * t.crop * 3;
  const data = new Float32Array(per * clips.length);
  clips.forEach((frames, i) => {
    data.set(transformClip(frames, t, rng), i * per);
  });
  return tf.tensor5d(data, [clips.length, T, t.crop, t.crop, 3]);
}

/** A generator for transforms that draw nothing (test time). */
const noRng: Rng = {
  next: () => 0,
  int: () => 0,
  normal: () => 0,
  fork: () => noRng,
  state: () => 0,
};

/** Features source: per-clip [T, D] rows -> [V, T, D]. */
export function featureSource(
  clips: SampledClip[],
  features: Map<string, Float32Array>,
  T: number,
  D: number,
): ClipSource & { loadTest(keys: string[]): Promise<tf.Tensor> } {
  const load = async (keys: string[]): Promise<tf.Tensor> => {
    const data = new Float32Array(keys.length * T * D);
    keys.forEach((k, i) => {
      const f = features.get(k);
      if (!f) throw new McoreError('E_INPUT', `no cached features for clip '${k}'`);
      data.set(f, i * T * D);
    });
    return tf.tensor3d(data, [keys.length, T, D]);
  };
  return {
    clips: clips.filter((c) => c.info.split === 'train'),
    load: (keys) => load(keys),
    loadTest: load,
  };
}
