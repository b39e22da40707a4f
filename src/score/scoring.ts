/**
 * The runtime-neutral scoring core: T sampled frames -> the predicted score, the stages and how each
 * stage compares with each exemplar, in any ONNX Runtime (sessions handed in; ../onnx/session.ts) from a
 * bundle's manifest and exemplar bank (./bundle-format.ts). No file system, no decoder: Node (./scorer.ts)
 * and the browser page supply those.
 *
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
 * const core = createScoringCore({ manifest, exemplars, sessions: { backbone, segmenter, scorer } });
 * const r = await core.scoreQuery(query, { actionType: '405c', exemplars: 10 });  // query: T sampled frames
 * r.score;                       // 71.3
 * r.stages[1];                   // { name: 'flight', start: 31, end: 70, sourceStart: 40, sourceEnd: 90, startSec: 1.6, endSec: 3.6 }
 * r.perStage[1].deltas[0];       // { exemplar: 'clip-0012', delta: -1.8 }
 * await core.dispose();
 */
import { pickExemplars } from '../data/sampling.ts';
import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { dispose, expectInput, type OnnxSession, run } from '../onnx/session.ts';
import { createRng } from '../rng.ts';
import { type BundleManifest, type ExemplarBank, type ExemplarRecord, TOKEN_DELTA } from './bundle-format.ts';
import { toModelInput, videoEncoder } from './encode.ts';

/** A query to score: T frames sampled from a video or frame folder (see ./input.ts in Node). */
export interface QueryInput {
  kind: 'video' | 'frames';
  /** Where the query came from (a path in Node, a file name in a browser). */
  path: string;
  /** The T sampled frames at the bundle's resize size. */
  frames: Frame[];
  /** Source frame (0-based position in the video or the folder's name order) of each sampled frame. */
  indices: number[];
  /** Frames in the source. */
  sourceFrames: number;
  /** Frames per second (videos only). */
  fps?: number;
  /** Repeated frames of a short clip, undecodable frames, truncated files. */
  warnings: string[];
}

export type ScoreStep = 'decode' | 'backbone' | 'segmenter' | 'pool' | 'scorer';

/** Progress of one score: each step as it finishes. */
export type ScoreEvent = { kind: 'step'; step: ScoreStep; ms: number };

export interface ScoreOptions {
  /** Exemplars of this action type only ("with dive number"); omitted: the whole bank. */
  actionType?: string;
  /** Exemplars M (default 10; fewer when the pool is smaller). */
  exemplars?: number;
  /** Seed of the exemplar choice (default 0). */
  seed?: number;
  /** Return the T sampled frames (model input size) in `frames`, e.g. for a report. */
  keepFrames?: boolean;
  onProgress?: (e: ScoreEvent) => void;
}

export interface StageResult {
  name: string;
  /** Sampled frames [start, end) of the stage (0 <= start < end <= T). */
  start: number;
  end: number;
  /** The same range in source frames [sourceStart, sourceEnd). */
  sourceStart: number;
  sourceEnd: number;
  /** The same range in seconds (videos only). */
  startSec?: number;
  endSec?: number;
}

export interface ExemplarUse {
  key: string;
  actionType: string;
  /** The exemplar's known score y_e. */
  score: number;
  /** scoreScale x delta(q, e). */
  delta: number;
  /** y_e + delta: the query's score as judged against this exemplar. */
  predicted: number;
}

export interface StageComparison {
  stage: string;
  /** Per exemplar: scoreScale x the mean regressor output over the stage's L tokens. */
  deltas: { exemplar: string; delta: number }[];
  /** Mean over the exemplars. */
  mean: number;
}

export interface ScoreTimings {
  decodeMs: number;
  backboneMs: number;
  segmenterMs: number;
  poolMs: number;
  scorerMs: number;
  totalMs: number;
}

export interface ScoreResult {
  /** Predicted score: mean over the exemplars of y_e + scoreScale * delta(q, e). */
  score: number;
  /** Mean scaled delta over the exemplars (score - mean y_e). */
  delta: number;
  input: { path: string; kind: 'video' | 'frames'; sourceFrames: number; fps?: number; sampled: number[] };
  /** The K-1 decoded transitions on the sampled frames. */
  transitions: number[];
  stages: StageResult[];
  perStage: StageComparison[];
  exemplars: ExemplarUse[];
  protocol: { actionType?: string; pool: number; requested: number; seed: number };
  warnings: string[];
  timings: ScoreTimings;
  /** The sampled frames (only with `keepFrames`). */
  frames?: Frame[];
}

/**
 * The exemplars for a query: indices into `records`, a seeded shuffle of the pool (records of
 * `actionType`, or all) cut to `count`. An action type absent from the bank: E_INPUT listing the known ones.
 */
export function chooseExemplars(
  records: readonly ExemplarRecord[],
  opts: { actionType?: string; count: number; seed: number },
): { chosen: number[]; pool: number } {
  if (!Number.isInteger(opts.count) || opts.count < 1) {
    throw new McoreError('E_INPUT', `exemplars must be a positive integer, got ${opts.count}`);
  }
  const all = records.map((_, i) => i);
  const pool =
    opts.actionType === undefined ? all : all.filter((i) => records[i].actionType === opts.actionType);
  if (pool.length === 0) {
    if (records.length === 0) throw new McoreError('E_INPUT', 'the bundle has no exemplars to compare with');
    const known = [...new Set(records.map((r) => r.actionType))].sort();
    throw new McoreError(
      'E_INPUT',
      `action type '${opts.actionType}' has no exemplars in the bundle (known: ${known.join(', ')}); ` +
        'omit --action-type to compare with the whole bank',
    );
  }
  const chosen = pickExemplars(pool, opts.count, createRng(opts.seed));
  return { chosen, pool: pool.length };
}

/** Stage ranges on the sampled and the source frames. */
function stageRanges(q: QueryInput, transitions: readonly number[], names: readonly string[]): StageResult[] {
  const T = q.indices.length;
  const bounds = [0, ...transitions, T];
  return names.map((name, s) => {
    const start = bounds[s];
    const end = bounds[s + 1];
    const sourceStart = q.indices[start];
    const sourceEnd = end < T ? q.indices[end] : q.indices[T - 1] + 1;
    const r: StageResult = { name, start, end, sourceStart, sourceEnd };
    if (q.fps !== undefined) {
      r.startSec = sourceStart / q.fps;
      r.endSec = sourceEnd / q.fps;
    }
    return r;
  });
}

/** A scorer over open sessions: scores sampled queries. */
export interface ScoringCore {
  readonly manifest: BundleManifest;
  readonly exemplars: ExemplarBank;
  /** Action types present in the bank, sorted. */
  readonly actionTypes: string[];
  /** Scores a query of T sampled frames; `decodeMs` (time spent decoding it) goes into the timings. */
  scoreQuery(query: QueryInput, opts?: ScoreOptions, decodeMs?: number): Promise<ScoreResult>;
  /** Checks options before a slow decode (E_INPUT for an unknown action type or a bad count). */
  checkOptions(opts?: ScoreOptions): void;
  /** Releases the three sessions. */
  dispose(): Promise<void>;
}

/**
 * A score, delta or per-stage delta that is NaN or infinite is an error, never a result: it comes from
 * the bundle's weights or exemplars (or a query the graphs cannot handle), not from chance.
 */
function checkFinite(
  where: string,
  query: string,
  value: number,
  uses: readonly ExemplarUse[],
  stages: readonly StageComparison[],
): void {
  const bad =
    uses.find((e) => !Number.isFinite(e.delta))?.key ??
    stages.flatMap((s) => s.deltas).find((d) => !Number.isFinite(d.delta))?.exemplar;
  if (Number.isFinite(value) && bad === undefined) return;
  throw new McoreError(
    'E_NONFINITE',
    `${where}: the score of ${query} came out ${value}${bad !== undefined ? ` (the delta against exemplar '${bad}' is not finite)` : ''}; ` +
      "the bundle's graphs produce non-finite values: export it again from a run whose loss stayed finite",
  );
}

/**
 * The scoring core over open backbone, segmenter and scorer sessions of a bundle. Throws E_INPUT if the
 * scorer graph lacks the per-token output.
 */
export function createScoringCore(parts: {
  manifest: BundleManifest;
  exemplars: ExemplarBank;
  sessions: { backbone: OnnxSession; segmenter: OnnxSession; scorer: OnnxSession };
  /** Names the bundle in errors. */
  where?: string;
  /** Names each graph (its file) in errors. */
  graphNames?: { backbone: string; segmenter: string; scorer: string };
}): ScoringCore {
  const { manifest: m, exemplars: bank, sessions } = parts;
  const scorer = sessions.scorer;
  // graphs that do not fit the manifest (swapped in from another bundle) are refused before any run
  const names = parts.graphNames ?? {
    backbone: 'backbone graph',
    segmenter: 'segmenter graph',
    scorer: 'scorer graph',
  };
  const tokensShape = [-1, m.stages * m.tokensPerStage, m.featureDim];
  expectInput(sessions.backbone, 'frames', [-1, 3, m.transform.crop, m.transform.crop], names.backbone);
  expectInput(sessions.segmenter, 'features', [-1, m.frames, m.featureDim], names.segmenter);
  expectInput(scorer, 'q_tokens', tokensShape, names.scorer);
  expectInput(scorer, 'e_tokens', tokensShape, names.scorer);
  if (!scorer.outputs.some((o) => o.name === TOKEN_DELTA)) {
    throw new McoreError(
      'E_INPUT',
      `${parts.graphNames?.scorer ?? parts.where ?? 'the bundle'}: the scorer has no '${TOKEN_DELTA}' output; export the bundle again with 'mcore export'`,
    );
  }
  const encoder = videoEncoder(sessions, { ...m, crop: m.transform.crop });
  const K = m.stages;
  const L = m.tokensPerStage;
  const D = m.featureDim;
  const per = K * L * D;
  const actionTypes = [...new Set(bank.records.map((r) => r.actionType))].sort();
  const b = { exemplars: bank };

  async function scoreQuery(q: QueryInput, o: ScoreOptions = {}, decodeMs = 0): Promise<ScoreResult> {
    const t0 = performance.now() - decodeMs;
    if (q.frames.length !== m.frames) {
      throw new McoreError(
        'E_INPUT',
        `the query has ${q.frames.length} frames but the bundle's model takes T = ${m.frames}; sample the clip with readQueryInput or score()`,
      );
    }
    const requested = o.exemplars ?? 10;
    const seed = o.seed ?? 0;
    const { chosen, pool } = chooseExemplars(b.exemplars.records, {
      actionType: o.actionType,
      count: requested,
      seed,
    });
    const warnings = [...q.warnings];
    if (chosen.length < requested) {
      const where = o.actionType === undefined ? 'the bank' : `action type '${o.actionType}'`;
      warnings.push(`only ${chosen.length} exemplar(s) of ${where} in the bundle (asked for ${requested})`);
    }
    const input = toModelInput(q.frames, m.transform);
    const enc = await encoder.encode(input, 1);
    o.onProgress?.({ kind: 'step', step: 'backbone', ms: enc.timings.backboneMs });
    o.onProgress?.({ kind: 'step', step: 'segmenter', ms: enc.timings.segmenterMs });
    o.onProgress?.({ kind: 'step', step: 'pool', ms: enc.timings.poolMs });
    const M = chosen.length;
    const qTokens = new Float32Array(M * per);
    const eTokens = new Float32Array(M * per);
    chosen.forEach((row, i) => {
      qTokens.set(enc.tokens, i * per);
      eTokens.set(b.exemplars.tokens.subarray(row * per, (row + 1) * per), i * per);
    });
    const t1 = performance.now();
    const out = await run(scorer, {
      q_tokens: { data: qTokens, dims: [M, K * L, D] },
      e_tokens: { data: eTokens, dims: [M, K * L, D] },
    });
    const scorerMs = performance.now() - t1;
    o.onProgress?.({ kind: 'step', step: 'scorer', ms: scorerMs });
    const delta = out.delta.data;
    const tokenDelta = out[TOKEN_DELTA].data;
    const scale = m.scoreScale;
    const exemplars: ExemplarUse[] = chosen.map((row, i) => {
      const r = b.exemplars.records[row];
      const d = delta[i] * scale;
      return { key: r.key, actionType: r.actionType, score: r.score, delta: d, predicted: r.score + d };
    });
    const perStage: StageComparison[] = m.stageNames.map((stage, s) => {
      const deltas = exemplars.map((e, i) => {
        let sum = 0;
        for (let j = 0; j < L; j++) sum += tokenDelta[i * K * L + s * L + j];
        return { exemplar: e.key, delta: (sum / L) * scale };
      });
      return { stage, deltas, mean: deltas.reduce((a, x) => a + x.delta, 0) / M };
    });
    const score = exemplars.reduce((a, e) => a + e.score + e.delta, 0) / M;
    const meanDelta = exemplars.reduce((a, e) => a + e.delta, 0) / M;
    checkFinite(parts.where ?? 'the bundle', q.path, score, exemplars, perStage);
    const transitions = enc.transitions[0];
    const result: ScoreResult = {
      score,
      delta: meanDelta,
      input: {
        path: q.path,
        kind: q.kind,
        sourceFrames: q.sourceFrames,
        ...(q.fps !== undefined ? { fps: q.fps } : {}),
        sampled: q.indices,
      },
      transitions,
      stages: stageRanges(q, transitions, m.stageNames),
      perStage,
      exemplars,
      protocol: {
        ...(o.actionType !== undefined ? { actionType: o.actionType } : {}),
        pool,
        requested,
        seed,
      },
      warnings,
      timings: {
        decodeMs,
        backboneMs: enc.timings.backboneMs,
        segmenterMs: enc.timings.segmenterMs,
        poolMs: enc.timings.poolMs,
        scorerMs,
        totalMs: performance.now() - t0,
      },
    };
    if (o.keepFrames) result.frames = q.frames;
    return result;
  }

  return {
    manifest: m,
    exemplars: bank,
    actionTypes,
    scoreQuery,
    checkOptions(o: ScoreOptions = {}) {
      chooseExemplars(bank.records, {
        actionType: o.actionType,
        count: o.exemplars ?? 10,
        seed: o.seed ?? 0,
      });
    },
    async dispose() {
      await encoder.dispose();
      await dispose(scorer);
    },
  };
}
