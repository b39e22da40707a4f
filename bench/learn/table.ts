/**
 * The table of bench/learn (README "Training on your own action"): each configuration per seed, its mean
 * over the seeds, and the reference points of each seed's split. test/docs/readme-learn.test.ts checks
 * that the README's table is this function of the committed results file.
 */
export interface Row {
  name: string;
  what: string;
  srccNoDn: number;
  srccDn: number;
  withinType: number;
  typeMeanDn: number;
  ridgeNoDn: number;
  ridgeWithinType: number;
  seconds: number;
}

export interface SeedRun {
  date: string;
  machine: string;
  jobs: number;
  rows: Row[];
}
export interface Results {
  clips: number;
  epochs: number;
  seeds: Record<string, SeedRun>;
}

/** A markdown table: each configuration per seed, then its mean over the seeds; the reference points. */
export function learnTable(results: Results): string {
  const f = (x: number) => x.toFixed(3);
  const seeds = Object.keys(results.seeds).sort();
  const names = [...new Set(seeds.flatMap((s) => results.seeds[s].rows.map((r) => r.name)))];
  const lines = [
    '| configuration | seed | SRCC no-dn | SRCC dn | within-type | train + eval |',
    '|---|---|---|---|---|---|',
  ];
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  for (const name of names) {
    const rows = seeds.flatMap((s) =>
      results.seeds[s].rows.filter((r) => r.name === name).map((r) => ({ s, r })),
    );
    for (const { s, r } of rows)
      lines.push(
        `| ${r.name}: ${r.what} | ${s} | ${f(r.srccNoDn)} | ${f(r.srccDn)} | ${f(r.withinType)} | ${r.seconds.toFixed(0)} s |`,
      );
    if (rows.length > 1)
      lines.push(
        `| **${name}, mean** | ${rows.length} seeds | **${f(mean(rows.map((x) => x.r.srccNoDn)))}** | **${f(mean(rows.map((x) => x.r.srccDn)))}** | **${f(mean(rows.map((x) => x.r.withinType)))}** | |`,
      );
  }
  for (const s of seeds) {
    const ref = results.seeds[s].rows[0];
    lines.push(`| reference: action type's training mean | ${s} | - | ${f(ref.typeMeanDn)} | 0.000 | - |`);
    lines.push(
      `| reference: whole-video ridge on pixels | ${s} | ${f(ref.ridgeNoDn)} | - | ${f(ref.ridgeWithinType)} | - |`,
    );
  }
  return lines.join('\n');
}
