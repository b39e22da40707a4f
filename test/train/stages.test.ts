import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.ts';
import { setsKey, stagesFromDataset } from '../../src/train/stages.ts';
import { expectMcoreError } from '../helpers/errors.ts';

describe('stagesFromDataset', () => {
  const cfg = resolveConfig({});
  const four = ['run-up', 'flight', 'landing', 'finish'];

  it('takes K from the dataset and the default tasWeights for K, unless the user set them', () => {
    const derived = stagesFromDataset(cfg, four, 'v.csv');
    expect(derived.model.stages).toBe(4);
    expect(derived.loss.tasWeights).toEqual([1, 1, 1]);
    expect(stagesFromDataset(cfg, ['a', 'b', 'c'], 'x')).toBe(cfg); // K = 3 already: unchanged
  });

  it('refuses an explicit model.stages or tasWeights that contradicts the dataset, naming both', () => {
    expectMcoreError(
      () => stagesFromDataset(cfg, four, 'v.csv', { stages: true, tasWeights: false }),
      'E_CONFIG',
      'model.stages=3 is set, but v.csv has 4 stages (run-up, flight, landing, finish); drop model.stages',
    );
    expectMcoreError(
      () => stagesFromDataset(cfg, four, 'v.csv', { stages: false, tasWeights: true }),
      'E_CONFIG',
      'loss.tasWeights has 2 weight(s), but v.csv has 4 stages (run-up, flight, landing, finish): give 3',
    );
    const set = resolveConfig({}, ['model.stages=4', 'loss.tasWeights=[1,2,3]']);
    expect(stagesFromDataset(set, four, 'v.csv', { stages: true, tasWeights: true })).toBe(set);
  });

  it('resolveConfig gives model.stages=K without tasWeights the default weights for K', () => {
    expect(resolveConfig({}, ['model.stages=5']).loss.tasWeights).toEqual([1, 1, 1, 1]);
    expect(resolveConfig({}).loss.tasWeights).toEqual([1, 2]);
  });

  it('setsKey finds a key in a config file object or a --set list', () => {
    expect(setsKey({ model: { stages: 4 } }, [], 'model.stages')).toBe(true);
    expect(setsKey({ model: {} }, ['train.epochs=2', ' model.stages = 4'], 'model.stages')).toBe(true);
    expect(setsKey({ model: { frames: 8 } }, ['model.stagesX=1'], 'model.stages')).toBe(false);
  });
});
