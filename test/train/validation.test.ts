/**
 * train.validation: a seeded share of each action type's training clips held out, their SRCC measured
 * after every epoch, the best checkpoint kept in RUN/best beside the latest; eval and export take it with
 * --checkpoint best.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { holdOutValidation } from '../../src/train/validation.ts';
import { mcore } from '../helpers/cli.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const clips = ['a', 'b', 'c'].flatMap((t, ti) =>
  Array.from({ length: 4 + 4 * ti }, (_, i) => ({ key: `${t}${i}`, actionType: t })),
); // 4 a, 8 b, 12 c

describe('holdOutValidation', () => {
  it('holds out round(share x n) of each type, leaves one to train on, and repeats itself from the seed', () => {
    const { fit, val } = holdOutValidation(clips, 0.25, 7);
    const count = (list: typeof clips, t: string) => list.filter((c) => c.actionType === t).length;
    expect(['a', 'b', 'c'].map((t) => count(val, t))).toEqual([1, 2, 3]);
    expect(fit.length + val.length).toBe(clips.length);
    expect(new Set([...fit, ...val].map((c) => c.key)).size).toBe(clips.length);
    expect(holdOutValidation(clips, 0.25, 7)).toEqual({ fit, val });
    expect(holdOutValidation(clips, 0.25, 8).val).not.toEqual(val);
    // A type of one clip keeps it; a share of 0.5 never empties a type.
    const half = holdOutValidation([...clips, { key: 'solo', actionType: 'd' }], 0.5, 1);
    expect(half.fit.map((c) => c.key)).toContain('solo');
    expect(['a', 'b', 'c'].every((t) => count(half.fit, t) > 0)).toBe(true);
  });

  it('refuses a share that holds out fewer than 2 clips', () => {
    expectMcoreError(
      () => holdOutValidation(clips.slice(0, 4), 0.1, 0),
      'E_CONFIG',
      /holds out 0 of 4 .* at least 2/,
    );
  });
});

describe('mcore train --set train.validation', () => {
  it('keeps the best epoch by validation SRCC in RUN/best; eval and export take it with --checkpoint best', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-validation-'));
    const out = path.join(base, 'run');
    const sets = [
      'model.frames=8',
      'train.epochs=3',
      'train.batchPairs=4',
      'model.decoder.layers=1',
      'train.validation=0.25',
      'eval.exemplars=3',
    ].flatMap((s) => ['--set', s]);
    const t = await mcore('train', '--dataset', 'synthdive:seed=2,clips=60,size=32', '--out', out, ...sets);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stderr.split('\n').filter((l) => l.includes('validation SRCC'));
    expect(lines).toHaveLength(3);
    // Every epoch's validation SRCC is in the log; best.json names the first epoch of the highest.
    const log = (await readFile(path.join(out, 'log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { epoch: number; metrics: { validationSrcc: number } });
    const srccs = log.map((r) => r.metrics.validationSrcc);
    expect(srccs.every(Number.isFinite)).toBe(true);
    const best = JSON.parse(await readFile(path.join(out, 'best', 'best.json'), 'utf8'));
    const bestIndex = srccs.indexOf(Math.max(...srccs));
    expect(best.epoch).toBe(bestIndex + 1);
    expect(best.srcc).toBe(srccs[bestIndex]);
    expect(best.clips).toBeGreaterThanOrEqual(2);
    expect(lines[2]).toContain(`best ${best.srcc.toFixed(4)} at epoch ${best.epoch}`);
    // RUN/best is a whole checkpoint: its weights are those of that epoch (the latest when it is the best).
    const bestWeights = await readFile(path.join(out, 'best', 'weights.safetensors'));
    if (best.epoch === 3) {
      expect(bestWeights.equals(await readFile(path.join(out, 'ckpt-0003', 'weights.safetensors')))).toBe(
        true,
      );
    }
    const e = await mcore('eval', '--run', out, '--checkpoint', 'best', '--exemplars', '3', '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(existsSync(path.join(out, 'eval-best-no-dn.json'))).toBe(true);
    const x = await mcore('export', '--run', out, '--checkpoint', 'best', '--out', path.join(base, 'bundle'));
    expect(x.code, x.stderr).toBe(0);
    expect(existsSync(path.join(base, 'bundle', 'manifest.json'))).toBe(true);
  });

  it('a run without validation has no best checkpoint, and says how to keep one', async () => {
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'mcore-validation-')), 'run');
    const sets = ['model.frames=8', 'train.epochs=1', 'train.batchPairs=4', 'model.decoder.layers=1'].flatMap(
      (s) => ['--set', s],
    );
    expect(
      (await mcore('train', '--dataset', 'synthdive:seed=2,clips=40,size=32', '--out', out, ...sets)).code,
    ).toBe(0);
    expect(existsSync(path.join(out, 'best'))).toBe(false);
    const e = await mcore('eval', '--run', out, '--checkpoint', 'best');
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(
      /no best checkpoint \(best\/\); only a run trained with --set train\.validation=0\.1/,
    );
  });
});
