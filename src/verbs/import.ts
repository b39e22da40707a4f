/**
 * The library verb behind `mcore import` (src/cli/import.ts): imports weights trained in PyTorch: the MCoRe reference's `last.pth` (spec section 8), timm's
 * `regnety_002` (backbone only) or an mcore weights file, read by src/io/torch.ts and renamed by
 * src/model/import-map.ts. With a folder as --out it writes a scoring bundle (src/score/bundle.ts) with
 * the reference's test protocol: T sampled frames (96 for mcore-regnety002), frames squeezed to S wide x
 * round(S * 200 / 112) high (112 x 200), the centre S x S crop, ImageNet normalisation, scoreScale 1 (raw
 * dive scores), and an exemplar bank of the training clips of DATASET. With a `.safetensors` file as
 * --out it writes the weights (mcore names, torch layout; `mcore train --backbone FILE` takes timm's)
 * and a JSON sidecar with the model config and the import report.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { runConfigSchema } from '../config.ts';
import { sampleClips } from '../data/clips.ts';
import { openDataset } from '../data/open.ts';
import { IMAGENET_MEAN, IMAGENET_STD, resizeNearest } from '../data/transforms.ts';
import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import { flattenStateDicts, readTorchCheckpoint } from '../io/torch.ts';
import { MODEL_VARIANTS, type ModelConfig, type ModelVariant, modelConfig } from '../model/config.ts';
import { type ImportedWeights, importParams, type WeightSource } from '../model/import-map.ts';
import { disposeParams } from '../model/params.ts';
import { saveWeights } from '../model/weights.ts';
import type { BundleManifest, BundleTransform } from '../score/bundle.ts';
import { exportBundle } from '../score/export.ts';
import { VERSION } from '../version.ts';

/**
 * The reference's test transform at image size S (tools/builder.py of the reference: Resize((200, 112)),
 * CenterCrop(112), ImageNet Normalize): squeeze to S x round(S * 200 / 112), centre crop S.
 */
export function referenceBundleTransform(S: number): BundleTransform {
  return {
    resize: { width: S, height: Math.round((S * 200) / 112), fit: 'squeeze' },
    crop: S,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
  };
}

/** `--model`: a variant name or a JSON file holding a ModelConfig. */
export async function resolveModel(value: string): Promise<ModelConfig> {
  if (Object.hasOwn(MODEL_VARIANTS, value)) return modelConfig(value as ModelVariant);
  if (!/\.json$/i.test(value)) {
    throw new McoreError(
      'E_CONFIG',
      `--model ${value}: not a variant (${Object.keys(MODEL_VARIANTS).join(', ')}) nor a .json model config`,
    );
  }
  await refuseSpecialFile(value, 'E_CONFIG', '--model');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(value, 'utf8'));
  } catch (e) {
    throw new McoreError('E_CONFIG', `--model ${value}: cannot read JSON (${(e as Error).message})`);
  }
  const parsed = runConfigSchema.shape.model.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.message} at ${i.path.join('.') || '(root)'}`);
    throw new McoreError('E_CONFIG', `--model ${value}: invalid model config: ${issues.join('; ')}`);
  }
  return parsed.data as ModelConfig;
}

/** Counts of names by group (`EnhNet_model.enhance.*`, `*.num_batches_tracked`, ...), for the summary. */
export function groupNames(names: readonly string[]): { group: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const n of names) {
    const parts = n.split('.');
    const group = n.endsWith('.num_batches_tracked')
      ? '*.num_batches_tracked'
      : `${parts.slice(0, Math.min(2, parts.length - 1)).join('.')}.*`;
    counts.set(group, (counts.get(group) ?? 0) + 1);
  }
  return [...counts].map(([group, count]) => ({ group, count }));
}

export interface ImportCheckpointOptions {
  /** A bundle folder, or a `.safetensors` weights file. */
  out: string;
  model: ModelConfig;
  /** The exemplar bank's dataset (any spec of src/data/open.ts); required for a bundle. */
  exemplars?: string;
  source?: WeightSource;
  batch?: number;
  threads?: number;
  onExemplars?: (done: number, total: number) => void;
}

export interface ImportSummary {
  checkpoint: string;
  out: string;
  kind: 'bundle' | 'weights';
  source: WeightSource;
  imported: number;
  /** Our names left at their initialisation (timm: the GSMs), sorted. */
  initialised: string[];
  /** File entries not used, sorted; `other` lists non-tensor entries such as the optimizer state. */
  unused: string[];
  other: string[];
  /** Numbers and strings saved beside the weights (epoch, rho_best, ...). */
  scalars: Record<string, number | string | boolean>;
  manifest?: BundleManifest;
}

/** Reads, maps and writes (see the file comment). The library calls behind `mcore import`. */
export async function importCheckpoint(
  checkpoint: string,
  opts: ImportCheckpointOptions,
): Promise<ImportSummary> {
  const cfg = opts.model;
  const weightsOut = /\.safetensors$/i.test(opts.out);
  const flat = flattenStateDicts(await readTorchCheckpoint(checkpoint), checkpoint);
  const imported: ImportedWeights = importParams(flat, cfg, { file: checkpoint, source: opts.source });
  const summary: ImportSummary = {
    checkpoint: path.resolve(checkpoint),
    out: path.resolve(opts.out),
    kind: weightsOut ? 'weights' : 'bundle',
    source: imported.source,
    imported: imported.imported.length,
    initialised: imported.initialised,
    unused: imported.unused,
    other: flat.other,
    scalars: flat.scalars,
  };
  const transform = referenceBundleTransform(cfg.imageSize);
  try {
    if (weightsOut) {
      await saveWeights(opts.out, imported.params, imported.specs, {
        source: imported.source,
        checkpoint: summary.checkpoint,
        mcore: VERSION,
      });
      const sidecar = {
        format: 'mcore-import',
        version: VERSION,
        model: cfg,
        frames: cfg.frames,
        transform,
        ...summary,
      };
      await writeFileAtomic(
        opts.out.replace(/\.safetensors$/i, '.json'),
        `${JSON.stringify(sidecar, null, 2)}\n`,
      );
      return summary;
    }
    if (imported.source === 'timm-regnety') {
      throw new McoreError(
        'E_INPUT',
        `${checkpoint}: timm weights hold only the backbone, not a scoring model; write them with ` +
          `--out FILE.safetensors and train the heads with 'mcore train --backbone FILE --set train.mode=head-only'`,
      );
    }
    if (!opts.exemplars) {
      throw new McoreError(
        'E_INPUT',
        'a scoring bundle needs exemplars with known scores: pass --exemplars DATASET (a manifest or synthdive), ' +
          'or write only the weights with --out FILE.safetensors',
      );
    }
    const { width, height } = transform.resize;
    const dataset = await openDataset(opts.exemplars, { width, height });
    const clips = sampleClips(dataset, cfg.frames).filter((c) => c.info.split === 'train');
    if (clips.length === 0) {
      throw new McoreError(
        'E_DATA_LAYOUT',
        `--exemplars ${opts.exemplars}: the dataset has no training clips`,
      );
    }
    const byKey = new Map(clips.map((c) => [c.key, c]));
    const epoch = flat.scalars.epoch;
    summary.manifest = await exportBundle(opts.out, imported.params, {
      model: cfg,
      scoreScale: 1,
      stageNames: dataset.stageNames,
      transform,
      source: {
        dataset: opts.exemplars,
        run: summary.checkpoint,
        ...(typeof epoch === 'number' ? { epoch } : {}),
      },
      exemplars: clips.map((c) => ({ key: c.key, actionType: c.actionType, score: c.score })),
      loadFrames: async (key) => {
        const clip = byKey.get(key) as (typeof clips)[number];
        const frames: Frame[] = [];
        for (const i of clip.frames)
          frames.push(resizeNearest(await dataset.loadFrame(key, i), width, height));
        return frames;
      },
      batch: opts.batch,
      threads: opts.threads,
      onProgress: (e) => {
        if (e.kind === 'exemplars') opts.onExemplars?.(e.done, e.total);
      },
    });
    const report = { format: 'mcore-import', version: VERSION, ...summary, manifest: undefined };
    await writeFileAtomic(path.join(opts.out, 'import.json'), `${JSON.stringify(report, null, 2)}\n`);
    return summary;
  } finally {
    disposeParams(imported.params);
  }
}
