/**
 * The on-disk feature cache of head-only training: per-frame backbone features of every clip, computed
 * once (test mode: no augmentation) and reused by later runs, resumed runs and `mcore eval`.
 *
 * Layout under the cache folder (default `.cache/mcore/features` under the current directory):
 *
 *   <cacheDir>/<key>/features.json        header: the key material, key, D, T, dtype, byte order
 *   <cacheDir>/<key>/clips/<name>.f32     one file per clip: T x D float32 little-endian (row-major [T, D])
 *
 * `key` = first 32 hex digits of sha256 over the canonical JSON (sorted keys) of the key material:
 * sha256 of the backbone weights file's bytes, the backbone config, T, the image size S, the test-time
 * transform, the dataset spec text and the video scaler. Anything that changes the features changes the key, so stale
 * features are never read; the frames themselves are not hashed (a dataset edited in place under the same
 * spec needs a new cache folder). A clip file is named after its key (unsafe characters replaced) plus
 * 12 hex digits of sha256(clip key), so keys with '/' (FineDiving '01/1') stay unique and readable.
 *
 * Every file is written atomically (temporary file, then rename): a run killed midway leaves only
 * complete clip files, and the next call computes only the clips that are missing.
 *
 * Engine (`engine`, part of the key): 'onnxruntime' (default) runs the backbone as the bundle's ONNX
 * graph (src/onnx/export.ts) in ONNX Runtime, one clip per run while the next clips' frames decode;
 * 'tfjs' runs backboneForward in the tfjs backend, `eval.batchVideos` clips at a time (the in-memory
 * extraction of src/train/features.ts, bit for bit). The two agree to float rounding (1e-4); on the full
 * RegNetY-200MF ONNX Runtime was ~3x faster in one side-by-side run (8 clips vs 3 at a batch of 1, on a
 * loaded 2-core machine), and the tfjs wasm heap (4 GiB) cannot hold a batch of 16 full-size clips (96
 * frames of 112 px) at all.
 *
 * @example
 * const r = await ensureFeatures({ datasetSpec: 'synthdive:clips=24', dataset, clips, config,
 *   backboneWeights: 'run/ckpt-0010/weights.safetensors', cacheDir: DEFAULT_FEATURE_CACHE });
 * r.features.get(clips[0].key); // Float32Array [T * D]
 * r.computed; r.reused;          // clips computed now / read back from disk
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from '../config.ts';
import { loadSampledFrames, packClips, type SampledClip } from '../data/clips.ts';
import { runGeometry } from '../data/open.ts';
import { type ClipTransform, transformClip } from '../data/transforms.ts';
import type { Frame, StagedDataset } from '../data/types.ts';
import { decoderId, SCALER } from '../data/video.ts';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import { type BackboneConfig, featureDim } from '../model/config.ts';
import { disposeParams } from '../model/params.ts';
import { backboneSpecs } from '../model/regnet.ts';
import { loadWeights } from '../model/weights.ts';
import { exportBackbone } from '../onnx/export.ts';
import { createSession, dispose, runBackbone } from '../onnx/runtime.ts';
import { createRng } from '../rng.ts';
import { extractFeatures } from './features.ts';

/** The default cache folder, relative to the current directory. */
export const DEFAULT_FEATURE_CACHE = path.join('.cache', 'mcore', 'features');

const FORMAT = 'mcore-features/1';

/** What computes the features (module doc). */
export type FeatureEngine = 'onnxruntime' | 'tfjs';
const HEADER = 'features.json';

/** Everything the features depend on; its hash is the cache key. */
export interface FeatureKeyMaterial {
  format: typeof FORMAT;
  /** sha256 (hex) of the backbone weights file's bytes. */
  backboneSha256: string;
  backbone: BackboneConfig;
  /** Frames per clip T. */
  frames: number;
  /** Model input size S. */
  imageSize: number;
  /** The test-time transform applied to the sampled frames. */
  transform: ClipTransform;
  /** The dataset spec text (`--dataset`). */
  dataset: string;
  /** The scaler video frames are resized with (src/data/video.ts); in every key, so that a change of
   * it invalidates the caches of video datasets (and, harmlessly, of the others once). */
  videoScaler: string;
  /** The video decoder (src/data/video.ts decoderId: the ffmpeg build); in every key, like videoScaler. */
  videoDecoder: string;
  /** The engine that ran the backbone (the two differ by float rounding). */
  engine: FeatureEngine;
}

/** The header `<cacheDir>/<key>/features.json`. */
export interface FeatureCacheHeader extends FeatureKeyMaterial {
  key: string;
  /** Feature width D. */
  D: number;
  /** Frames per clip T (= frames). */
  T: number;
  dtype: 'float32';
  byteOrder: 'little';
}

export interface EnsureFeaturesOptions {
  /** The dataset spec text `dataset` was opened from (part of the key). */
  datasetSpec: string;
  dataset: StagedDataset;
  /** The sampled clips to encode (their `frames` pick the frames). */
  clips: readonly SampledClip[];
  /** Path of the backbone weights (safetensors, torch layout). */
  backboneWeights: string;
  /** Uses model.backbone, model.frames, model.imageSize and eval.batchVideos (videos per forward). */
  config: RunConfig;
  cacheDir: string;
  /** Test-time transform; default: runGeometry(datasetSpec, imageSize).transform(false). */
  transform?: ClipTransform;
  /** (clips on disk, total) after the reused clips are counted and after every computed batch. */
  onProgress?: (done: number, total: number) => void;
  /** Checked before every batch; an aborted signal stops with its reason (clips done so far stay on disk). */
  signal?: AbortSignal;
  /** The engine of the backbone (module doc; default 'onnxruntime'). */
  engine?: FeatureEngine;
  /** ONNX Runtime intra-op threads (default 2). */
  threads?: number;
}

export interface FeatureCacheResult {
  /** The cache folder of this key. */
  dir: string;
  key: string;
  header: FeatureCacheHeader;
  /** Clip key -> features [T * D] (row-major [T, D]). */
  features: Map<string, Float32Array>;
  /** Clips encoded by this call. */
  computed: number;
  /** Clips read back from disk. */
  reused: number;
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level (a stable text to hash). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The key material of a dataset/config/backbone (the weights given by the sha256 of their bytes). */
export function featureKeyMaterial(opts: {
  datasetSpec: string;
  backboneSha256: string;
  config: RunConfig;
  transform?: ClipTransform;
  engine?: FeatureEngine;
}): FeatureKeyMaterial {
  const { model } = opts.config;
  return {
    format: FORMAT,
    backboneSha256: opts.backboneSha256,
    backbone: model.backbone,
    frames: model.frames,
    imageSize: model.imageSize,
    transform: opts.transform ?? runGeometry(opts.datasetSpec, model.imageSize).transform(false),
    dataset: opts.datasetSpec,
    videoScaler: SCALER,
    videoDecoder: decoderId(),
    engine: opts.engine ?? 'onnxruntime',
  };
}

/** The cache key of some key material: 32 hex digits of sha256(canonical JSON). */
export function featureCacheKey(material: FeatureKeyMaterial): string {
  return sha256(canonicalJson(material)).slice(0, 32);
}

/** The file (relative to the key folder) holding the features of clip `key`. */
export function clipFeatureFile(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
  return path.join('clips', `${readable}-${sha256(key).slice(0, 12)}.f32`);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

async function readClip(file: string, length: number): Promise<Float32Array | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    return undefined;
  }
  if (bytes.length !== length * 4) return undefined; // truncated by something other than us: recompute
  const out = new Float32Array(length);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

async function writeHeader(dir: string, header: FeatureCacheHeader): Promise<void> {
  const file = path.join(dir, HEADER);
  const text = `${JSON.stringify(header, null, 2)}\n`;
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing === undefined) {
    await writeFileAtomic(file, text);
    return;
  }
  let found: unknown;
  try {
    found = JSON.parse(existing);
  } catch {
    found = undefined;
  }
  if (canonicalJson(found) !== canonicalJson(header)) {
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${file}: the cache header does not match key ${header.key} (edited or corrupt); delete ${dir} to recompute its features`,
    );
  }
}

/** Removes temporary files left by a killed run. */
async function removeTemporaries(clipsDir: string): Promise<void> {
  const names = await readdir(clipsDir).catch(() => [] as string[]);
  for (const n of names) if (n.includes('.tmp-')) await rm(path.join(clipsDir, n), { force: true });
}

/** Loads and transforms the sampled frames of clips (test transform): [V, T, S, S, 3]. */
async function loadClips(
  dataset: StagedDataset,
  byKey: Map<string, SampledClip>,
  keys: readonly string[],
  transform: ClipTransform,
): Promise<tf.Tensor> {
  const frames: Frame[][] = [];
  for (const key of keys) frames.push(await loadSampledFrames(dataset, byKey.get(key)!));
  return packClips(frames, transform);
}

/** Clips whose frames are decoded ahead of the one in ONNX Runtime. */
const DECODE_AHEAD = 2;

/** [T, S, S, 3] (NHWC, transformClip) -> [T, 3, S, S] (NCHW, the ONNX graph's input). */
function toNchw(nhwc: Float32Array, T: number, S: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  const plane = S * S;
  for (let t = 0; t < T; t++) {
    const base = t * 3 * plane;
    for (let p = 0; p < plane; p++) {
      const i = base + p * 3;
      out[base + p] = nhwc[i];
      out[base + plane + p] = nhwc[i + 1];
      out[base + 2 * plane + p] = nhwc[i + 2];
    }
  }
  return out;
}

/**
 * The ONNX Runtime engine: each clip of `keys` through the backbone graph, one clip per run, the frames
 * of the next DECODE_AHEAD clips decoding meanwhile; `save` after each clip, then `progress(clips done)`.
 */
async function computeOnnx(
  graph: Uint8Array,
  keys: readonly string[],
  o: {
    load: (key: string) => Promise<Frame[]>;
    transform: ClipTransform;
    T: number;
    S: number;
    threads: number;
    signal?: AbortSignal;
    save: (key: string, f: Float32Array) => Promise<void>;
    progress: (done: number) => void;
  },
): Promise<void> {
  const { T, S } = o;
  const rng = createRng(0); // a test transform draws nothing
  const input = async (key: string): Promise<Float32Array> =>
    toNchw(transformClip(await o.load(key), o.transform, rng), T, S);
  const session = await createSession(graph, { threads: o.threads });
  const pending: Promise<Float32Array>[] = [];
  // a failed decode is rethrown when its turn comes; until then it must not count as unhandled
  const start = (i: number) => {
    if (i >= keys.length) return;
    const p = input(keys[i]);
    p.catch(() => undefined);
    pending[i] = p;
  };
  try {
    for (let i = 0; i < Math.min(DECODE_AHEAD, keys.length); i++) start(i);
    for (let i = 0; i < keys.length; i++) {
      if (o.signal?.aborted) throw abortReason(o.signal);
      const data = await pending[i];
      delete pending[i];
      start(i + DECODE_AHEAD);
      const out = await runBackbone(session, { data, dims: [T, 3, S, S] });
      await o.save(keys[i], new Float32Array(out.data));
      o.progress(i + 1);
    }
  } finally {
    await dispose(session);
  }
}

/**
 * Returns the features of every clip, computing (with `engine`, each clip file written as soon as it
 * is done) only those not yet in `<cacheDir>/<key>/`. The backbone weights
 * are hashed for the key and loaded only when some clip is missing.
 */
export async function ensureFeatures(opts: EnsureFeaturesOptions): Promise<FeatureCacheResult> {
  const { config, clips, signal } = opts;
  const model = config.model;
  await refuseSpecialFile(opts.backboneWeights, 'E_INPUT');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(opts.backboneWeights);
  } catch {
    throw new McoreError(
      'E_INPUT',
      `${opts.backboneWeights}: cannot read the backbone weights; pass a safetensors file (e.g. RUN/ckpt-NNNN/weights.safetensors)`,
    );
  }
  const transform = opts.transform ?? runGeometry(opts.datasetSpec, model.imageSize).transform(false);
  const engine = opts.engine ?? 'onnxruntime';
  const material = featureKeyMaterial({
    datasetSpec: opts.datasetSpec,
    backboneSha256: sha256(bytes),
    config,
    transform,
    engine,
  });
  const key = featureCacheKey(material);
  const T = model.frames;
  const D = featureDim(model);
  const header: FeatureCacheHeader = { ...material, key, D, T, dtype: 'float32', byteOrder: 'little' };
  const dir = path.join(opts.cacheDir, key);
  const clipsDir = path.join(dir, 'clips');
  await mkdir(clipsDir, { recursive: true });
  await writeHeader(dir, header);
  await removeTemporaries(clipsDir);

  const features = new Map<string, Float32Array>();
  const missing: string[] = [];
  for (const c of clips) {
    if (c.frames.length !== T) {
      throw new McoreError(
        'E_SHAPE',
        `clip '${c.key}': ${c.frames.length} sampled frames, model.frames is ${T}`,
      );
    }
    const f = await readClip(path.join(dir, clipFeatureFile(c.key)), T * D);
    if (f) features.set(c.key, f);
    else missing.push(c.key);
  }
  const total = clips.length;
  const reused = features.size;
  opts.onProgress?.(reused, total);

  if (missing.length > 0) {
    const specs = backboneSpecs(model.backbone, 'backbone');
    const { params } = await loadWeights(bytes, specs, opts.backboneWeights);
    const byKey = new Map(clips.map((c) => [c.key, c]));
    const save = async (k: string, f: Float32Array): Promise<void> => {
      await writeFileAtomic(
        path.join(dir, clipFeatureFile(k)),
        new Uint8Array(f.buffer, f.byteOffset, f.byteLength),
      );
      features.set(k, f);
    };
    if (engine === 'onnxruntime') {
      let graph: Uint8Array;
      try {
        graph = exportBackbone(params, model.backbone, { frames: T });
      } finally {
        disposeParams(params);
      }
      await computeOnnx(graph, missing, {
        load: (k) => loadSampledFrames(opts.dataset, byKey.get(k)!),
        transform,
        T,
        S: model.imageSize,
        threads: opts.threads ?? 2,
        signal,
        save,
        progress: (n) => opts.onProgress?.(reused + n, total),
      });
    } else {
      const batch = config.eval.batchVideos;
      try {
        for (let i = 0; i < missing.length; i += batch) {
          if (signal?.aborted) throw abortReason(signal);
          const chunk = missing.slice(i, i + batch);
          const got = await extractFeatures(
            params,
            model,
            chunk,
            (keys) => loadClips(opts.dataset, byKey, keys, transform),
            { batch: chunk.length },
          );
          for (const k of chunk) await save(k, got.get(k)!);
          opts.onProgress?.(reused + i + chunk.length, total);
        }
      } finally {
        disposeParams(params);
      }
    }
  }
  return { dir, key, header, features, computed: missing.length, reused };
}
