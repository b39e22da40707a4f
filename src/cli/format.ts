/** Plain-text tables for the CLI. */

/** Formats rows as an aligned table: first column left-aligned, the rest right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join(
    '\n',
  );
}

/** A metric with fixed decimals; NaN (not applicable) as '-'. */
export function fmt(x: number, digits = 4): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

export interface MetricRow {
  srcc: number;
  rl2: number;
  /** Percent (0-100). */
  aiou50: number;
  aiou75: number;
  /** SRCC with / without action types and within-type SRCC (src/eval/evaluate.ts EvalMetrics). */
  srccDn?: number;
  srccNoDn?: number;
  withinTypeSrcc?: number;
}

/** A reference point's row (src/eval/reference.ts): SRCC, within-type SRCC, R-l2. */
export interface ReferenceRow {
  srcc: number;
  withinTypeSrcc: number;
  rl2: number;
}

/**
 * Per method: SRCC of the chosen protocol, SRCC with action types (dn) and without (no-dn), within-type
 * SRCC, R-l2 x100, AIoU@0.5 and AIoU@0.75 in percent, as papers print them. Reference points follow as
 * rows of their own: `typeMean` (uses the action type: its SRCC is "with types") and `ridge` (uses none).
 */
export function metricsTable(
  rows: Record<string, MetricRow>,
  refs?: { typeMean: ReferenceRow; ridge: ReferenceRow },
): string {
  const body = Object.entries(rows).map(([name, m]) => [
    name,
    fmt(m.srcc),
    fmt(m.srccDn ?? Number.NaN),
    fmt(m.srccNoDn ?? Number.NaN),
    fmt(m.withinTypeSrcc ?? Number.NaN),
    fmt(m.rl2 * 100),
    fmt(m.aiou50, 2),
    fmt(m.aiou75, 2),
  ]);
  if (refs) {
    const { typeMean: t, ridge: r } = refs;
    body.push(
      ['(type-mean)', fmt(t.srcc), fmt(t.srcc), '-', fmt(t.withinTypeSrcc), fmt(t.rl2 * 100), '-', '-'],
      ['(ridge)', fmt(r.srcc), '-', fmt(r.srcc), fmt(r.withinTypeSrcc), fmt(r.rl2 * 100), '-', '-'],
    );
  }
  return table(
    ['method', 'SRCC', 'SRCC dn', 'SRCC no-dn', 'within-type', 'R-l2 x100', 'AIoU@0.5 %', 'AIoU@0.75 %'],
    body,
  );
}
