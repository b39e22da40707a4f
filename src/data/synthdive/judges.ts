/**
 * SynthDive judging. Each judge sees the hidden stage qualities q = [q_takeoff, q_flight, q_entry]
 * (4 stages: [q_takeoff, q_somersault, q_comeout, q_entry]) in [0, 1] and awards
 *
 *     award_j = clamp(round_half(1 + 9 * (w_j . q) + 0.5 * n_j), 0, 10),   n_j ~ N(0, 1)
 *
 * where w_j is judge j's stage weighting (rows of JUDGE_WEIGHTS, each summing to 1: some judges
 * look harder at the flight, some at the entry) and round_half rounds to the nearest 0.5.
 *
 * The dive score follows the FINA rule (Competition Regulations D 8.x): with 5 judges the highest
 * and the lowest award are cancelled, with 7 judges the two highest and the two lowest; in both
 * cases the 3 remaining awards are summed and multiplied by the degree of difficulty. The score is
 * therefore always DD x (sum of 3 awards), in [0, 30 * DD], a multiple of 0.05.
 */
import { McoreError } from '../../errors.ts';
import type { Rng } from '../../rng.ts';

export type JudgeCount = 5 | 7;

/** Stage weights [take-off, flight, entry] of the judges of a panel, in panel order. */
export const JUDGE_WEIGHTS: readonly (readonly [number, number, number])[] = [
  [0.3, 0.4, 0.3],
  [0.35, 0.35, 0.3],
  [0.25, 0.4, 0.35],
  [0.3, 0.45, 0.25],
  [0.3, 0.35, 0.35],
  [0.35, 0.4, 0.25],
  [0.25, 0.45, 0.3],
];

/**
 * Stage weights [take-off, somersault, come-out, entry] of the 4-stage variant's judges, in panel
 * order (each row sums to 1).
 */
export const JUDGE_WEIGHTS_4: readonly (readonly [number, number, number, number])[] = [
  [0.25, 0.3, 0.2, 0.25],
  [0.3, 0.25, 0.2, 0.25],
  [0.2, 0.3, 0.25, 0.25],
  [0.25, 0.35, 0.15, 0.25],
  [0.25, 0.25, 0.25, 0.25],
  [0.3, 0.3, 0.15, 0.25],
  [0.2, 0.35, 0.2, 0.25],
];

/** Standard deviation of a judge's noise, in points. */
export const JUDGE_NOISE_SD = 0.5;

/** A judge's expected (noise-free, unrounded) award for stage qualities `q` (3 or 4 stages). */
export function expectedAward(q: readonly number[], judge: number): number {
  const w = q.length === 4 ? JUDGE_WEIGHTS_4[judge] : JUDGE_WEIGHTS[judge];
  if (w.length !== q.length) {
    throw new McoreError('E_INPUT', `SynthDive judges weigh 3 or 4 stages, found ${q.length} qualities`);
  }
  let sum = 0;
  for (let s = 0; s < q.length; s++) sum += w[s] * q[s];
  return 1 + 9 * sum;
}

/** Awards of a panel of `judges` for stage qualities `q`; noise drawn from `rng`. */
export function judgePanel(q: readonly number[], judges: JudgeCount, rng: Rng): number[] {
  const out: number[] = [];
  for (let j = 0; j < judges; j++) {
    const raw = expectedAward(q, j) + JUDGE_NOISE_SD * rng.normal();
    out.push(Math.min(10, Math.max(0, Math.round(raw * 2) / 2)));
  }
  return out;
}

/**
 * Sum of the awards that count under the FINA rule: drop 1 highest and 1 lowest of 5, or 2 highest
 * and 2 lowest of 7; 3 awards remain.
 */
export function finaTrimmedSum(awards: readonly number[]): number {
  if (awards.length !== 5 && awards.length !== 7) {
    throw new McoreError('E_INPUT', `FINA scoring needs 5 or 7 judge awards, found ${awards.length}`);
  }
  const drop = awards.length === 5 ? 1 : 2;
  const sorted = awards.slice().sort((a, b) => a - b);
  let sum = 0;
  for (let i = drop; i < sorted.length - drop; i++) sum += sorted[i];
  return sum;
}

/** Dive score = difficulty x FINA trimmed sum, rounded to the 0.05 grid it lies on. */
export function finaScore(awards: readonly number[], difficulty: number): number {
  return Math.round(difficulty * finaTrimmedSum(awards) * 20) / 20;
}
