/**
 * The trainer (spec section 4): Adam with two parameter groups (backbone + GSM at 0.1x), batches of B
 * query/exemplar pairs, ground-truth transitions, one checkpoint per epoch written atomically, and an
 * exact `resume`: the data order of epoch e depends only on (seed, e), so a resumed run replays the
 * same batches and, with the saved optimizer state, ends with the same weights.
 */
import type { ClipRecord, ClipSource } from '../data/clips.ts';
import { ExemplarIndex } from '../data/sampling.ts';
import { McoreError } from '../errors.ts';
import type { Params } from '../model/params.ts';
import { createRng, type Rng, shuffled } from '../rng.ts';
import { type AdamConfig, type AdamState, createAdamState } from './adam.ts';
import type { Method } from './method.ts';
import { type GradientPool, parallelTrainStep } from './parallel.ts';
import { trainStep } from './step.ts';

export type TrainEvent =
  | { kind: 'step'; epoch: number; step: number; steps: number; loss: number; terms: Record<string, number> }
  | {
      kind: 'epoch';
      epoch: number;
      epochs: number;
      loss: number;
      terms: Record<string, number>;
      seconds: number;
    }
  | { kind: 'eval'; epoch: number; metrics: Record<string, number> }
  | { kind: 'checkpoint'; epoch: number; path: string };

export interface EpochRecord {
  epoch: number;
  loss: number;
  terms: Record<string, number>;
  metrics?: Record<string, number>;
  seconds: number;
}

export interface TrainState {
  /** Epochs completed. */
  epoch: number;
  adam: AdamState;
  history: EpochRecord[];
}

export interface TrainOptions {
  epochs: number;
  batchPairs: number;
  seed: number;
  /** Exemplars of the same action type ("with dive number"). */
  dn: boolean;
  /** With dn, the share of pairs whose exemplar comes from the whole training split (default 0). */
  crossTypeShare?: number;
  adam: AdamConfig;
  /**
   * Learning-rate schedule over epochs: 'constant' (the reference) or 'cosine' (lr x (1 + cos(pi e / E)) / 2
   * at epoch e of E, per epoch, so a resumed run follows the same curve).
   */
  schedule?: 'constant' | 'cosine';
  /** State to continue from (a loaded checkpoint); a fresh run starts at epoch 0. */
  state?: TrainState;
  /** Called after every epoch with the state to persist (the checkpoint writer). */
  saveCheckpoint?: (params: Params, state: TrainState) => Promise<string>;
  /** Per-epoch evaluation (e.g. test SRCC); its metrics go into the history. */
  evaluate?: (params: Params, epoch: number) => Promise<Record<string, number>>;
  onProgress?: (e: TrainEvent) => void;
  signal?: AbortSignal;
  /** Worker threads that compute the shares of each batch (train.threads > 1); none: this thread alone. */
  pool?: GradientPool;
}

/** The learning-rate multiplier of epoch `epoch` (0-based) of `epochs`. */
export function lrFactor(schedule: 'constant' | 'cosine', epoch: number, epochs: number): number {
  return schedule === 'cosine' ? (1 + Math.cos((Math.PI * epoch) / epochs)) / 2 : 1;
}

/** Deterministic per-epoch generator: the data order of epoch e depends only on (seed, e). */
export function epochRng(seed: number, epoch: number): Rng {
  return createRng(seed * 1000003 + epoch * 7919 + 17);
}

/**
 * Batches of B query keys with their exemplars for one epoch. With dn and a `crossTypeShare` p > 0, each
 * pair's exemplar comes from the whole training split with probability p (one more draw per pair; with
 * p = 0 the draws are those of the reference's sampling).
 */
export function epochBatches(
  clips: readonly ClipRecord[],
  index: ExemplarIndex,
  opts: { batchPairs: number; dn: boolean; crossTypeShare?: number; rng: Rng },
): { queries: ClipRecord[]; exemplars: string[] }[] {
  const order = shuffled(clips, opts.rng);
  const p = opts.crossTypeShare ?? 0;
  const sameType = (): boolean => opts.dn && !(p > 0 && opts.rng.next() < p);
  const out: { queries: ClipRecord[]; exemplars: string[] }[] = [];
  for (let i = 0; i < order.length; i += opts.batchPairs) {
    const queries = order.slice(i, i + opts.batchPairs);
    const exemplars = queries.map((q) => index.trainExemplar(q, sameType(), opts.rng));
    out.push({ queries, exemplars });
  }
  return out;
}

/** `stageQualities` of a batch's clips when every clip has them (synthetic data), else nothing. */
function stageQualitiesOf(clips: readonly ClipRecord[]): { stageQualities?: number[][] } {
  const q = clips.map((c) => c.stageQualities);
  return q.every((x) => x !== undefined) ? { stageQualities: q as number[][] } : {};
}

/** Trains `method` on `source`; returns the final state (epochs done, optimizer, history). */
export async function train(
  method: Method,
  params: Params,
  source: ClipSource,
  opts: TrainOptions,
): Promise<TrainState> {
  const state: TrainState = opts.state ?? { epoch: 0, adam: createAdamState(), history: [] };
  const index = new ExemplarIndex(source.clips);
  const byKey = new Map(source.clips.map((c) => [c.key, c]));
  for (let epoch = state.epoch; epoch < opts.epochs; epoch++) {
    const t0 = performance.now();
    const rng = epochRng(opts.seed, epoch);
    const batches = epochBatches(source.clips, index, {
      batchPairs: opts.batchPairs,
      dn: opts.dn,
      crossTypeShare: opts.crossTypeShare,
      rng,
    });
    const sums: Record<string, number> = {};
    const adamCfg = {
      ...opts.adam,
      lr: opts.adam.lr * lrFactor(opts.schedule ?? 'constant', epoch, opts.epochs),
    };
    for (let s = 0; s < batches.length; s++) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('training aborted');
      const { queries, exemplars } = batches[s];
      const ex = exemplars.map((k) => byKey.get(k)!);
      const keys = [...queries.map((q) => q.key), ...exemplars];
      const input = await source.load(keys, { augment: true, rng });
      const batch = {
        input,
        transitions: [...queries.map((q) => q.transitions), ...ex.map((e) => e.transitions)],
        scores: [...queries.map((q) => q.score), ...ex.map((e) => e.score)],
        ...stageQualitiesOf([...queries, ...ex]),
      };
      let terms: Record<string, number>;
      try {
        const seed = opts.seed * 7 + epoch * 100003 + s;
        terms = opts.pool
          ? await parallelTrainStep(method, params, method.specs, batch, state.adam, adamCfg, seed, opts.pool)
          : trainStep(method, params, method.specs, batch, state.adam, adamCfg, seed);
      } catch (err) {
        input.dispose();
        if (!(err instanceof McoreError && err.code === 'E_DIVERGED')) throw err;
        const scores = batch.scores.filter(Number.isFinite);
        const range = scores.length > 0 ? `${Math.min(...scores)} to ${Math.max(...scores)}` : 'none finite';
        throw new McoreError(
          'E_DIVERGED',
          `training diverged at epoch ${epoch + 1}, step ${s + 1}/${batches.length}: ${err.message}; ` +
            `no checkpoint was written for this epoch. Check the scores' range (this batch: ${range}; ` +
            `score = y_e + train.scoreScale * delta) or lower the learning rate (train.lr=${opts.adam.lr})`,
        );
      }
      input.dispose();
      for (const [k, v] of Object.entries(terms)) sums[k] = (sums[k] ?? 0) + v;
      opts.onProgress?.({
        kind: 'step',
        epoch,
        step: s + 1,
        steps: batches.length,
        loss: terms.total,
        terms,
      });
    }
    const terms: Record<string, number> = {};
    for (const [k, v] of Object.entries(sums)) terms[k] = v / batches.length;
    const record: EpochRecord = { epoch, loss: terms.total, terms, seconds: (performance.now() - t0) / 1000 };
    opts.onProgress?.({
      kind: 'epoch',
      epoch,
      epochs: opts.epochs,
      loss: terms.total,
      terms,
      seconds: record.seconds,
    });
    if (opts.evaluate) {
      record.metrics = await opts.evaluate(params, epoch);
      opts.onProgress?.({ kind: 'eval', epoch, metrics: record.metrics });
    }
    // A finite loss with non-finite gradients leaves non-finite weights: never checkpoint them.
    const broken = Object.keys(params).find(
      (k) => !(params[k].dataSync() as Float32Array).every(Number.isFinite),
    );
    if (broken !== undefined) {
      throw new McoreError(
        'E_DIVERGED',
        `training diverged in epoch ${epoch + 1}: parameter ${broken} holds non-finite values; no checkpoint ` +
          `was written for this epoch. Lower the learning rate (train.lr=${opts.adam.lr}) or check the scores' range`,
      );
    }
    state.history.push(record);
    state.epoch = epoch + 1;
    if (opts.saveCheckpoint) {
      const path = await opts.saveCheckpoint(params, state);
      opts.onProgress?.({ kind: 'checkpoint', epoch, path });
    }
  }
  return state;
}
