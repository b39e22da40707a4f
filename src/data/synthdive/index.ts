/**
 * SynthDive: an embedded procedural dataset of staged dives (take-off, flight, entry; or, with
 * `stages: 4`, take-off, somersault, come-out, entry), deterministic
 * from a seed, for `mcore demo` and tests. A fair small-scale stand-in for FineDiving: 18 action
 * types (dive numbers) with degrees of difficulty 1.5-3.6, hidden per-stage qualities that show only
 * inside their stage, a FINA-scored judge panel with noise, and nuisance (camera, colours, lighting,
 * noise) that never affects the score. See params.ts (what is drawn), choreography.ts (the motion),
 * render.ts (the pixels) and judges.ts (the scores).
 *
 * Example:
 *   const ds = createSynthDive({ seed: 1, clips: 600, width: 48, height: 48 });
 *   const clip = ds.clips[0];   // { key: 'synthdive-0000', actionType: '405c', difficulty: 2.5,
 *                               //   score: 37.5, judgeScores: [5, 4.5, 6, 5, 5], transitions: [43, 62], ... }
 *   const f = ds.loadFrameSync(clip.key, clip.transitions[0]); // first flight frame, 48x48x3 bytes
 *   ds.quality(clip.key);          // [0.379, 0.516, 0.483] = [q_takeoff, q_flight, q_entry]
 */
import { McoreError } from '../../errors.ts';
import { createRng, shuffled } from '../../rng.ts';
import type { ClipInfo, Frame, StagedDataset } from '../types.ts';
import { ACTION_TYPES } from './actions.ts';
import { finaScore, type JudgeCount, judgePanel } from './judges.ts';
import {
  canonicalNuisance,
  type SynthDiveClipParams,
  type SynthDiveStages,
  sampleNuisance,
  sampleQualities,
  sampleStyle,
  sampleTimeline,
} from './params.ts';
import { renderFrameSync } from './render.ts';

export { ACTION_TYPES, type ActionType, difficultyOf } from './actions.ts';
export {
  finaScore,
  finaTrimmedSum,
  JUDGE_WEIGHTS,
  JUDGE_WEIGHTS_4,
  type JudgeCount,
  judgePanel,
} from './judges.ts';
export type { DiveStyle, Nuisance, SynthDiveClipParams, SynthDiveStages } from './params.ts';
export { renderFrame, renderFrameSync } from './render.ts';

export const SYNTHDIVE_STAGES = ['take-off', 'flight', 'entry'] as const;
/** Stage names of the 4-stage variant (`stages: 4`). */
export const SYNTHDIVE_STAGES_4 = ['take-off', 'somersault', 'come-out', 'entry'] as const;

export interface SynthDiveOptions {
  /** Seed of everything that matters for the score: types, timelines, qualities, style, judges. */
  seed: number;
  /** Number of clips (default 600). */
  clips?: number;
  /** Frame size in pixels (default 48 x 48). */
  width?: number;
  height?: number;
  /** Judges per panel (default 5). */
  judges?: JudgeCount;
  /** Share of each action type's clips in the train split (default 0.75). */
  trainFraction?: number;
  /** Seed of the nuisance (camera, colours, lighting, noise); default derived from `seed`. */
  nuisanceSeed?: number;
  /** false renders every clip in the same standard conditions (default true). */
  nuisance?: boolean;
  /**
   * 3 (default: take-off, flight, entry) or 4 (take-off, somersault, come-out, entry: the flight split
   * in two, other choreography and judges; for measuring on a staged action the shipped weights never saw).
   */
  stages?: SynthDiveStages;
}

export interface SynthDive extends StagedDataset {
  readonly options: Readonly<Required<SynthDiveOptions>>;
  /** The parameter record a clip is rendered from. */
  params(key: string): SynthDiveClipParams;
  /** Hidden stage qualities of a clip: [q_takeoff, q_flight, q_entry] (4 stages: [q_takeoff, q_somersault, q_comeout, q_entry]). */
  quality(key: string): number[];
  loadFrameSync(key: string, index: number): Frame;
}

/** Most clips and largest frame side: beyond them the clip parameters or frames would not fit in memory. */
export const MAX_CLIPS = 100_000;
export const MAX_SIZE = 1024;

function resolveOptions(o: SynthDiveOptions): Required<SynthDiveOptions> {
  const r: Required<SynthDiveOptions> = {
    seed: o.seed,
    clips: o.clips ?? 600,
    width: o.width ?? 48,
    height: o.height ?? 48,
    judges: o.judges ?? 5,
    trainFraction: o.trainFraction ?? 0.75,
    nuisanceSeed: o.nuisanceSeed ?? (o.seed ^ 0x5bd1e995) >>> 0,
    nuisance: o.nuisance ?? true,
    stages: o.stages ?? 3,
  };
  const issues: string[] = [];
  if (!Number.isInteger(r.seed)) issues.push(`seed must be an integer, found ${r.seed}`);
  if (!Number.isInteger(r.nuisanceSeed))
    issues.push(`nuisanceSeed must be an integer, found ${r.nuisanceSeed}`);
  if (!Number.isInteger(r.clips) || r.clips < 1 || r.clips > MAX_CLIPS)
    issues.push(`clips must be an integer in [1, ${MAX_CLIPS}], found ${r.clips}`);
  for (const k of ['width', 'height'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 8 || r[k] > MAX_SIZE)
      issues.push(`${k} must be an integer in [8, ${MAX_SIZE}], found ${r[k]}`);
  }
  if (r.judges !== 5 && r.judges !== 7) issues.push(`judges must be 5 or 7, found ${r.judges}`);
  if (r.stages !== 3 && r.stages !== 4) issues.push(`stages must be 3 or 4, found ${r.stages}`);
  if (!(r.trainFraction > 0 && r.trainFraction < 1)) {
    issues.push(`trainFraction must be in (0, 1), found ${r.trainFraction}`);
  }
  if (issues.length > 0) throw new McoreError('E_CONFIG', `synthdive: ${issues.join('; ')}`);
  return r;
}

/**
 * Builds the dataset: clip i gets a balanced action type (every type occurs clips/18 times, +-1),
 * its own random streams for timeline, qualities, style and judges (from `seed`) and for nuisance
 * (from `nuisanceSeed`). Split: within each action type, round(trainFraction x count) clips (at
 * least 1) go to train, the rest to test, so every test type occurs in train.
 */
export function createSynthDive(options: SynthDiveOptions): SynthDive {
  const opts = resolveOptions(options);
  const rng = createRng(opts.seed);
  const nuisanceRng = createRng(opts.nuisanceSeed);
  const types = shuffled(
    Array.from({ length: opts.clips }, (_, i) => ACTION_TYPES[i % ACTION_TYPES.length]),
    rng,
  );
  const params: SynthDiveClipParams[] = [];
  const awards: number[][] = [];
  for (let i = 0; i < opts.clips; i++) {
    const clipRng = rng.fork();
    const timeline = sampleTimeline(clipRng.fork(), opts.stages);
    const quality = sampleQualities(clipRng.fork(), opts.stages);
    const style = sampleStyle(clipRng.fork());
    const judgeRng = clipRng.fork();
    const clipNuisanceRng = nuisanceRng.fork();
    params.push({
      key: `synthdive-${String(i).padStart(4, '0')}`,
      action: types[i],
      ...timeline,
      quality,
      style,
      nuisance: opts.nuisance ? sampleNuisance(clipNuisanceRng) : canonicalNuisance(),
    });
    awards.push(judgePanel(quality, opts.judges, judgeRng));
  }

  const split = new Map<string, 'train' | 'test'>();
  const splitRng = rng.fork();
  for (const t of ACTION_TYPES) {
    const members = shuffled(
      params.filter((p) => p.action.name === t.name).map((p) => p.key),
      splitRng,
    );
    const nTrain = Math.max(1, Math.round(opts.trainFraction * members.length));
    members.forEach((key, k) => {
      split.set(key, k < nTrain ? 'train' : 'test');
    });
  }

  const clips: ClipInfo[] = params.map((p, i) => ({
    key: p.key,
    actionType: p.action.name,
    difficulty: p.action.difficulty,
    score: finaScore(awards[i], p.action.difficulty),
    judgeScores: awards[i],
    numFrames: p.numFrames,
    transitions: [...p.transitions],
    split: split.get(p.key)!,
    stageQualities: [...p.quality],
  }));
  const byKey = new Map(params.map((p) => [p.key, p]));
  const lookup = (key: string): SynthDiveClipParams => {
    const p = byKey.get(key);
    if (!p) {
      throw new McoreError(
        'E_INPUT',
        `synthdive has no clip '${key}'; keys run synthdive-0000..synthdive-${String(opts.clips - 1).padStart(4, '0')}`,
      );
    }
    return p;
  };
  const loadFrameSync = (key: string, index: number): Frame =>
    renderFrameSync(lookup(key), index, opts.width, opts.height);

  return {
    name: 'synthdive',
    stageNames: [...(opts.stages === 4 ? SYNTHDIVE_STAGES_4 : SYNTHDIVE_STAGES)],
    clips,
    options: Object.freeze(opts),
    params: (key) => structuredClone(lookup(key)),
    quality: (key) => [...lookup(key).quality],
    loadFrameSync,
    loadFrame: async (key, index) => loadFrameSync(key, index),
  };
}
