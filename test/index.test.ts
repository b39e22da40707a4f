import { describe, expect, it } from 'vitest';
import * as mcore from '../src/index.ts';

describe('library entry point', () => {
  it('exports the verbs a user calls', () => {
    for (const name of [
      'useBackend',
      'resolveConfig',
      'openDataset',
      'createSynthDive',
      'runDemo',
      'trainRun',
      'evalRun',
      'loadBundle',
      'score',
      'exportBundle',
      'scoreBatch',
      'listBatchInputs',
      'mergeResults',
      'resolveShard',
      'exportRunPth',
      'srcc',
      'rl2',
      'readTorchCheckpoint',
      'modelSummary',
    ]) {
      expect(typeof (mcore as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(mcore.srcc([1, 2, 3], [1, 3, 2])).toBeCloseTo(0.5, 10);
    expect(mcore.modelSummary(mcore.modelConfig('mcore-regnety002')).at(-1)?.params).toBe(9_446_065);
  });
});
