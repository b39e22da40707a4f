/**
 * The verb behind `mcore export --run RUN --out BUNDLE`: a run folder's latest checkpoint as a scoring
 * bundle (src/score/export.ts writes it).
 *
 * @example
 * const manifest = await exportRunBundle('runs/a', 'runs/a/bundle', { onProgress: console.error });
 * // runs/a/bundle/{manifest.json, backbone.onnx, segmenter.onnx, scorer.onnx, exemplars.*}
 */
import path from 'node:path';
import { loadSampledFrames, sampleClips } from '../data/clips.ts';
import { openDataset, runGeometry } from '../data/open.ts';
import { McoreError } from '../errors.ts';
import { disposeParams } from '../model/params.ts';
import { backboneSpecs } from '../model/regnet.ts';
import { loadWeights } from '../model/weights.ts';
import { type BundleManifest, squeezeCropTransform } from '../score/bundle.ts';
import { type ExportEvent, exportBundle } from '../score/export.ts';
import { DEFAULT_FEATURE_CACHE, ensureFeatures } from '../train/feature-cache.ts';
import { methodOf, readRunRecord } from './run.ts';

export interface RunExportOptions {
  /** The latest checkpoint (default) or the best by validation SRCC (a run with train.validation > 0). */
  checkpoint?: 'latest' | 'best';
  batch?: number;
  threads?: number;
  /** Feature cache folder of a head-only run (default: the run's recorded cache, else DEFAULT_FEATURE_CACHE). */
  featureCache?: string;
  onProgress?: (e: ExportEvent | { kind: 'features'; done: number; total: number }) => void;
}

/**
 * Exports the latest checkpoint of the run in `runDir` (written by `mcore train`) as a bundle in
 * `outDir`: the run's model and scoreScale, its dataset's stage names, and an exemplar bank of every
 * clip of the dataset's training split, sampled to T frames as training does. A head-only run takes its
 * backbone from the weights it recorded, and the exemplars' backbone features from its feature cache
 * (computed by the same ONNX graph as the bundle's backbone; the clips missing there are computed into
 * it first, resumably): only the segmenter runs for the bank. Needs a tfjs backend (weights are read
 * through tfjs).
 */
export async function exportRunBundle(
  runDir: string,
  outDir: string,
  opts: RunExportOptions = {},
): Promise<BundleManifest> {
  const { info, record } = await readRunRecord(runDir, opts.checkpoint);
  if ((record.method ?? 'mcore') !== 'mcore') {
    throw new McoreError(
      'E_INPUT',
      `${runDir}: a '${record.method}' run cannot be exported; scoring bundles hold MCoRe models (train with --method mcore)`,
    );
  }
  const cfg = record.config;
  const method = methodOf(record);
  const { params } = await loadWeights(path.join(runDir, info.folder, 'weights.safetensors'), method.specs);
  try {
    if (cfg.train.mode === 'head-only') {
      if (!record.backboneWeights) {
        throw new McoreError(
          'E_CONFIG',
          `${runDir}: a head-only run without recorded backbone weights cannot be exported`,
        );
      }
      const backbone = await loadWeights(
        record.backboneWeights,
        backboneSpecs(cfg.model.backbone, 'backbone'),
      );
      Object.assign(params, backbone.params);
    }
    // The run's own geometry (FineDiving: squeeze to S x S*200/112, centre crop S), so exemplars and
    // scored queries see frames as the model saw them in training.
    const S = cfg.model.imageSize;
    const geometry = runGeometry(record.dataset, S);
    const dataset = await openDataset(record.dataset, { width: geometry.width, height: geometry.height });
    const clips = sampleClips(dataset, cfg.model.frames).filter((c) => c.info.split === 'train');
    const byKey = new Map(clips.map((c) => [c.key, c]));
    let features: Map<string, Float32Array> | undefined;
    if (cfg.train.mode === 'head-only') {
      const cached = await ensureFeatures({
        datasetSpec: record.dataset,
        dataset,
        clips,
        backboneWeights: record.backboneWeights!,
        config: cfg,
        cacheDir: opts.featureCache ?? record.featureCache ?? DEFAULT_FEATURE_CACHE,
        transform: geometry.transform(false),
        threads: opts.threads,
        onProgress: (done, total) => opts.onProgress?.({ kind: 'features', done, total }),
      });
      features = cached.features;
    }
    return await exportBundle(outDir, params, {
      model: cfg.model,
      scoreScale: cfg.train.scoreScale,
      stageNames: dataset.stageNames,
      transform: squeezeCropTransform(geometry.width, geometry.height, S),
      source: { dataset: record.dataset, run: path.resolve(runDir), epoch: info.epoch },
      exemplars: clips.map((c) => ({ key: c.key, actionType: c.actionType, score: c.score })),
      loadFrames: (key) => loadSampledFrames(dataset, byKey.get(key)!),
      ...(features ? { loadFeatures: async (key: string) => features.get(key)! } : {}),
      batch: opts.batch,
      threads: opts.threads,
      onProgress: opts.onProgress,
    });
  } finally {
    disposeParams(params);
  }
}
