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
  aiou50: number;
  aiou75: number;
}

/** SRCC / R-l2 x100 / AIoU@0.5 / AIoU@0.75 (x100) per method, as papers print them. */
export function metricsTable(rows: Record<string, MetricRow>): string {
  return table(
    ['method', 'SRCC', 'R-l2 x100', 'AIoU@0.5', 'AIoU@0.75'],
    Object.entries(rows).map(([name, m]) => [
      name,
      fmt(m.srcc),
      fmt(m.rl2 * 100),
      fmt(m.aiou50 * 100, 2),
      fmt(m.aiou75 * 100, 2),
    ]),
  );
}
