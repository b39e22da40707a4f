/**
 * The run configuration: typed data with a default for every field, validated with zod. One resolver
 * (`resolveConfig`) fills defaults from a named model variant, applies `--set key=value` overrides and
 * reports every problem with its dotted path in one McoreError('E_CONFIG').
 */
import { z } from 'zod';
import { McoreError } from './errors.ts';
import { MODEL_VARIANTS, type ModelConfig, type ModelVariant } from './model/config.ts';

const variantNames = Object.keys(MODEL_VARIANTS) as [ModelVariant, ...ModelVariant[]];
const positiveInt = z.number().int().positive();

const backboneSchema = z.strictObject({
  stemWidth: positiveInt,
  widths: z.array(positiveInt).min(1),
  depths: z.array(positiveInt).min(1),
  groupWidth: positiveInt,
  seRatio: z.number().min(0).max(1),
  gsm: z.boolean(),
});

const modelSchema = z.strictObject({
  backbone: backboneSchema,
  segmenter: z.strictObject({ dropout: z.number().min(0).max(1) }),
  decoder: z.strictObject({ layers: positiveInt, heads: positiveInt, mlpRatio: positiveInt }),
  regressor: z.strictObject({ hidden: z.array(positiveInt) }),
  stages: z.number().int().min(2),
  tokensPerStage: z.number().int().min(2),
  frames: z.number().int().min(4),
  imageSize: z.number().int().min(16),
});

export const lossSchema = z.strictObject({
  /** 'token': the reference code's L_cont (tau 0.5); 'stage': the paper's wording (tau 0.1); 'none': off. */
  contrastive: z.enum(['token', 'stage', 'none']).default('token'),
  tasWeights: z.array(z.number().nonnegative()).default([1, 2]),
  contWeight: z.number().nonnegative().default(10),
  /**
   * Weight of L_aqa (reference: 1 on raw scores). With train.scoreScale = s, aqaWeight = s^2 keeps the
   * reference's balance between the losses in the backbone's gradient.
   */
  aqaWeight: z.number().positive().default(1),
  /** Temperature; default 0.5 for 'token', 0.1 for 'stage'. */
  tau: z.number().positive().optional(),
  /**
   * Weight of an auxiliary loss L_q, not in the paper (0 = off, the reference objective): the backbone
   * features pooled over each stage (the ground-truth stages; equal stages for the equal-stages
   * ablation) regress that stage's hidden quality with a linear map (mean squared error). Needs ClipInfo.stageQualities, which only SynthDive has; the demo's
   * backbone pretraining uses it to learn to see each stage's quality cues.
   */
  qualityWeight: z.number().nonnegative().default(0),
});

export const runConfigSchema = z.strictObject({
  variant: z.enum(variantNames).default('mcore-tiny'),
  model: modelSchema,
  loss: lossSchema.default(lossSchema.parse({})),
  train: z
    .strictObject({
      mode: z.enum(['end-to-end', 'head-only']).default('end-to-end'),
      epochs: positiveInt.default(10),
      batchPairs: positiveInt.default(8),
      lr: z.number().positive().default(1e-3),
      backboneLrScale: z.number().nonnegative().default(0.1),
      dn: z.boolean().default(true),
      seed: z.number().int().nonnegative().default(0),
      /** Score unit in the losses (1: raw dive scores, as the reference). */
      scoreScale: z.number().positive().default(1),
      /** Learning-rate schedule over epochs: 'constant' (the reference) or 'cosine'. */
      schedule: z.enum(['constant', 'cosine']).default('constant'),
    })
    .default({
      scoreScale: 1,
      schedule: 'constant',
      mode: 'end-to-end',
      epochs: 10,
      batchPairs: 8,
      lr: 1e-3,
      backboneLrScale: 0.1,
      dn: true,
      seed: 0,
    }),
  eval: z
    .strictObject({
      exemplars: positiveInt.default(10),
      /**
       * The default protocol of `mcore eval`: false = exemplars from the whole training split (the
       * action type unused), as `mcore score` without --action-type; true = exemplars of the query's
       * action type ("with dive number", the reference's FineDiving protocol). Eval reports both SRCCs.
       */
      dn: z.boolean().default(false),
      batchVideos: positiveInt.default(16),
    })
    .default({ exemplars: 10, dn: false, batchVideos: 16 }),
});

export type RunConfig = z.infer<typeof runConfigSchema>;
export type LossConfig = z.infer<typeof lossSchema>;

/**
 * Default L_tas weight per transition for K stages: the reference's [1, 2] for K = 3 (take-off ->
 * flight, flight -> entry), else 1 for each of the K-1 transitions.
 */
export function defaultTasWeights(K: number): number[] {
  return K === 3 ? [1, 2] : Array.from({ length: K - 1 }, () => 1);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** Parses one `key=value` override: the value as JSON when it parses, else as a string. */
export function parseOverride(text: string): { path: string[]; value: unknown } {
  const eq = text.indexOf('=');
  if (eq <= 0)
    throw new McoreError('E_CONFIG', `--set expects key=value (e.g. train.epochs=5), got '${text}'`);
  const key = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1).trim();
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // A bare word stays a string (e.g. loss.contrastive=stage).
  }
  return { path: key.split('.'), value };
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const p of path.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

/**
 * Defaults <- model variant <- `partial` (e.g. a config file) <- `overrides` ('a.b=value').
 * The variant is the one named in `partial`/`overrides`, else `opts.defaultVariant` (default
 * 'mcore-tiny'). Unknown keys and bad values are all reported at once.
 */
export function resolveConfig(
  partial: unknown = {},
  overrides: string[] = [],
  opts: { defaultVariant?: ModelVariant } = {},
): RunConfig {
  const input: Record<string, unknown> = isObject(partial) ? structuredClone(partial) : {};
  if (!isObject(partial) && partial !== undefined) {
    throw new McoreError('E_CONFIG', 'a config file must hold a JSON object');
  }
  for (const o of overrides) {
    const { path, value } = parseOverride(o);
    setPath(input, path, value);
  }
  input.variant ??= opts.defaultVariant ?? 'mcore-tiny';
  const variant = input.variant as ModelVariant;
  if (!(variant in MODEL_VARIANTS)) {
    throw new McoreError(
      'E_CONFIG',
      `variant: unknown model variant '${String(variant)}' (known: ${variantNames.join(', ')})`,
    );
  }
  input.model = deepMerge(structuredClone(MODEL_VARIANTS[variant]) as ModelConfig, input.model);
  // loss.tasWeights not given: the default for the model's K (one weight per transition).
  const stages = (input.model as { stages?: unknown }).stages;
  const loss = isObject(input.loss) ? input.loss : {};
  if (loss.tasWeights === undefined && Number.isInteger(stages) && (stages as number) >= 2) {
    input.loss = { ...loss, tasWeights: defaultTasWeights(stages as number) };
  }
  const parsed = runConfigSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ✖ ${i.message} → at ${i.path.join('.') || '(root)'}`);
    throw new McoreError('E_CONFIG', `invalid configuration:\n${lines.join('\n')}`);
  }
  const cfg = parsed.data;
  const { widths, depths } = cfg.model.backbone;
  if (widths.length !== depths.length) {
    throw new McoreError(
      'E_CONFIG',
      `model.backbone: widths (${widths.length}) and depths (${depths.length}) must have the same length`,
    );
  }
  if (cfg.loss.tasWeights.length !== cfg.model.stages - 1) {
    throw new McoreError(
      'E_CONFIG',
      `loss.tasWeights: needs one weight per transition (${cfg.model.stages - 1} for ${cfg.model.stages} stages), got ${cfg.loss.tasWeights.length}`,
    );
  }
  return cfg;
}
