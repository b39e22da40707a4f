import { describe, expect, it } from 'vitest';
import { modelConfig } from '../../src/model/config.ts';
import { backboneMacs } from '../../src/model/summary.ts';

describe('backboneMacs', () => {
  it('counts RegNetY-200MF at 224 x 224 as the published 0.20 G multiply-accumulates', () => {
    const b = modelConfig('mcore-regnety002').backbone;
    const { convs, gsm } = backboneMacs(b, 224);
    expect(convs / 1e6).toBeCloseTo(199.15, 1);
    expect(gsm).toBeGreaterThan(0);
    expect(backboneMacs({ ...b, gsm: false }, 224)).toEqual({ convs, gsm: 0 });
  });

  it('matches a hand count: one block of 16 channels on 8 x 8 frames', () => {
    const cfg = {
      ...modelConfig('mcore-tiny').backbone,
      stemWidth: 8,
      widths: [16],
      depths: [1],
      groupWidth: 8,
      seRatio: 0.25,
      gsm: true,
    };
    // stem 3x3/2: 4x4 x 3 x 8 x 9; conv1 1x1 at 4x4: 8 -> 16; conv2 3x3/2 at 2x2, groups of 8: 16 x 8 x 9;
    // conv3 1x1 at 2x2: 16 -> 16; downsample 1x1/2 at 2x2: 8 -> 16; SE 16 -> 2 -> 16 (round(8 x 0.25) = 2)
    const convs = 16 * 3 * 8 * 9 + 16 * 8 * 16 + 4 * 16 * 8 * 9 + 4 * 16 * 16 + 4 * 8 * 16 + 2 * 16 * 2;
    // GSM on the block input (8 channels): fold 4, gate 2 outputs x 3x3x3 over 2 channels at 4x4
    expect(backboneMacs(cfg, 8)).toEqual({ convs, gsm: 16 * 2 * 2 * 27 });
  });
});
