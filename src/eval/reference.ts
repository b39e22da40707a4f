/**
 * Reference points of the honest evaluation, computed on the same train/test split as the model, and
 * the warnings of a model that does not clearly beat them (issue 10):
 *
 *   - the action-type-mean predictor: a test clip's prediction is the mean training score of its action
 *     type (a type without training clips: the mean of every training score). On diving this alone
 *     reaches a high SRCC "with action types", because the difficulty differs between dives; it ranks
 *     nothing within a type (within-type SRCC 0).
 *   - a whole-video ridge baseline: ridge regression (src/eval/ridge.ts, lambda by 5-fold
 *     cross-validation on the training split only) on a fixed-size summary of the run's own input.
 *     Frames [T, S, S, 3]: the T frames cut into 8 equal time segments (fewer when T < 8), each
 *     averaged and area-pooled to a 4 x 4 grid per colour channel: 8 x 4 x 4 x 3 = 384 values. Head-only
 *     features [T, D]: per-frame features averaged over G = clamp(floor(512 / D), 1, 8) equal time
 *     segments (G x D values). Why this input: it is the input the model itself receives (no labels, no
 *     stages, no action type), coarse enough for a linear model fitted on a few hundred clips, and it
 *     keeps the order of the action in time (where a take-off or an entry happens), which a mean over
 *     the whole video would lose. A model that learned nothing beyond it is not worth its exemplars.
 *
 * Warnings (`honestyWarnings`), each stated with its numbers:
 *   - within-type SRCC undefined (no action type with 3 test clips): execution ranking is not measured;
 *   - within-type SRCC < WITHIN_TYPE_MIN (0.2): the model barely ranks execution within an action type
 *     (the type-mean predictor scores 0 there);
 *   - SRCC with action types (dn) < type-mean SRCC + TYPE_MEAN_MARGIN (0.05): the ranking may be the
 *     action type alone;
 *   - SRCC without action types (no-dn) not above the ridge baseline's SRCC.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ClipRecord } from '../data/clips.ts';
import { McoreError } from '../errors.ts';
import { rl2, srcc, WITHIN_TYPE_MIN_CLIPS, withinTypeSrcc } from './metrics.ts';
import { fitRidgeCV } from './ridge.ts';

/** A model whose within-type SRCC is below this is warned about. */
export const WITHIN_TYPE_MIN = 0.2;
/** A model's SRCC with action types must beat the type-mean predictor's by at least this. */
export const TYPE_MEAN_MARGIN = 0.05;

export interface ReferencePoint {
  srcc: number;
  withinTypeSrcc: number;
  rl2: number;
}

export interface RidgeReference extends ReferencePoint {
  /** What the ridge saw: downsampled frames or pooled backbone features. */
  input: 'pixels' | 'features';
  /** Values per clip. */
  dims: number;
  /** The lambda the training split's cross-validation chose. */
  lambda: number;
}

export interface ReferencePoints {
  typeMean: ReferencePoint;
  ridge: RidgeReference;
}

/** The metrics a model is compared with (see EvalMetrics). */
export interface HonestMetrics {
  srccDn: number;
  srccNoDn: number;
  withinTypeSrcc: number;
}

/** Training mean score per action type; a type without training clips gets the overall training mean. */
export function typeMeanPredictions(
  train: readonly Pick<ClipRecord, 'actionType' | 'score'>[],
  test: readonly Pick<ClipRecord, 'actionType'>[],
): number[] {
  if (train.length === 0) throw new McoreError('E_INPUT', 'type-mean predictor: the training split is empty');
  const sums = new Map<string, { sum: number; n: number }>();
  let total = 0;
  for (const c of train) {
    const s = sums.get(c.actionType) ?? { sum: 0, n: 0 };
    s.sum += c.score;
    s.n++;
    sums.set(c.actionType, s);
    total += c.score;
  }
  const overall = total / train.length;
  return test.map((c) => {
    const s = sums.get(c.actionType);
    return s ? s.sum / s.n : overall;
  });
}

/** Metrics of plain predictions on the test clips (R-l2 NaN when the true scores are all equal). */
export function referencePoint(
  pred: readonly number[],
  test: readonly Pick<ClipRecord, 'actionType' | 'score'>[],
): ReferencePoint {
  const truth = test.map((c) => c.score);
  const range = Math.max(...truth) - Math.min(...truth);
  return {
    srcc: test.length >= 2 ? srcc(pred, truth) : Number.NaN,
    withinTypeSrcc: withinTypeSrcc(
      pred,
      truth,
      test.map((c) => c.actionType),
    ).srcc,
    rl2: range > 0 ? rl2(pred, truth) : Number.NaN,
  };
}

/** Time segments of the ridge's summary for per-frame vectors of `perFrame` values and T frames. */
export function ridgeSegments(perFrame: number, T: number): number {
  return Math.max(1, Math.min(8, T, Math.floor(512 / perFrame)));
}

/** Spatial grid of the pixel summary (GRID x GRID cells per channel). */
const GRID = 4;

/**
 * The ridge's summary of V inputs (module doc): frames [V, T, S, S, 3] -> V x (G x 4 x 4 x 3) or
 * features [V, T, D] -> V x (G x D), G time segments. Frame t falls in segment floor(t G / T); pixel
 * (y, x) in cell (floor(y 4 / S), floor(x 4 / S)); every bin is a mean.
 */
export function ridgeInputs(input: tf.Tensor): Float64Array[] {
  const [V, T] = input.shape as number[];
  const data = input.dataSync();
  if (input.rank === 5) {
    const [, , H, W, C] = input.shape as number[];
    const G = ridgeSegments(GRID * GRID * C, T);
    const dims = G * GRID * GRID * C;
    const out: Float64Array[] = [];
    for (let v = 0; v < V; v++) {
      const sums = new Float64Array(dims);
      const counts = new Float64Array(dims);
      for (let t = 0; t < T; t++) {
        const g = Math.floor((t * G) / T);
        for (let y = 0; y < H; y++) {
          const cy = Math.floor((y * GRID) / H);
          for (let x = 0; x < W; x++) {
            const cell = ((g * GRID + cy) * GRID + Math.floor((x * GRID) / W)) * C;
            const at = (((v * T + t) * H + y) * W + x) * C;
            for (let c = 0; c < C; c++) {
              sums[cell + c] += data[at + c];
              counts[cell + c]++;
            }
          }
        }
      }
      out.push(sums.map((s, i) => s / counts[i]));
    }
    return out;
  }
  if (input.rank === 3) {
    const D = input.shape[2] as number;
    const G = ridgeSegments(D, T);
    const out: Float64Array[] = [];
    for (let v = 0; v < V; v++) {
      const sums = new Float64Array(G * D);
      const counts = new Float64Array(G);
      for (let t = 0; t < T; t++) {
        const g = Math.floor((t * G) / T);
        counts[g]++;
        for (let d = 0; d < D; d++) sums[g * D + d] += data[(v * T + t) * D + d];
      }
      out.push(sums.map((s, i) => s / counts[Math.floor(i / D)]));
    }
    return out;
  }
  throw new McoreError(
    'E_SHAPE',
    `ridge baseline: expected frames [V, T, H, W, 3] or features [V, T, D], found [${input.shape.join(', ')}]`,
  );
}

export interface ReferenceOptions {
  /** Test-mode input [V, ...] for `keys` in order (the evaluator's loader). */
  load(keys: string[]): Promise<tf.Tensor>;
  /** Videos loaded at once. */
  batchVideos: number;
  /** Seed of the ridge's folds. */
  seed: number;
}

/** The type-mean and ridge reference points of a split (module doc). */
export async function referencePoints(
  train: readonly ClipRecord[],
  test: readonly ClipRecord[],
  opts: ReferenceOptions,
): Promise<ReferencePoints> {
  const typeMean = referencePoint(typeMeanPredictions(train, test), test);
  const summaries = async (clips: readonly ClipRecord[]) => {
    const out: Float64Array[] = [];
    let rank = 0;
    for (let i = 0; i < clips.length; i += opts.batchVideos) {
      const input = await opts.load(clips.slice(i, i + opts.batchVideos).map((c) => c.key));
      rank = input.rank;
      out.push(...ridgeInputs(input));
      input.dispose();
    }
    return { rows: out, rank };
  };
  const tr = await summaries(train);
  const te = await summaries(test);
  const fit = fitRidgeCV(
    tr.rows,
    train.map((c) => c.score),
    { seed: opts.seed },
  );
  return {
    typeMean,
    ridge: {
      ...referencePoint(
        te.rows.map((r) => fit.predict(r)),
        test,
      ),
      input: tr.rank === 5 ? 'pixels' : 'features',
      dims: tr.rows[0]?.length ?? 0,
      lambda: fit.lambda,
    },
  };
}

/**
 * The oracle of synthetic data: a ridge regression (lambda by 5-fold CV on the training split) on what
 * decides the score there and no model can see directly — each clip's hidden stage qualities — plus the
 * type-mean prediction (the difficulty). It bounds what any model can reach on the split; undefined when
 * the clips carry no stage qualities (real data).
 */
export function oracleReference(
  train: readonly ClipRecord[],
  test: readonly ClipRecord[],
  seed = 0,
): ReferencePoint | undefined {
  if (![...train, ...test].every((c) => c.stageQualities !== undefined)) return undefined;
  const rows = (clips: readonly ClipRecord[]) => {
    const typeMean = typeMeanPredictions(train, clips);
    return clips.map((c, i) => Float64Array.from([...(c.stageQualities ?? []), typeMean[i]]));
  };
  const fit = fitRidgeCV(
    rows(train),
    train.map((c) => c.score),
    { seed },
  );
  return referencePoint(
    rows(test).map((r) => fit.predict(r)),
    test,
  );
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

/**
 * Plain-language warnings when a model does not clearly beat the reference points (module doc); none
 * when it does. A NaN SRCC (a test action type without training clips: no dn protocol) triggers
 * nothing; a NaN within-type SRCC is said (execution ranking is not measured on the split).
 */
export function honestyWarnings(m: HonestMetrics, refs: ReferencePoints): string[] {
  const out: string[] = [];
  if (Number.isNaN(m.withinTypeSrcc)) {
    out.push(
      `within-type SRCC is undefined: no action type has ${WITHIN_TYPE_MIN_CLIPS} test clips with different scores, so whether the model ranks execution within a type is not measured on this split`,
    );
  }
  if (m.withinTypeSrcc < WITHIN_TYPE_MIN) {
    out.push(
      `within-type SRCC ${f3(m.withinTypeSrcc)} < ${WITHIN_TYPE_MIN}: the model barely ranks how well an action was done once its type is known (the type-mean predictor scores 0 here)`,
    );
  }
  if (m.srccDn < refs.typeMean.srcc + TYPE_MEAN_MARGIN) {
    out.push(
      `SRCC with action types ${f3(m.srccDn)} is not above the action-type-mean predictor's ${f3(refs.typeMean.srcc)} by ${TYPE_MEAN_MARGIN}: the ranking may be the action type alone`,
    );
  }
  if (m.srccNoDn <= refs.ridge.srcc) {
    out.push(
      `SRCC without action types ${f3(m.srccNoDn)} is not above the whole-video ridge baseline's ${f3(refs.ridge.srcc)} (ridge on the ${refs.ridge.input})`,
    );
  }
  return out;
}
