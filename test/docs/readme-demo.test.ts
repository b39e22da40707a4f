/**
 * The README's demo table is the committed results.json of a real `mcore demo` run (docs/demo-results.json),
 * rendered by demoMarkdownTable: a figure in the README that the code did not write fails here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DemoResults, demoMarkdownTable } from '../../src/eval/results.ts';
import { DEMO_METHODS } from '../../src/verbs/demo.ts';
import { repoRoot } from '../helpers/cli.ts';

const results = JSON.parse(
  readFileSync(path.join(repoRoot, 'docs/demo-results.json'), 'utf8'),
) as DemoResults;
const noLq = JSON.parse(
  readFileSync(path.join(repoRoot, 'docs/demo-results-no-lq.json'), 'utf8'),
) as DemoResults;
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

describe('README demo table', () => {
  it('is demoMarkdownTable of docs/demo-results.json with the no-L_q row, between its markers', () => {
    const m = /<!-- demo-table:begin -->\n([\s\S]*?)\n<!-- demo-table:end -->/.exec(readme);
    expect(m, 'README.md lacks the demo-table markers').not.toBeNull();
    expect(m![1]).toBe(
      demoMarkdownTable(results, [{ label: 'backbone pretrained without L_q', results: noLq }]),
    );
  });

  it('the no-L_q row is a full demo run of mcore on seed 0 from a backbone pretrained without L_q', () => {
    expect(noLq.seed).toBe(0);
    expect(Object.keys(noLq.methods)).toEqual(['mcore']);
    expect(noLq.config.clips).toBe(600);
    expect(String(noLq.config.backbone)).toMatch(/--no-quality/);
    expect((noLq.config.loss as { qualityWeight: number }).qualityWeight).toBe(0);
    // Same data and split: the reference points agree with the main run's.
    expect(noLq.references?.typeMean.srcc).toBe(results.references?.typeMean.srcc);
  });

  it('comes from a full demo run (seed 0, every method, the reference points and the oracle)', () => {
    expect(results.seed).toBe(0);
    expect(Object.keys(results.methods)).toEqual(DEMO_METHODS);
    expect(results.config.clips).toBe(600);
    expect(results.references?.typeMean.srcc).toBeGreaterThan(0);
    expect(results.oracle?.srcc).toBeGreaterThan(results.references!.typeMean.srcc);
  });

  it('renders a method and a reference row exactly', () => {
    const table = demoMarkdownTable({
      methods: {
        mcore: {
          srcc: 0.5,
          srccDn: 0.5,
          srccNoDn: 0.25,
          withinTypeSrcc: Number.NaN,
          rl2: 0.0123,
          aiou50: 100,
          aiou75: 87.5,
        },
      },
      references: {
        typeMean: { srcc: 0.6, withinTypeSrcc: 0, rl2: 0.02 },
        ridge: { srcc: 0.4, withinTypeSrcc: 0.1, rl2: 0.03, input: 'pixels', dims: 384, lambda: 10 },
      },
      seed: 0,
      config: {},
      details: {},
      seconds: 1,
    });
    expect(table.split('\n')).toEqual([
      '| method | SRCC no-dn | SRCC dn | within-type SRCC | R-l2 x100 | AIoU@0.5 % | AIoU@0.75 % |',
      '|---|---|---|---|---|---|---|',
      '| `mcore` | 0.2500 | 0.5000 | - | 1.2300 | 100.00 | 87.50 |',
      '| type-mean predictor (knows the action type) | - | 0.6000 | 0.0000 | 2.0000 | - | - |',
      '| whole-video ridge baseline | 0.4000 | - | 0.1000 | 3.0000 | - | - |',
    ]);
  });
});
