import { describe, expect, it } from 'vitest';
import { modelConfig } from '../../src/model/config.ts';
import { modelSummary } from '../../src/model/summary.ts';
import { mcore } from '../helpers/cli.ts';

/** Spec 2.1b: the used parameters of the paper's model (PyTorch's parameters(), BN buffers excluded). */
const SPEC = {
  backbone: 2_793_996,
  gsm: 21_602,
  segmenter: 1_630_978,
  decoder: 4_888_512,
  regressor: 110_977,
  total: 9_446_065,
};

describe('mcore model summary', () => {
  it('counts the full-size model within 1% of the spec per module (exactly, in fact)', () => {
    const rows = modelSummary(modelConfig('mcore-regnety002'));
    for (const r of rows) {
      const want = SPEC[r.module as keyof typeof SPEC];
      expect(Math.abs(r.params - want) / want, r.module).toBeLessThan(0.01);
      expect(r.params, r.module).toBe(want);
    }
  });

  it('prints the table and JSON, and refuses an unknown size', async () => {
    const t = await mcore('model', 'summary');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/decoder\s+4,888,512/);
    expect(t.stdout).toMatch(/total\s+9,446,065/);
    const j = await mcore('model', 'summary', '--size', 'tiny', '--json');
    const rows = JSON.parse(j.stdout) as { module: string; params: number }[];
    expect(rows.map((r) => r.module)).toEqual([
      'backbone',
      'gsm',
      'segmenter',
      'decoder',
      'regressor',
      'total',
    ]);
    expect(rows[5].params).toBe(rows.slice(0, 5).reduce((a, r) => a + r.params, 0));
    const bad = await mcore('model', 'summary', '--size', 'huge');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--size must be full or tiny/);
  });
});
