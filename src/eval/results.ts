/**
 * The results of methods trained and evaluated on one split, as `mcore demo` writes them to
 * results.json and the report (./report.ts) renders them.
 */
import type { EpochRecord } from '../train/trainer.ts';
import type { EvalMetrics } from './evaluate.ts';
import type { ReferencePoints } from './reference.ts';

export interface MethodResult {
  metrics: EvalMetrics;
  history: EpochRecord[];
  seconds: number;
  /** honestyWarnings against the split's reference points (src/eval/reference.ts). */
  warnings?: string[];
}

/** The headline metrics of a method in results.json (AIoU in percent). */
export type DemoMetrics = Pick<
  EvalMetrics,
  'srcc' | 'srccDn' | 'srccNoDn' | 'withinTypeSrcc' | 'rl2' | 'aiou50' | 'aiou75'
>;

export interface DemoResults {
  methods: Record<string, DemoMetrics>;
  /** The type-mean predictor and the whole-video ridge baseline on the demo's split. */
  references?: ReferencePoints;
  seed: number;
  config: Record<string, unknown>;
  details: Record<string, MethodResult>;
  seconds: number;
}
