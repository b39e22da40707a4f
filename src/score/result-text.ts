/**
 * A score result as text cells, shared by every place that shows one (the CLI, the HTML report, the
 * browser page): signed deltas and the stage table. Runtime-neutral (part of ./core.ts).
 *
 * @example
 * const { head, rows } = stageTable(result);   // head: ['stage', 'sampled', ...]; rows[1][0]: 'flight'
 */
import type { ScoreResult } from './scoring.ts';

/** x with its sign: '+0.120' / '-1.500' (`digits` decimals). */
export function signed(x: number, digits = 3): string {
  return `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(digits)}`;
}

/** The stages of a result: sampled frames, source frames, seconds and the mean delta over the exemplars. */
export function stageTable(r: ScoreResult): { head: string[]; rows: string[][] } {
  return {
    head: ['stage', 'sampled', 'source frames', 'seconds', 'mean delta'],
    rows: r.stages.map((s, i) => [
      s.name,
      `${s.start}-${s.end - 1}`,
      `${s.sourceStart}-${s.sourceEnd - 1}`,
      s.startSec !== undefined && s.endSec !== undefined
        ? `${s.startSec.toFixed(2)}-${s.endSec.toFixed(2)}`
        : '-',
      signed(r.perStage[i].mean),
    ]),
  };
}

/** The exemplars of a result: key, type, score, delta, score + delta, and the delta of each stage. */
export function exemplarTable(r: ScoreResult): { head: string[]; rows: string[][] } {
  return {
    head: ['exemplar', 'type', 'score', 'delta', 'score+delta', ...r.perStage.map((s) => s.stage)],
    rows: r.exemplars.map((e, i) => [
      e.key,
      e.actionType,
      e.score.toFixed(2),
      signed(e.delta),
      e.predicted.toFixed(2),
      ...r.perStage.map((s) => signed(s.deltas[i].delta)),
    ]),
  };
}
