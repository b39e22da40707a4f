/**
 * The scoring bundle: one folder holding everything `mcore score` needs, readable without the training
 * data or tfjs.
 *
 *   manifest.json          format 'mcore-bundle', mcore version, model config, frames T, image size,
 *                          the input transform, stage names, K, L, scoreScale, created (zod-validated)
 *   backbone.onnx          frames [N = V*T, 3, S, S] -> features [V, T, D]       (exportBackbone)
 *   segmenter.onnx         features [V, T, D] -> logits [V, T, K-1]              (exportSegmenter)
 *   scorer.onnx            q, e tokens [N, K*L, D] -> delta [N], token_delta [N, K*L]
 *                          (exportScorer + the per-token output of ./scorer-graph.ts)
 *   exemplars.safetensors  `tokens` [E, K*L, D]: the stage tokens of every training clip
 *   exemplars.json         per row of `tokens`: key, action type, score, transitions
 *
 * This file is the format (schemas, validation; no file system), shared by the browser scoring core;
 * ./bundle.ts reads and writes bundle folders.
 *
 * A bundle folder is replaced as a whole (./bundle.ts), so an interrupted export never leaves a mix.
 * A bundle whose major version differs from this mcore's is refused (E_INPUT, naming both versions).
 *
 * @example
 * const b = await readBundle('runs/a/bundle');
 * b.manifest.stageNames;          // ['take-off', 'flight', 'entry']
 * b.exemplars.records.length;     // training clips in the bank
 */
import { z } from 'zod';
import { runConfigSchema } from '../config.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { MAX_SCORE } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { parseSafetensors, type SafetensorsFile } from '../io/safetensors-codec.ts';
import { featureDim, type ModelConfig } from '../model/config.ts';
import { VERSION } from '../version.ts';

/** Name of the per-token output added to the scorer graph. */
export const TOKEN_DELTA = 'token_delta';

export const BUNDLE_FORMAT = 'mcore-bundle';

/** The files of a bundle, by role. */
export const BUNDLE_FILES = {
  manifest: 'manifest.json',
  backbone: 'backbone.onnx',
  segmenter: 'segmenter.onnx',
  scorer: 'scorer.onnx',
  exemplarTokens: 'exemplars.safetensors',
  exemplarIndex: 'exemplars.json',
} as const;

const positiveInt = z.number().int().positive();
/** A frame side in pixels: positive and at most 4096 (a frame is allocated at this size). */
const frameSide = z.number().int().positive().max(4096);
const rgb = z.tuple([z.number(), z.number(), z.number()]);

/**
 * How frames become model input: decode or read each frame at `resize` (width x height, `fit` as in
 * src/data/images.ts), take the centre `crop` x `crop` square, scale to [0, 1], subtract `mean` and
 * divide by `std` per RGB channel. The training transform of src/verbs/run.ts (dataset frames at S x S,
 * centre crop S, ImageNet statistics) is `squareTransform(S)`.
 */
export const transformSchema = z.strictObject({
  resize: z.strictObject({ width: frameSide, height: frameSide, fit: z.enum(['squeeze', 'cover']) }),
  crop: frameSide,
  mean: rgb,
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
});
export type BundleTransform = z.infer<typeof transformSchema>;

export const manifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  version: z.string(),
  model: runConfigSchema.shape.model,
  frames: runConfigSchema.shape.model.shape.frames,
  imageSize: runConfigSchema.shape.model.shape.imageSize,
  transform: transformSchema,
  stageNames: z.array(z.string()).min(2),
  stages: z.number().int().min(2),
  tokensPerStage: z.number().int().min(2),
  featureDim: positiveInt,
  /** The regressor's delta is in units of scoreScale (train.scoreScale): score = y_e + scoreScale * delta. */
  scoreScale: z.number().positive().max(1e6),
  /** Where the weights and the exemplars came from (informative). */
  source: z
    .object({ dataset: z.string(), run: z.string().optional(), epoch: z.number().optional() })
    .optional(),
  created: z.string(),
});
export type BundleManifest = z.infer<typeof manifestSchema>;

const exemplarRecordSchema = z.strictObject({
  key: z.string(),
  actionType: z.string(),
  /** The clip's known score, finite and within +-MAX_SCORE (src/data/types.ts). */
  score: z.number().min(-MAX_SCORE).max(MAX_SCORE),
  /** K-1 transitions the bundle's segmenter found on the clip's T sampled frames. */
  transitions: z.array(z.number().int()),
});
export type ExemplarRecord = z.infer<typeof exemplarRecordSchema>;

const exemplarIndexSchema = z.object({
  count: z.number().int().nonnegative(),
  shape: z.tuple([z.number().int().nonnegative(), positiveInt, positiveInt]),
  exemplars: z.array(exemplarRecordSchema),
});

/** The exemplar bank: stage tokens of every training clip. */
export interface ExemplarBank {
  records: ExemplarRecord[];
  /** [E, K*L, D] row-major; row i belongs to records[i]. */
  tokens: Float32Array;
}

export interface BundleGraphs {
  backbone: Uint8Array;
  segmenter: Uint8Array;
  /** With the `token_delta` output (see ./scorer-graph.ts). */
  scorer: Uint8Array;
}

/** The transform of src/verbs/run.ts at image size S: frames at S x S (stretched), centre crop S, ImageNet. */
export function squareTransform(S: number): BundleTransform {
  return squeezeCropTransform(S, S, S);
}

/** Frames squeezed to width x height, centre crop S, ImageNet normalisation (the test transform of a run). */
export function squeezeCropTransform(width: number, height: number, S: number): BundleTransform {
  return {
    resize: { width, height, fit: 'squeeze' },
    crop: S,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
  };
}

/** A manifest for `model`, stamped with this mcore's version and the current time. */
export function makeManifest(
  model: ModelConfig,
  opts: {
    stageNames: readonly string[];
    scoreScale: number;
    transform?: BundleTransform;
    source?: BundleManifest['source'];
  },
): BundleManifest {
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    version: VERSION,
    model: structuredClone(model),
    frames: model.frames,
    imageSize: model.imageSize,
    transform: opts.transform ?? squareTransform(model.imageSize),
    stageNames: [...opts.stageNames],
    stages: model.stages,
    tokensPerStage: model.tokensPerStage,
    featureDim: featureDim(model),
    scoreScale: opts.scoreScale,
    ...(opts.source ? { source: opts.source } : {}),
    created: new Date().toISOString(),
  };
  checkConsistent(manifest, '<new bundle>');
  return manifest;
}

function checkConsistent(m: BundleManifest, where: string): void {
  const problems: string[] = [];
  if (m.stageNames.length !== m.stages) {
    problems.push(`${m.stageNames.length} stage names for ${m.stages} stages`);
  }
  if (m.model.stages !== m.stages || m.model.tokensPerStage !== m.tokensPerStage) {
    problems.push('stages/tokensPerStage differ from the model config');
  }
  if (m.model.frames !== m.frames)
    problems.push(`frames ${m.frames} differ from model.frames ${m.model.frames}`);
  if (featureDim(m.model) !== m.featureDim)
    problems.push(`featureDim ${m.featureDim} differs from the model's`);
  const t = m.transform;
  if (m.model.imageSize !== m.imageSize || t.crop !== m.imageSize) {
    problems.push(`imageSize ${m.imageSize}, model.imageSize ${m.model.imageSize} and crop ${t.crop} differ`);
  }
  if (t.crop > t.resize.width || t.crop > t.resize.height) {
    problems.push(`crop ${t.crop} is larger than the resized frame ${t.resize.width}x${t.resize.height}`);
  }
  if (problems.length > 0) {
    throw new McoreError('E_INPUT', `${where}: inconsistent bundle manifest: ${problems.join('; ')}`);
  }
}

function major(version: string): number {
  return Number.parseInt(version.split('.')[0] ?? '', 10);
}

function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.message} at ${i.path.join('.') || '(root)'}`).join('; ');
}

/** Parses and validates manifest.json text; `where` names the file in errors. */
export function parseManifest(text: string, where: string): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new McoreError('E_INPUT', `${where}: not valid JSON (${(e as Error).message})`);
  }
  const head = z.object({ format: z.string(), version: z.string() }).safeParse(raw);
  if (!head.success || head.data.format !== BUNDLE_FORMAT) {
    throw new McoreError(
      'E_INPUT',
      `${where}: not an mcore scoring bundle (expected "format": "${BUNDLE_FORMAT}"); write one with 'mcore export --run RUN --out DIR'`,
    );
  }
  if (major(head.data.version) !== major(VERSION)) {
    throw new McoreError(
      'E_INPUT',
      `${where}: the bundle was written by mcore ${head.data.version} and this is mcore ${VERSION} ` +
        `(major versions differ); re-export it with this version: mcore export --run RUN --out DIR`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new McoreError('E_INPUT', `${where}: invalid bundle manifest: ${issuesOf(parsed.error)}`);
  }
  checkConsistent(parsed.data, where);
  return parsed.data;
}

/**
 * Validates an exemplar bank against its manifest: `indexText` is exemplars.json, `tokens` the bytes of
 * exemplars.safetensors; `where` names both files in errors (E_INPUT).
 */
export function parseExemplarBank(
  indexText: string,
  tokens: Uint8Array,
  manifest: BundleManifest,
  where: { index: string; tokens: string },
): ExemplarBank {
  const indexPath = where.index;
  const tokensPath = where.tokens;
  let raw: unknown;
  try {
    raw = JSON.parse(indexText);
  } catch (e) {
    throw new McoreError('E_INPUT', `${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  const parsed = exemplarIndexSchema.safeParse(raw);
  if (!parsed.success) {
    throw new McoreError('E_INPUT', `${indexPath}: invalid exemplar index: ${issuesOf(parsed.error)}`);
  }
  const index = parsed.data;
  let file: SafetensorsFile;
  try {
    file = parseSafetensors(tokens, tokensPath);
  } catch (e) {
    throw new McoreError('E_INPUT', `${tokensPath}: ${(e as Error).message}`);
  }
  const t = file.tensors.tokens;
  const per = manifest.stages * manifest.tokensPerStage;
  const want = [index.exemplars.length, per, manifest.featureDim];
  const ok =
    t !== undefined &&
    t.data instanceof Float32Array &&
    index.count === index.exemplars.length &&
    t.shape.length === 3 &&
    t.shape.every((d, i) => d === want[i]);
  if (!ok) {
    throw new McoreError(
      'E_INPUT',
      `${tokensPath}: expected a float32 tensor 'tokens' of shape [${want.join(', ')}] ` +
        `(${index.exemplars.length} exemplars in ${BUNDLE_FILES.exemplarIndex}), found ` +
        `${t ? `${t.dtype} [${t.shape.join(', ')}]` : 'none'}; export the bundle again`,
    );
  }
  const K1 = manifest.stages - 1;
  const bad = index.exemplars.find((r) => r.transitions.length !== K1);
  if (bad) {
    throw new McoreError(
      'E_INPUT',
      `${indexPath}: exemplar '${bad.key}' has ${bad.transitions.length} transitions, expected ${K1}`,
    );
  }
  const values = t.data as Float32Array;
  const nonFinite = values.findIndex((v) => !Number.isFinite(v));
  if (nonFinite >= 0) {
    const row = Math.floor(nonFinite / (per * manifest.featureDim));
    throw new McoreError(
      'E_INPUT',
      `${tokensPath}: token value ${nonFinite} (exemplar '${index.exemplars[row]?.key}') is ${values[nonFinite]}, ` +
        'not a finite number; export the bundle again from a run whose loss stayed finite',
    );
  }
  return { records: index.exemplars, tokens: values };
}
