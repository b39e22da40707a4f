/**
 * The run configuration: typed data with a default for every field, validated with zod. One resolver
 * (`resolveConfig`) fills defaults from a named model variant, applies `--set key=value` overrides and
 * reports every problem with its dotted path in one McoreError('E_CONFIG'). Every number has a range
 * (e.g. `model.imageSize` in [16, 1024], `model.frames` in [4, 4096], `train.epochs` in [1, 100000],
 * `train.lr` in (0, 10]), so an absurd value is refused, never allocated; `--set` accepts only the
 * keys of the schema (`configKeys()`), never a prototype name (`__proto__`, `constructor`, `prototype`).
 */
import { z } from 'zod';
import { McoreError } from './errors.ts';
import { MODEL_VARIANTS, type ModelConfig, type ModelVariant } from './model/config.ts';

const variantNames = Object.keys(MODEL_VARIANTS) as [ModelVariant, ...ModelVariant[]];
/** An integer in [lo, hi]: every size has a range, so an absurd value is refused, never allocated. */
const intIn = (lo: number, hi: number) => z.number().int().min(lo).max(hi);
/** A finite weight or scale in [0, hi]. */
const weight = (hi = 1e6) => z.number().nonnegative().max(hi);

const backboneSchema = z.strictObject({
  stemWidth: intIn(1, 4096),
  widths: z.array(intIn(1, 4096)).min(1).max(16),
  depths: z.array(intIn(1, 64)).min(1).max(16),
  groupWidth: intIn(1, 4096),
  seRatio: z.number().min(0).max(1),
  gsm: z.boolean(),
});

const modelSchema = z.strictObject({
  backbone: backboneSchema,
  segmenter: z.strictObject({ dropout: z.number().min(0).max(1) }),
  decoder: z.strictObject({ layers: intIn(1, 64), heads: intIn(1, 64), mlpRatio: intIn(1, 64) }),
  regressor: z.strictObject({ hidden: z.array(intIn(1, 65536)).max(16) }),
  stages: intIn(2, 32),
  tokensPerStage: intIn(2, 1024),
  frames: intIn(4, 4096),
  imageSize: intIn(16, 1024),
});

export const lossSchema = z.strictObject({
  /** 'token': the reference code's L_cont (tau 0.5); 'stage': the paper's wording (tau 0.1); 'none': off. */
  contrastive: z.enum(['token', 'stage', 'none']).default('token'),
  tasWeights: z.array(weight()).default([1, 2]),
  contWeight: weight().default(10),
  /**
   * Weight of L_aqa (reference: 1 on raw scores). With train.scoreScale = s, aqaWeight = s^2 keeps the
   * reference's balance between the losses in the backbone's gradient.
   */
  aqaWeight: z.number().positive().max(1e6).default(1),
  /** Temperature; default 0.5 for 'token', 0.1 for 'stage'. */
  tau: z.number().positive().max(1000).optional(),
  /**
   * Weight of an auxiliary loss L_q, not in the paper (0 = off, the reference objective): the backbone
   * features pooled over each stage (the ground-truth stages; equal stages for the equal-stages
   * ablation) regress that stage's hidden quality with a linear map (mean squared error). Needs ClipInfo.stageQualities, which only SynthDive has; the demo's
   * backbone pretraining uses it to learn to see each stage's quality cues.
   */
  qualityWeight: weight().default(0),
  /**
   * Weight of the self-supervised auxiliary loss L_rec, not in the paper (0 = off): each stage token
   * predicts, through one linear map, the 8 x 8 average-pooled pixels of the frames it pools (the ground-
   * truth stages). No label beyond the transitions; end-to-end training only. See src/model/recon-head.ts.
   */
  reconWeight: weight().default(0),
});

export const runConfigSchema = z.strictObject({
  variant: z.enum(variantNames).default('mcore-tiny'),
  model: modelSchema,
  loss: lossSchema.default(lossSchema.parse({})),
  train: z
    .strictObject({
      mode: z.enum(['end-to-end', 'head-only']).default('end-to-end'),
      epochs: intIn(1, 100_000).default(10),
      batchPairs: intIn(1, 4096).default(8),
      lr: z.number().positive().max(10).default(1e-3),
      backboneLrScale: weight(1000).default(0.1),
      dn: z.boolean().default(true),
      /**
       * With dn, the share of training pairs whose exemplar is drawn from the whole training split
       * instead (0: none, the reference). The default protocol of `eval` and `score` compares a query
       * with exemplars of any action type; pairs of one type only never show the model such a pair.
       */
      crossTypeShare: z.number().min(0).max(1).default(0),
      seed: intIn(0, 2 ** 32 - 1).default(0),
      /** Score unit in the losses (1: raw dive scores, as the reference). */
      scoreScale: z.number().positive().max(1e6).default(1),
      /** Learning-rate schedule over epochs: 'constant' (the reference) or 'cosine'. */
      schedule: z.enum(['constant', 'cosine']).default('constant'),
      /**
       * Share of each action type's training clips held out for validation (0: none, the reference).
       * With a share, the SRCC (no-dn) on them is measured after every epoch and the best checkpoint is
       * kept in RUN/best beside the latest (src/train/validation.ts).
       */
      validation: z.number().min(0).max(0.5).default(0),
      /**
       * Threads that compute each step's gradients (src/train/parallel.ts): 1 (this thread alone) or more
       * worker threads, the batch's pairs split between them. tfjs's wasm backend uses one core per engine;
       * 2 on the 2-core machine trained a head-only epoch 1.37x faster (README, Speed). Runs are
       * reproducible for a given thread count.
       */
      threads: intIn(1, 64).default(1),
    })
    .default({
      threads: 1,
      validation: 0,
      scoreScale: 1,
      schedule: 'constant',
      mode: 'end-to-end',
      epochs: 10,
      batchPairs: 8,
      lr: 1e-3,
      backboneLrScale: 0.1,
      dn: true,
      crossTypeShare: 0,
      seed: 0,
    }),
  eval: z
    .strictObject({
      exemplars: intIn(1, 10_000).default(10),
      /**
       * The default protocol of `mcore eval`: false = exemplars from the whole training split (the
       * action type unused), as `mcore score` without --action-type; true = exemplars of the query's
       * action type ("with dive number", the reference's FineDiving protocol). Eval reports both SRCCs.
       */
      dn: z.boolean().default(false),
      batchVideos: intIn(1, 4096).default(16),
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

/** Keys that would reach an object's prototype instead of a field: never config keys. */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

function refusePrototypeKey(key: string, where: string): void {
  if (PROTOTYPE_KEYS.has(key)) {
    throw new McoreError(
      'E_CONFIG',
      `${where}: '${key}' is not a configuration key (it names an object's prototype)`,
    );
  }
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    refusePrototypeKey(k, 'model');
    out[k] = Object.hasOwn(base, k) ? deepMerge(base[k], v) : v;
  }
  return out;
}

/** The schema below `schema` with its defaults and optionals unwrapped. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.def.innerType as z.ZodType;
  return s;
}

/** The dotted paths of every field, for `--set` (e.g. 'train.epochs', 'model.backbone.widths'). */
export function configKeys(schema: z.ZodType = runConfigSchema, prefix = ''): string[] {
  const s = unwrap(schema);
  if (!(s instanceof z.ZodObject)) return [prefix];
  return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) =>
    configKeys(v, prefix ? `${prefix}.${k}` : k),
  );
}

/** Throws E_CONFIG unless `path` names a field of the configuration (module doc of `--set`). */
function checkOverridePath(path: readonly string[], text: string): void {
  let s: z.ZodType = runConfigSchema;
  for (const [i, p] of path.entries()) {
    refusePrototypeKey(p, `--set ${text}`);
    const obj = unwrap(s);
    const shape = obj instanceof z.ZodObject ? (obj.shape as Record<string, z.ZodType>) : undefined;
    if (shape === undefined || !Object.hasOwn(shape, p)) {
      const at = path.slice(0, i).join('.');
      const known = shape ? Object.keys(shape) : [];
      throw new McoreError(
        'E_CONFIG',
        `--set ${text}: unknown key '${path.slice(0, i + 1).join('.')}'` +
          (known.length > 0
            ? ` (known${at ? ` under ${at}` : ''}: ${known.join(', ')})`
            : ` ('${at}' is a value, not a group)`),
      );
    }
    s = shape[p];
  }
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
    if (!Object.hasOwn(cur, p) || !isObject(cur[p])) cur[p] = {};
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
    checkOverridePath(path, o);
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
