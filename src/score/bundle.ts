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
 * The manifest is written last, so an interrupted export leaves no manifest and reads as incomplete.
 * A bundle whose major version differs from this mcore's is refused (E_INPUT, naming both versions).
 *
 * @example
 * const b = await readBundle('runs/a/bundle');
 * b.manifest.stageNames;          // ['take-off', 'flight', 'entry']
 * b.exemplars.records.length;     // training clips in the bank
 */
import { access, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { runConfigSchema } from '../config.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import { MAX_SCORE } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.ts';
import { featureDim, type ModelConfig } from '../model/config.ts';
import { VERSION } from '../version.ts';

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
const rgb = z.tuple([z.number(), z.number(), z.number()]);
/** A frame side in pixels: positive and at most 4096 (a frame is allocated at this size). */
const frameSide = z.number().int().positive().max(4096);

/**
 * How frames become model input: decode or read each frame at `resize` (width x height, `fit` as in
 * src/data/images.ts), take the centre `crop` x `crop` square, scale to [0, 1], subtract `mean` and
 * divide by `std` per RGB channel. The training transform of src/train/run.ts (dataset frames at S x S,
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
  /** The clip's known score, finite and within +-MAX_SCORE (src/data/manifest.ts). */
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

/** The transform of src/train/run.ts at image size S: frames at S x S (stretched), centre crop S, ImageNet. */
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

/**
 * Writes a bundle folder: the three graphs, the exemplar bank, then the manifest (atomically, each
 * file). Throws E_SHAPE if the bank's tokens do not fill [E, K*L, D].
 */
export async function writeBundle(
  dir: string,
  parts: { manifest: BundleManifest; graphs: BundleGraphs; exemplars: ExemplarBank },
): Promise<void> {
  const { manifest, graphs, exemplars } = parts;
  const per = manifest.stages * manifest.tokensPerStage;
  const E = exemplars.records.length;
  if (exemplars.tokens.length !== E * per * manifest.featureDim) {
    throw new McoreError(
      'E_SHAPE',
      `bundle exemplars: ${exemplars.tokens.length} token values for ${E} clips x ${per} tokens x ${manifest.featureDim}`,
    );
  }
  await mkdir(dir, { recursive: true });
  const file = (name: string) => path.join(dir, name);
  await writeFileAtomic(file(BUNDLE_FILES.backbone), graphs.backbone);
  await writeFileAtomic(file(BUNDLE_FILES.segmenter), graphs.segmenter);
  await writeFileAtomic(file(BUNDLE_FILES.scorer), graphs.scorer);
  const shape: [number, number, number] = [E, per, manifest.featureDim];
  await writeFileAtomic(
    file(BUNDLE_FILES.exemplarTokens),
    encodeSafetensors(
      { tokens: { dtype: 'F32', shape, data: exemplars.tokens } },
      { format: BUNDLE_FORMAT, version: VERSION },
    ),
  );
  const index = { count: E, shape, exemplars: exemplars.records };
  await writeFileAtomic(file(BUNDLE_FILES.exemplarIndex), `${JSON.stringify(index, null, 1)}\n`);
  await writeFileAtomic(file(BUNDLE_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

export interface BundleOnDisk {
  dir: string;
  manifest: BundleManifest;
  exemplars: ExemplarBank;
  /** Absolute paths of the three graphs. */
  graphs: { backbone: string; segmenter: string; scorer: string };
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
 * Reads a bundle folder: checks that every file is present, validates the manifest and the exemplar
 * bank against it. A missing folder or file, a bad manifest, an incompatible version: E_INPUT.
 */
export async function readBundle(dir: string): Promise<BundleOnDisk> {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (const name of Object.values(BUNDLE_FILES)) {
    try {
      await access(path.join(abs, name));
    } catch {
      missing.push(name);
    }
  }
  if (missing.length === Object.keys(BUNDLE_FILES).length) {
    throw new McoreError(
      'E_INPUT',
      `${abs}: not a scoring bundle (none of its files is there); write one with 'mcore export --run RUN --out ${dir}'`,
    );
  }
  if (missing.length > 0) {
    throw new McoreError(
      'E_INPUT',
      `${abs}: incomplete scoring bundle, missing ${missing.join(', ')}; export it again with 'mcore export'`,
    );
  }
  const manifestPath = path.join(abs, BUNDLE_FILES.manifest);
  const manifest = parseManifest(await readBundleText(manifestPath), manifestPath);
  const exemplars = await readExemplars(abs, manifest);
  return {
    dir: abs,
    manifest,
    exemplars,
    graphs: {
      backbone: path.join(abs, BUNDLE_FILES.backbone),
      segmenter: path.join(abs, BUNDLE_FILES.segmenter),
      scorer: path.join(abs, BUNDLE_FILES.scorer),
    },
  };
}

/** A bundle's JSON file as text: a folder, a pipe or an unreadable file in its place is E_INPUT. */
async function readBundleText(file: string): Promise<string> {
  await refuseSpecialFile(file, 'E_INPUT');
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); export the bundle again`,
    );
  }
}

async function readExemplars(dir: string, manifest: BundleManifest): Promise<ExemplarBank> {
  const indexPath = path.join(dir, BUNDLE_FILES.exemplarIndex);
  const indexText = await readBundleText(indexPath);
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
  const tokensPath = path.join(dir, BUNDLE_FILES.exemplarTokens);
  let file: Awaited<ReturnType<typeof readSafetensors>>;
  try {
    file = await readSafetensors(tokensPath);
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
  const tokens = t.data as Float32Array;
  const nonFinite = tokens.findIndex((v) => !Number.isFinite(v));
  if (nonFinite >= 0) {
    const row = Math.floor(nonFinite / (per * manifest.featureDim));
    throw new McoreError(
      'E_INPUT',
      `${tokensPath}: token value ${nonFinite} (exemplar '${index.exemplars[row]?.key}') is ${tokens[nonFinite]}, ` +
        'not a finite number; export the bundle again from a run whose loss stayed finite',
    );
  }
  return { records: index.exemplars, tokens };
}
