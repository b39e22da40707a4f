/**
 * The results of methods trained and evaluated on one split, as `mcore demo` writes them to
 * results.json and the report (./report.ts) renders them.
 */
import type { EpochRecord } from '../train/trainer.ts';
import type { EvalMetrics } from './evaluate.ts';
import type { ReferencePoint, ReferencePoints } from './reference.ts';

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
  /** What knowing the hidden stage qualities reaches on the split (oracleReference). */
  oracle?: ReferencePoint;
  seed: number;
  config: Record<string, unknown>;
  details: Record<string, MethodResult>;
  seconds: number;
}

const cell = (x: number | undefined, scale = 1, digits = 4) =>
  x === undefined || !Number.isFinite(x) ? '-' : (x * scale).toFixed(digits);

/**
 * The README's demo table (markdown) from results.json: each method's SRCC without and with action types,
 * within-type SRCC, R-l2 x100 and AIoU, then the reference points of the same split. The README quotes it
 * verbatim and a test checks that it matches the committed results (docs/demo-results.json).
 */
export function demoMarkdownTable(
  results: DemoResults,
  variants: readonly { label: string; results: DemoResults }[] = [],
): string {
  const head = '| method | SRCC no-dn | SRCC dn | within-type SRCC | R-l2 x100 | AIoU@0.5 % | AIoU@0.75 % |';
  const rows = Object.entries(results.methods).map(
    ([name, m]) =>
      `| \`${name}\` | ${cell(m.srccNoDn)} | ${cell(m.srccDn)} | ${cell(m.withinTypeSrcc)} | ${cell(m.rl2, 100)} | ` +
      `${cell(m.aiou50, 1, 2)} | ${cell(m.aiou75, 1, 2)} |`,
  );
  const ref = (name: string, p: ReferencePoint, noDn: boolean, dn: boolean) =>
    `| ${name} | ${noDn ? cell(p.srcc) : '-'} | ${dn ? cell(p.srcc) : '-'} | ${cell(p.withinTypeSrcc)} | ` +
    `${cell(p.rl2, 100)} | - | - |`;
  for (const v of variants) {
    for (const [name, m] of Object.entries(v.results.methods)) {
      rows.push(
        `| \`${name}\`, ${v.label} | ${cell(m.srccNoDn)} | ${cell(m.srccDn)} | ${cell(m.withinTypeSrcc)} | ` +
          `${cell(m.rl2, 100)} | ${cell(m.aiou50, 1, 2)} | ${cell(m.aiou75, 1, 2)} |`,
      );
    }
  }
  if (results.references) {
    rows.push(ref('type-mean predictor (knows the action type)', results.references.typeMean, false, true));
    rows.push(ref('whole-video ridge baseline', results.references.ridge, true, false));
  }
  if (results.oracle) rows.push(ref('oracle (knows the hidden stage qualities)', results.oracle, true, true));
  return [head, '|---|---|---|---|---|---|---|', ...rows].join('\n');
}
