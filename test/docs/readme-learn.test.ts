/**
 * README "Training on your own action": its tables (SynthDive, and its 4-stage variant) are learnTable of the
 * committed bench/learn results (a figure the bench did not write fails here), and the table function
 * renders a known case exactly.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnTable, type Results } from '../../bench/learn/table.ts';
import { repoRoot } from '../helpers/cli.ts';

const results = JSON.parse(
  readFileSync(path.join(repoRoot, 'bench/learn/results-400.json'), 'utf8'),
) as Results;
const results4 = JSON.parse(
  readFileSync(path.join(repoRoot, 'bench/learn/results-400-4stages.json'), 'utf8'),
) as Results;
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

describe('README learning table', () => {
  it('is learnTable of bench/learn/results-400.json, between its markers', () => {
    const m = /<!-- learn-table:begin -->\n([\s\S]*?)\n<!-- learn-table:end -->/.exec(readme);
    expect(m, 'README.md lacks the learn-table markers').not.toBeNull();
    expect(m![1]).toBe(learnTable(results));
  });

  it('has the table of the 4-stage variant: learnTable of bench/learn/results-400-4stages.json', () => {
    const m = /<!-- learn-table-4stages:begin -->\n([\s\S]*?)\n<!-- learn-table-4stages:end -->/.exec(readme);
    expect(m, 'README.md lacks the learn-table-4stages markers').not.toBeNull();
    expect(m![1]).toBe(learnTable(results4));
    expect(Object.keys(results4.seeds).length).toBeGreaterThanOrEqual(3);
  });

  it('comes from several seeds that no shipped weight has seen, each with the paper objective and L_rec', () => {
    const seeds = Object.keys(results.seeds).map(Number);
    expect(seeds.length).toBeGreaterThanOrEqual(3);
    // The demo uses seeds 0-2, the shipped backbone seed 1000.
    for (const s of seeds) expect(s).toBeGreaterThanOrEqual(2000);
    for (const run of Object.values(results.seeds)) {
      expect(run.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['paper', 'L_rec']));
    }
  });

  it('renders rows, means and reference points exactly', () => {
    const row = (name: string, noDn: number, dn: number, within: number) => ({
      name,
      what: `${name} objective`,
      srccNoDn: noDn,
      srccDn: dn,
      withinType: within,
      typeMeanDn: 0.6,
      ridgeNoDn: 0.3,
      ridgeWithinType: 0.2,
      seconds: 100,
    });
    const run = (rows: ReturnType<typeof row>[]) => ({ date: '', machine: '', jobs: 1, rows });
    const table = learnTable({
      clips: 400,
      epochs: 30,
      seeds: { '2': run([row('a', 0.5, 0.8, 0.4)]), '1': run([row('a', 0.25, 0.7, 0.2)]) },
    });
    expect(table.split('\n')).toEqual([
      '| configuration | seed | SRCC no-dn | SRCC dn | within-type | train + eval |',
      '|---|---|---|---|---|---|',
      '| a: a objective | 1 | 0.250 | 0.700 | 0.200 | 100 s |',
      '| a: a objective | 2 | 0.500 | 0.800 | 0.400 | 100 s |',
      '| **a, mean** | 2 seeds | **0.375** | **0.750** | **0.300** | |',
      "| reference: action type's training mean | 1 | - | 0.600 | 0.000 | - |",
      '| reference: whole-video ridge on pixels | 1 | 0.300 | - | 0.200 | - |',
      "| reference: action type's training mean | 2 | - | 0.600 | 0.000 | - |",
      '| reference: whole-video ridge on pixels | 2 | 0.300 | - | 0.200 | - |',
    ]);
  });
});
