import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { modelConfig } from '../../src/model/config.ts';
import { countParams, type Params } from '../../src/model/params.ts';
import { regressorForward, regressorSpecs } from '../../src/model/regressor.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('regressorSpecs', () => {
  it('counts 110,977 parameters at full size: 368 -> 256 -> 64 -> 1', () => {
    const specs = regressorSpecs(modelConfig('mcore-regnety002'));
    expect(countParams(specs)).toBe(110_977);
    expect(specs['regressor.layer1.weight'].shape).toEqual([368, 256]);
    expect(specs['regressor.layer2.weight'].shape).toEqual([256, 64]);
    expect(specs['regressor.layer3.weight'].shape).toEqual([64, 1]);
    expect(specs['regressor.layer3.bias'].shape).toEqual([1]);
    expect(specs['regressor.layer2.bias'].init).toEqual({ kind: 'uniform', bound: 1 / 16 });
  });
});

describe('regressorForward', () => {
  it('is Linear-ReLU-Linear-ReLU-Linear (hand-computed, D = 2, hidden [2, 2])', () => {
    const cfg = modelConfig('mcore-tiny');
    cfg.backbone.widths = [8, 8, 8, 2];
    cfg.regressor.hidden = [2, 2];
    // ours [in, out]: y = x W + b
    const params: Params = {
      'regressor.layer1.weight': tf.tensor2d([
        [1, -1],
        [2, 0.5],
      ]),
      'regressor.layer1.bias': tf.tensor1d([0.5, -1]),
      'regressor.layer2.weight': tf.tensor2d([
        [1, 2],
        [-3, 1],
      ]),
      'regressor.layer2.bias': tf.tensor1d([0, -0.5]),
      'regressor.layer3.weight': tf.tensor2d([[2], [-1]]),
      'regressor.layer3.bias': tf.tensor1d([0.25]),
    };
    const x = [
      [1, 1],
      [-1, 2],
    ];
    const want = x.map(([a, b]) => {
      const h1 = [Math.max(0, a + 2 * b + 0.5), Math.max(0, -a + 0.5 * b - 1)];
      const h2 = [Math.max(0, h1[0] - 3 * h1[1]), Math.max(0, 2 * h1[0] + h1[1] - 0.5)];
      return 2 * h2[0] - h2[1] + 0.25;
    });
    const y = regressorForward(params, cfg, tf.tensor2d(x));
    expect(y.shape).toEqual([2, 1]);
    const got = y.dataSync();
    expect(got[0]).toBeCloseTo(want[0], 5);
    expect(got[1]).toBeCloseTo(want[1], 5);
    // By hand: row 1 h1 = [3.5, 0] (ReLU clips -1.5), h2 = [3.5, 6.5]; row 2 h1 = [3.5, 1], h2 = [0.5, 7.5].
    expect(want).toEqual([0.75, -6.25]);
    tf.dispose([y, ...Object.values(params)]);
  });
});
