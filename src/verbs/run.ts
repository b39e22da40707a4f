/**
 * A training run on disk, as `mcore train` and `mcore eval` use it: the dataset and config are recorded
 * in the checkpoint, so `resume` and `eval` rebuild exactly the same model and data. Paths are recorded
 * absolute (dataset, backbone weights, feature cache), so a run is evaluated the same from any directory.
 */
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from '../config.ts';
import { type ClipSource, featureSource, frameSource, type SampledClip, sampleClips } from '../data/clips.ts';
import { openDataset, runGeometry } from '../data/open.ts';
import type { StagedDataset } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { type EvalResult, evaluate } from '../eval/evaluate.ts';
import { honestyWarnings, type ReferencePoints, referencePoints } from '../eval/reference.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { openGradientPool } from '../methods/gradient-pool.ts';
import { createMethod, type MethodName, type MethodOptions } from '../methods/registry.ts';
import { featureDim } from '../model/config.ts';
import { assignParams, disposeParams, initParams, type Params } from '../model/params.ts';
import { backboneSpecs } from '../model/regnet.ts';
import { loadWeights } from '../model/weights.ts';
import { createRng } from '../rng.ts';
import { createAdamState, disposeAdamState } from '../train/adam.ts';
import { checkpointFolderName, loadCheckpoint } from '../train/checkpoint.ts';
import { DEFAULT_FEATURE_CACHE, ensureFeatures } from '../train/feature-cache.ts';
import type { Method } from '../train/method.ts';
import type { GradientPool } from '../train/parallel.ts';
import { RunFolder, readRunRecord } from '../train/run-folder.ts';
import { absoluteRunRecord, type RunRecord } from '../train/run-record.ts';
import { holdOutValidation } from '../train/validation.ts';

export { absoluteRunRecord, type RunRecord, readRunRecord };

import { type ExplicitStageSettings, stagesFromDataset } from '../train/stages.ts';
import {
  type EpochRecord,
  type TrainEvent,
  type TrainOptions,
  type TrainState,
  train,
} from '../train/trainer.ts';

export interface RunData {
  dataset: StagedDataset;
  clips: SampledClip[];
  train: SampledClip[];
  test: SampledClip[];
  source: ClipSource & { loadTest(keys: string[]): Promise<tf.Tensor> };
}

/** The options of the run's method (createMethod). */
function methodOptionsOf(record: RunRecord): MethodOptions {
  const cfg = record.config;
  return { backbone: cfg.train.mode === 'end-to-end', loss: cfg.loss, scoreScale: cfg.train.scoreScale };
}

export function methodOf(record: RunRecord): Method {
  return createMethod(record.method ?? 'mcore', record.config.model, methodOptionsOf(record));
}

/**
 * The initial parameters of a fresh run: initialised from train.seed, and for an end-to-end run with
 * `backboneWeights` the backbone (and GSM) replaced by those weights (every backbone parameter must be
 * in the file, with its shape: else E_WEIGHTS naming the file and the keys).
 */
export async function initRunParams(record: RunRecord, method: Method): Promise<Params> {
  const cfg = record.config;
  const params = initParams(method.specs, createRng(cfg.train.seed));
  if (cfg.train.mode !== 'end-to-end' || !record.backboneWeights) return params;
  try {
    const { params: backbone } = await loadWeights(
      record.backboneWeights,
      backboneSpecs(cfg.model.backbone, 'backbone'),
    );
    assignParams(params, backbone);
    disposeParams(backbone);
    return params;
  } catch (err) {
    disposeParams(params);
    throw err;
  }
}

export interface OpenRunDataOptions {
  /** Feature cache folder of head-only runs (default DEFAULT_FEATURE_CACHE, under the current directory). */
  featureCache?: string;
  /** Feature extraction progress (clips done, total). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Decoded frames kept in memory, in bytes (default FRAME_CACHE_BYTES, 2 GiB). */
  frameCacheBytes?: number;
}

/**
 * Opens the dataset and the input source of a run: frames (read and cropped with the dataset's run
 * geometry, src/data/open.ts), or for head-only runs the backbone features from the on-disk feature
 * cache (src/train/feature-cache.ts), computed there once and reused by later and resumed runs.
 */
export async function openRunData(record: RunRecord, opts: OpenRunDataOptions = {}): Promise<RunData> {
  const cfg = record.config;
  const S = cfg.model.imageSize;
  const geometry = runGeometry(record.dataset, S);
  const dataset = await openDataset(record.dataset, { width: geometry.width, height: geometry.height });
  const clips = sampleClips(dataset, cfg.model.frames);
  const unlabelled = clips.find((c) => c.stageQualities === undefined);
  if (cfg.loss.qualityWeight > 0 && unlabelled) {
    throw new McoreError(
      'E_CONFIG',
      `loss.qualityWeight=${cfg.loss.qualityWeight} needs the hidden stage qualities of every clip, but ` +
        `'${unlabelled.key}' of ${record.dataset} has none (only SynthDive has them); set loss.qualityWeight=0`,
    );
  }
  const frames = frameSource(dataset, clips, geometry.transform, { cacheBytes: opts.frameCacheBytes });
  let source: RunData['source'] = frames;
  if (cfg.train.mode === 'head-only') {
    if (!record.backboneWeights) {
      throw new McoreError(
        'E_CONFIG',
        'train.mode=head-only needs backbone weights for the features: pass --backbone RUN/ckpt-NNNN/weights.safetensors (e.g. from an end-to-end run)',
      );
    }
    const { features } = await ensureFeatures({
      datasetSpec: record.dataset,
      dataset,
      clips,
      backboneWeights: record.backboneWeights,
      config: cfg,
      cacheDir: opts.featureCache ?? DEFAULT_FEATURE_CACHE,
      transform: geometry.transform(false),
      onProgress: opts.onProgress,
      signal: opts.signal,
    });
    source = featureSource(clips, features, cfg.model.frames, featureDim(cfg.model));
  }
  return {
    dataset,
    clips,
    train: clips.filter((c) => c.info.split === 'train'),
    test: clips.filter((c) => c.info.split === 'test'),
    source,
  };
}

/** The trainer's options as a run config sets them (Adam betas and eps as PyTorch's defaults). */
export function trainOptionsOf(
  cfg: RunConfig,
): Pick<TrainOptions, 'epochs' | 'batchPairs' | 'seed' | 'dn' | 'crossTypeShare' | 'schedule' | 'adam'> {
  const t = cfg.train;
  return {
    epochs: t.epochs,
    batchPairs: t.batchPairs,
    seed: t.seed,
    dn: t.dn,
    crossTypeShare: t.crossTypeShare,
    schedule: t.schedule,
    adam: { lr: t.lr, backboneLrScale: t.backboneLrScale, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  };
}

export interface TrainRunOptions {
  out: string;
  resume: boolean;
  /** Replace the run already in `out` (its checkpoints and log); see src/train/run-folder.ts. */
  overwrite?: boolean;
  onProgress?: (
    e:
      | TrainEvent
      | { kind: 'features'; done: number; total: number }
      | { kind: 'validation'; epoch: number; srcc: number; bestEpoch: number; bestSrcc: number },
  ) => void;
  signal?: AbortSignal;
  /** Feature cache folder of head-only runs (default DEFAULT_FEATURE_CACHE). */
  featureCache?: string;
  /** Decoded frames kept in memory, in bytes (default FRAME_CACHE_BYTES, 2 GiB). */
  frameCacheBytes?: number;
  /**
   * Which of model.stages and loss.tasWeights the user set: those are checked against the dataset's
   * K, the others derived from it (default: both derived).
   */
  explicitStages?: ExplicitStageSettings;
}

/**
 * Trains (or resumes) the run in `opts.out`; one checkpoint per epoch, one JSON line per epoch in
 * log.jsonl. The folder is locked while training and refused when it holds anything, unless resumed or
 * overwritten (src/train/run-folder.ts).
 */
export async function trainRun(
  record: RunRecord,
  opts: TrainRunOptions,
): Promise<Pick<TrainState, 'epoch' | 'history'>> {
  const folder = await RunFolder.open(opts.out, { resume: opts.resume, overwrite: opts.overwrite });
  try {
    return await trainInFolder(record, opts, folder);
  } finally {
    await folder.release();
  }
}

async function trainInFolder(
  record: RunRecord,
  opts: TrainRunOptions,
  folder: RunFolder,
): Promise<Pick<TrainState, 'epoch' | 'history'>> {
  record = absoluteRunRecord(record, opts.featureCache);
  const data = await openRunData(record, {
    featureCache: record.featureCache,
    frameCacheBytes: opts.frameCacheBytes,
    onProgress: (done, total) => opts.onProgress?.({ kind: 'features', done, total }),
    signal: opts.signal,
  });
  // K (model.stages) from the dataset's stage names (src/train/stages.ts).
  record = {
    ...record,
    config: stagesFromDataset(record.config, data.dataset.stageNames, record.dataset, opts.explicitStages),
  };
  const method = methodOf(record);
  let params: Params;
  let state: TrainState | undefined;
  if (opts.resume) {
    const { record: stored } = await readRunRecord(opts.out);
    // Resuming may extend a run (more epochs) and change evaluation settings; everything that shapes
    // training must be what the run was started with (the feature cache is only where features live).
    const shape = (r: RunRecord) => ({
      ...r,
      featureCache: null,
      method: r.method ?? 'mcore',
      config: { ...r.config, train: { ...r.config.train, epochs: 0 }, eval: null },
    });
    const changed = differences(shape(stored), shape(record));
    if (changed.length > 0) {
      throw new McoreError(
        'E_CONFIG',
        `${opts.out}: --resume with a different dataset or config than the run was started with ` +
          `(${changed.slice(0, 5).join('; ')}); drop the new options or use a new --out`,
      );
    }
    ({ params, state } = await loadCheckpoint<RunRecord>(opts.out, method.specs));
  } else {
    params = await initRunParams(record, method);
  }
  const cfg = record.config;
  const trainState: TrainState = state ?? { epoch: 0, adam: createAdamState(), history: [] };
  // train.validation: a share of the training clips held out; the best epoch by their SRCC is kept in RUN/best.
  let source = data.source;
  let validate: ((p: Params) => Promise<number>) | undefined;
  let heldOut = 0;
  if (cfg.train.validation > 0) {
    const { fit, val } = holdOutValidation(data.source.clips, cfg.train.validation, cfg.train.seed);
    source = { ...data.source, clips: fit };
    heldOut = val.length;
    validate = async (p) =>
      (
        await evaluate(method, p, fit, val, {
          exemplars: cfg.eval.exemplars,
          dn: false,
          seed: cfg.train.seed + 1,
          batchVideos: cfg.eval.batchVideos,
          load: (keys) => data.source.loadTest(keys),
        })
      ).metrics.srcc;
  }
  const validationOf = (r: EpochRecord) => r.metrics?.validationSrcc ?? Number.NEGATIVE_INFINITY;
  let best = trainState.history.reduce<EpochRecord | undefined>(
    (b, r) => (b === undefined || validationOf(r) > validationOf(b) ? r : b),
    undefined,
  );
  let pool: GradientPool | undefined;
  try {
    await folder.startLog(trainState.history);
    if (cfg.train.threads > 1) {
      pool = await openGradientPool({
        method: record.method ?? 'mcore',
        model: cfg.model,
        options: methodOptionsOf(record),
        params,
        threads: cfg.train.threads,
      });
    }
    await train(method, params, source, {
      ...trainOptionsOf(cfg),
      pool,
      state: trainState,
      signal: opts.signal,
      onProgress: opts.onProgress,
      saveCheckpoint: async (p, s) => {
        const epoch = s.history[s.history.length - 1];
        const srcc = validate ? await validate(p) : undefined;
        if (srcc !== undefined) epoch.metrics = { ...epoch.metrics, validationSrcc: srcc };
        const file = await folder.saveEpoch(p, method.specs, s, record);
        if (srcc !== undefined) {
          const improved = best === undefined || validationOf(epoch) > validationOf(best);
          if (improved) {
            best = epoch;
            await folder.saveBest(path.join(folder.dir, checkpointFolderName(s.epoch)), {
              epoch: s.epoch,
              srcc,
              history: s.history.map((r) => r.metrics?.validationSrcc ?? Number.NaN),
              clips: heldOut,
            });
          }
          opts.onProgress?.({
            kind: 'validation',
            epoch: s.epoch,
            srcc,
            bestEpoch: best!.epoch + 1, // EpochRecord.epoch counts from 0
            bestSrcc: validationOf(best!),
          });
        }
        return file;
      },
    });
    return { epoch: trainState.epoch, history: trainState.history };
  } finally {
    // Everything that matters is in the checkpoints; the tensors go, whether training ended or was killed.
    await pool?.close();
    disposeParams(params);
    disposeAdamState(trainState.adam);
  }
}

export interface EvalRunOptions {
  /** The latest checkpoint (default) or the best by validation SRCC (a run with train.validation > 0). */
  checkpoint?: 'latest' | 'best';
  exemplars?: number;
  /** The protocol: exemplars of the query's action type (true) or from the whole training split (default: the run's eval.dn, false unless set). */
  dn?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Comparison progress: test queries compared with their exemplars (both protocols; src/eval/evaluate.ts). */
  onCompare?: (done: number, total: number) => void;
  /** Feature extraction progress of a head-only run whose features are not cached yet. */
  onFeatures?: (done: number, total: number) => void;
  /** Feature cache folder of head-only runs (default: the run's recorded cache, else DEFAULT_FEATURE_CACHE). */
  featureCache?: string;
  /** Decoded frames kept in memory, in bytes (default FRAME_CACHE_BYTES, 2 GiB). */
  frameCacheBytes?: number;
}

/** What `evalRun` gives: the model's result, the split's reference points and the warnings. */
export interface EvalRunResult extends EvalResult {
  /** The run's method. */
  method: MethodName;
  dn: boolean;
  exemplars: number;
  references: ReferencePoints;
  /** honestyWarnings (src/eval/reference.ts): empty when the model clearly beats the references. */
  warnings: string[];
  /** The result file written: RUN/eval-dn.json or RUN/eval-no-dn.json. */
  file: string;
}

/** The result file of a protocol: one per protocol, so that evaluating with the other keeps both. */
export function evalFileName(dn: boolean, checkpoint: 'latest' | 'best' = 'latest'): string {
  return `eval-${checkpoint === 'best' ? 'best-' : ''}${dn ? 'dn' : 'no-dn'}.json`;
}

/**
 * Evaluates the latest checkpoint of a run on its dataset's test split, with the reference points of
 * that split (src/eval/reference.ts); writes RUN/eval-dn.json or RUN/eval-no-dn.json.
 */
export async function evalRun(runDir: string, opts: EvalRunOptions = {}): Promise<EvalRunResult> {
  const { info, record } = await readRunRecord(runDir, opts.checkpoint);
  const method = methodOf(record);
  const data = await openRunData(record, {
    featureCache: opts.featureCache ?? record.featureCache,
    frameCacheBytes: opts.frameCacheBytes,
    onProgress: opts.onFeatures,
  });
  // Only the weights: evaluation needs no optimizer state.
  const { params } = await loadWeights(path.join(runDir, info.folder, 'weights.safetensors'), method.specs);
  const cfg = record.config;
  const exemplars = opts.exemplars ?? cfg.eval.exemplars;
  const dn = opts.dn ?? cfg.eval.dn;
  const load = (keys: string[]) => data.source.loadTest(keys);
  let result: EvalResult;
  try {
    result = await evaluate(method, params, data.train, data.test, {
      exemplars,
      dn,
      seed: cfg.train.seed + 1,
      batchVideos: cfg.eval.batchVideos,
      load,
      onProgress: opts.onProgress,
      onCompare: opts.onCompare,
    });
  } finally {
    disposeParams(params);
  }
  const references = await referencePoints(data.train, data.test, {
    load,
    batchVideos: cfg.eval.batchVideos,
    seed: cfg.train.seed,
  });
  const warnings = honestyWarnings(result.metrics, references);
  const file = path.join(runDir, evalFileName(dn, opts.checkpoint));
  await writeFileAtomic(
    file,
    `${JSON.stringify(
      {
        epoch: info.epoch,
        method: record.method ?? 'mcore',
        exemplars,
        dn,
        metrics: result.metrics,
        references,
        warnings,
        predictions: result.predictions,
      },
      null,
      2,
    )}\n`,
  );
  return { ...result, method: record.method ?? 'mcore', dn, exemplars, references, warnings, file };
}

/** Where two JSON values differ: `path: before -> after` for each differing leaf (dotted paths). */
export function differences(before: unknown, after: unknown, at = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => differences(before[k], after[k], at ? `${at}.${k}` : k));
  }
  const a = JSON.stringify(before);
  const b = JSON.stringify(after);
  return a === b ? [] : [`${at || 'the record'} ${a ?? 'unset'} -> ${b ?? 'unset'}`];
}
