/**
 * The library verb `score` in Node: one video (file or frame folder) -> its predicted score, its stages
 * and how each stage compares with each exemplar, in onnxruntime-node from a bundle folder (./bundle.ts).
 * Reading and sampling the input is Node's (./input.ts); the rest is the runtime-neutral scoring core
 * (./scoring.ts), which a browser runs the same way with onnxruntime-web:
 *
 *   decode T frames -> backbone -> features [1, T, D] -> segmenter -> transitions (decodeTransitions)
 *   -> stage tokens [K*L, D] -> scorer on M (query, exemplar) pairs in ONE run -> delta [M] and
 *   token_delta [M, K*L] -> score = mean_e (y_e + scoreScale * delta_e)          (spec sections 1, 2, 4)
 *
 * The query is encoded once (the reference re-encodes it for every exemplar); exemplar tokens come
 * from the bundle's bank. With `actionType` the exemplars share the query's type ("with dive number");
 * without it they are drawn from the whole bank ("without dive number"). The M exemplars are a seeded
 * shuffle of the pool, so a score is reproducible.
 *
 * Per-stage comparison: delta_s(q, e) = scoreScale x the mean of the regressor over stage s's L tokens
 * (the scorer's `token_delta` output). The decoder compares stage s of q with stage s of e only, so
 * delta_s is what the scorer gives on stage s alone, and the K per-stage deltas average to the delta.
 *
 * @example
 * const b = await loadBundle('runs/a/bundle');
 * const r = await b.score('dive.mp4', { actionType: '405c', exemplars: 10 });
 * r.score;                       // 71.3
 * r.stages[1];                   // { name: 'flight', start: 31, end: 70, sourceStart: 40, sourceEnd: 90, startSec: 1.6, endSec: 3.6 }
 * r.perStage[1].deltas[0];       // { exemplar: 'clip-0012', delta: -1.8 }
 * await b.dispose();
 */
import { readBundle } from './bundle.ts';
import { type QueryInput, queryOptions, readQueryInput } from './input.ts';
import {
  type ScoreOptions as CoreScoreOptions,
  createScoringCore,
  type ScoreResult,
  type ScoringCore,
} from './scoring.ts';
import { openSessions } from './sessions.ts';

export {
  chooseExemplars,
  type ExemplarUse,
  type QueryInput,
  type ScoreEvent,
  type ScoreResult,
  type ScoreStep,
  type ScoreTimings,
  type StageComparison,
  type StageResult,
} from './scoring.ts';

export interface ScoreOptions extends CoreScoreOptions {
  /** Score a truncated or damaged video from its readable frames instead of refusing it (E_INPUT). */
  allowDamaged?: boolean;
  /** Video input: skip the decoder's deblocking filter (about 20% faster decoding, slightly blockier
   * pixels; see DecodeOptions.fastDecode). Default false. */
  fastDecode?: boolean;
}

/** An open bundle: the scoring core plus reading inputs from files. */
export interface LoadedBundle extends Omit<ScoringCore, 'checkOptions'> {
  /** The bundle folder (absolute). */
  readonly dir: string;
  /** Reads and scores a video file or frame folder. */
  score(input: string, opts?: ScoreOptions): Promise<ScoreResult>;
  /** Scores an already-read query (see ./input.ts). */
  scoreQuery(query: QueryInput, opts?: ScoreOptions, decodeMs?: number): Promise<ScoreResult>;
}

/** Opens a bundle folder: reads and validates it, starts the three ONNX Runtime sessions once. */
export async function loadBundle(dir: string, opts: { threads?: number } = {}): Promise<LoadedBundle> {
  const b = await readBundle(dir);
  const sessions = await openSessions(b.graphs, { threads: opts.threads ?? 2 });
  let core: ScoringCore;
  try {
    core = createScoringCore({
      manifest: b.manifest,
      exemplars: b.exemplars,
      sessions,
      where: b.dir,
      graphNames: b.graphs,
    });
  } catch (e) {
    for (const s of Object.values(sessions)) await s.session.release();
    throw e;
  }
  const m = b.manifest;
  return {
    dir: b.dir,
    manifest: m,
    exemplars: b.exemplars,
    actionTypes: core.actionTypes,
    scoreQuery: core.scoreQuery,
    async score(input: string, o: ScoreOptions = {}): Promise<ScoreResult> {
      // Options are checked before the (slow) decoding.
      core.checkOptions(o);
      const t0 = performance.now();
      const q = await readQueryInput(input, queryOptions(m, o));
      const decodeMs = performance.now() - t0;
      o.onProgress?.({ kind: 'step', step: 'decode', ms: decodeMs });
      return core.scoreQuery(q, o, decodeMs);
    },
    dispose: core.dispose,
  };
}
/**
 * Scores one video file or frame folder with a bundle: an open one (`bundle`, kept open) or a folder
 * (`bundleDir`, opened and closed around this call). Returns plain data (see ScoreResult).
 */
export async function score(
  input: string,
  opts: ScoreOptions & ({ bundle: LoadedBundle } | { bundleDir: string; threads?: number }),
): Promise<ScoreResult> {
  if ('bundle' in opts) return opts.bundle.score(input, opts);
  const b = await loadBundle(opts.bundleDir, { threads: opts.threads });
  try {
    return await b.score(input, opts);
  } finally {
    await b.dispose();
  }
}
