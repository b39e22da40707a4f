import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Params } from '../model/params.ts';
import { exportBackbone, exportScorer, exportSegmenter } from '../onnx/export.ts';
import { dispose } from '../onnx/runtime.ts';
import {
  type BundleGraphs,
  type BundleManifest,
  type BundleTransform,
  type ExemplarRecord,
  lockBundle,
  makeManifest,
  writeBundle,
} from './bundle.ts';
import { encodeFeatures, toModelInput } from './encode.ts';
import { scorerWithTokenDeltas } from './scorer-graph.ts';
import { createVideoEncoder, openSessions } from './sessions.ts';

/** A training clip for the exemplar bank. */
export interface ExemplarClip {
  key: string;
  actionType: string;
  score: number;
}

export type ExportEvent = { kind: 'graphs' } | { kind: 'exemplars'; done: number; total: number };

export interface BundleExportOptions {
  model: ModelConfig;
  /** train.scoreScale of the run: score = y_e + scoreScale * delta. */
  scoreScale: number;
  stageNames: readonly string[];
  /** Default: squareTransform(model.imageSize), the training transform of src/verbs/run.ts. */
  transform?: BundleTransform;
  source?: BundleManifest['source'];
  /** The training clips that make up the exemplar bank. */
  exemplars: readonly ExemplarClip[];
  /** The T sampled frames of a clip, at the transform's resize size. */
  loadFrames(key: string): Promise<Frame[]>;
  /**
   * The backbone features [T * D] (row-major [T, D]) of a clip as the bundle's backbone graph computes
   * them (a head-only run's feature cache, src/train/feature-cache.ts, engine 'onnxruntime'). When
   * given, the bank is built from them with the segmenter alone: no frame is decoded, no backbone run.
   */
  loadFeatures?(key: string): Promise<Float32Array>;
  /** Videos per backbone run while building the bank (default 4). */
  batch?: number;
  /** ONNX Runtime intra-op threads (default 2). */
  threads?: number;
  onProgress?: (e: ExportEvent) => void;
}

/** The bundle's graphs from parameters (backbone, segmenter and head parameters all present). */
export function bundleGraphs(params: Params, model: ModelConfig): BundleGraphs {
  return {
    backbone: exportBackbone(params, model.backbone, { frames: model.frames }),
    segmenter: exportSegmenter(params, model),
    scorer: scorerWithTokenDeltas(exportScorer(params, model)),
  };
}

/**
 * Writes a complete bundle to `dir` from `params` (not disposed): graphs, the exemplar bank of
 * `opts.exemplars` (each clip encoded once in ONNX Runtime), then the manifest, replacing any bundle
 * in `dir` as a whole. The bundle's lock is held from the start: a second export to the same folder
 * is refused at once (E_BUSY). Returns the manifest.
 */
export async function exportBundle(
  dir: string,
  params: Params,
  opts: BundleExportOptions,
): Promise<BundleManifest> {
  const lock = await lockBundle(dir);
  try {
    return await exportLocked(dir, params, opts);
  } finally {
    await lock.release();
  }
}

async function exportLocked(dir: string, params: Params, opts: BundleExportOptions): Promise<BundleManifest> {
  const manifest = makeManifest(opts.model, {
    stageNames: opts.stageNames,
    scoreScale: opts.scoreScale,
    transform: opts.transform,
    source: opts.source,
  });
  const graphs = bundleGraphs(params, opts.model);
  opts.onProgress?.({ kind: 'graphs' });
  const T = manifest.frames;
  const S = manifest.transform.crop;
  const perVideo = manifest.stages * manifest.tokensPerStage * manifest.featureDim;
  const clips = opts.exemplars;
  const batch = Math.max(1, opts.batch ?? 4);
  const tokens = new Float32Array(clips.length * perVideo);
  const records: ExemplarRecord[] = [];
  const record = (c: ExemplarClip, transitions: number[]) =>
    records.push({ key: c.key, actionType: c.actionType, score: c.score, transitions });
  if (opts.loadFeatures) {
    await bankFromFeatures(graphs.segmenter, manifest, clips, opts.loadFeatures, {
      batch,
      threads: opts.threads,
      tokens,
      record,
      onProgress: opts.onProgress,
    });
    await writeBundle(dir, { manifest, graphs, exemplars: { records, tokens } }, { locked: true });
    return manifest;
  }
  const encoder = await createVideoEncoder(graphs, { ...manifest, crop: S }, { threads: opts.threads });
  const load = async (from: number): Promise<Float32Array> => {
    const chunk = clips.slice(from, from + batch);
    const input = new Float32Array(chunk.length * T * 3 * S * S);
    for (let j = 0; j < chunk.length; j++) {
      const frames = await opts.loadFrames(chunk[j].key);
      if (frames.length !== T) {
        throw new McoreError(
          'E_INPUT',
          `exemplar '${chunk[j].key}': ${frames.length} frames, expected T = ${T}`,
        );
      }
      toModelInput(frames, manifest.transform, input, j * T * 3 * S * S);
    }
    return input;
  };
  // The next batch's frames load while the current batch runs; a noop handler marks a failure of that
  // load as handled until it is awaited (and rethrown) in its turn.
  const prefetch = (from: number): Promise<Float32Array> | undefined => {
    if (from >= clips.length) return undefined;
    const p = load(from);
    p.catch(() => undefined);
    return p;
  };
  try {
    let pending = prefetch(0);
    for (let i = 0; i < clips.length; i += batch) {
      const input = await pending!;
      pending = prefetch(i + batch);
      const V = Math.min(batch, clips.length - i);
      const enc = await encoder.encode(input, V);
      tokens.set(enc.tokens, i * perVideo);
      for (let j = 0; j < V; j++) record(clips[i + j], enc.transitions[j]);
      opts.onProgress?.({ kind: 'exemplars', done: i + V, total: clips.length });
    }
  } finally {
    await encoder.dispose();
  }
  await writeBundle(dir, { manifest, graphs, exemplars: { records, tokens } }, { locked: true });
  return manifest;
}

/**
 * The exemplar bank from backbone features: per batch of clips, `encodeFeatures` (./encode.ts, what the
 * video encoder runs after its backbone) on their features [V, T, D].
 */
async function bankFromFeatures(
  segmenterGraph: Uint8Array,
  manifest: BundleManifest,
  clips: readonly ExemplarClip[],
  loadFeatures: (key: string) => Promise<Float32Array>,
  o: {
    batch: number;
    threads?: number;
    tokens: Float32Array;
    record: (c: ExemplarClip, transitions: number[]) => void;
    onProgress?: (e: ExportEvent) => void;
  },
): Promise<void> {
  const { frames: T, featureDim: D, stages: K, tokensPerStage: L } = manifest;
  const perVideo = K * L * D;
  const { segmenter } = await openSessions({ segmenter: segmenterGraph }, { threads: o.threads });
  try {
    for (let i = 0; i < clips.length; i += o.batch) {
      const chunk = clips.slice(i, i + o.batch);
      const V = chunk.length;
      const features = new Float32Array(V * T * D);
      for (let j = 0; j < V; j++) {
        const f = await loadFeatures(chunk[j].key);
        if (f.length !== T * D) {
          throw new McoreError(
            'E_SHAPE',
            `exemplar '${chunk[j].key}': ${f.length} feature values, expected T x D = ${T} x ${D}`,
          );
        }
        features.set(f, j * T * D);
      }
      const { transitions, tokens } = await encodeFeatures(segmenter, features, V, manifest);
      o.tokens.set(tokens, i * perVideo);
      for (let j = 0; j < V; j++) o.record(chunk[j], transitions[j]);
      o.onProgress?.({ kind: 'exemplars', done: i + V, total: clips.length });
    }
  } finally {
    await dispose(segmenter);
  }
}
