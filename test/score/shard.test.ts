import { describe, expect, it } from 'vitest';
import { parseShard, resolveShard, selectShard } from '../../src/score/shard.ts';
import { expectMcoreError } from '../helpers/errors.ts';

describe('shards', () => {
  it('N shards of a list cover every position exactly once, shard I taking p % N == I', () => {
    const items = Array.from({ length: 23 }, (_, i) => `v${i}`);
    for (const count of [1, 2, 3, 7, 30]) {
      const seen: number[] = [];
      for (let index = 0; index < count; index++) {
        const s = selectShard(items, { index, count });
        for (const x of s) {
          expect(x.position % count).toBe(index);
          expect(x.item).toBe(items[x.position]);
        }
        seen.push(...s.map((x) => x.position));
      }
      expect(seen.sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    }
    expect(selectShard(['a', 'b', 'c', 'd', 'e'], { index: 1, count: 2 })).toEqual([
      { position: 1, item: 'b' },
      { position: 3, item: 'd' },
    ]);
  });

  it('parses I/N and refuses the rest', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    expect(parseShard(' 0 / 1 ')).toEqual({ index: 0, count: 1 });
    for (const bad of ['4/4', '1/0', '-1/3', '1', 'a/b', '1/2/3', '1.5/3']) {
      expectMcoreError(() => parseShard(bad), 'E_INPUT', `got '${bad}'`, 'I/N with 0 <= I < N');
    }
  });

  it('takes the shard from --shard, Kubernetes or Slurm, in that order', () => {
    expect(resolveShard({}, {})).toEqual({ index: 0, count: 1, from: 'default' });
    expect(resolveShard({ shard: '1/3' }, { JOB_COMPLETION_INDEX: '2' })).toEqual({
      index: 1,
      count: 3,
      from: '--shard',
    });
    expect(resolveShard({ shards: 5 }, { JOB_COMPLETION_INDEX: '4' })).toEqual({
      index: 4,
      count: 5,
      from: 'JOB_COMPLETION_INDEX',
    });
    const slurm = { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '3' };
    expect(resolveShard({}, slurm)).toEqual({ index: 1, count: 3, from: 'SLURM_ARRAY_TASK_ID' });
    expect(resolveShard({ shards: 3 }, slurm).index).toBe(1);
    // --array=1-9:2 -> ids 1, 3, 5, 7, 9: id 7 is the fourth task.
    const stepped = {
      SLURM_ARRAY_TASK_ID: '7',
      SLURM_ARRAY_TASK_MIN: '1',
      SLURM_ARRAY_TASK_STEP: '2',
      SLURM_ARRAY_TASK_COUNT: '5',
    };
    expect(resolveShard({}, stepped)).toEqual({ index: 3, count: 5, from: 'SLURM_ARRAY_TASK_ID' });
    // Without SLURM_ARRAY_TASK_COUNT, --shards gives N.
    expect(resolveShard({ shards: 4 }, { SLURM_ARRAY_TASK_ID: '2' })).toEqual({
      index: 2,
      count: 4,
      from: 'SLURM_ARRAY_TASK_ID',
    });
  });

  it('refuses an incomplete or inconsistent scheduler environment, saying what to pass', () => {
    expectMcoreError(() => resolveShard({}, { JOB_COMPLETION_INDEX: '1' }), 'E_INPUT', 'pass --shards N');
    expectMcoreError(
      () => resolveShard({ shards: 2 }, { JOB_COMPLETION_INDEX: '2' }),
      'E_INPUT',
      'not below --shards 2',
    );
    expectMcoreError(
      () => resolveShard({ shards: 2 }, { JOB_COMPLETION_INDEX: 'x' }),
      'E_INPUT',
      "JOB_COMPLETION_INDEX='x'",
    );
    expectMcoreError(
      () => resolveShard({ shards: 4 }, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' }),
      'E_INPUT',
      '--shards 4 disagrees with SLURM_ARRAY_TASK_COUNT=3',
    );
    expectMcoreError(
      () =>
        resolveShard(
          {},
          { SLURM_ARRAY_TASK_ID: '9', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '3' },
        ),
      'E_INPUT',
      'use --array=0-2',
    );
    expectMcoreError(
      () => resolveShard({ shards: 3 }, {}),
      'E_INPUT',
      'outside a scheduler pass --shard I/N',
    );
    expectMcoreError(() => resolveShard({ shard: '1/3', shards: 4 }), 'E_INPUT', 'disagree');
  });
});
