import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeResults } from '../../src/score/merge.ts';
import type { BatchLine } from '../../src/score/results-file.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

let tmp: string;
const inputs = ['/v/a.mp4', '/v/b.mp4', '/v/c.mp4', '/v/d.mp4', '/v/e.mp4'];
const line = (p: number, n: number, total = 5): BatchLine => ({
  input: inputs[p] ?? `/v/x${p}.mp4`,
  position: p,
  total,
  shard: `${p % n}/${n}`,
  ok: p !== 3,
  ms: 1,
});
const file = async (name: string, lines: BatchLine[], tail = '') => {
  const f = path.join(tmp, name);
  await writeFile(f, lines.map((l) => `${JSON.stringify(l)}\n`).join('') + tail);
  return f;
};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-merge-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mergeResults', () => {
  it('merges complete shards in input order', async () => {
    // Shard 1 wrote its lines out of order (concurrent inputs finish in any order).
    const a = await file('r0.jsonl', [line(0, 2), line(2, 2), line(4, 2)]);
    const b = await file('r1.jsonl', [line(3, 2), line(1, 2)]);
    const out = path.join(tmp, 'all.jsonl');
    expect(await mergeResults([a, b], out, { inputs })).toEqual({
      out,
      files: 2,
      inputs: 5,
      ok: 4,
      failed: 1,
    });
    const merged = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as BatchLine);
    expect(merged.map((l) => l.input)).toEqual(inputs);
  });

  it('names missing inputs with their shard and a torn shard file', async () => {
    const a = await file('m0.jsonl', [line(0, 2), line(2, 2), line(4, 2)]);
    const b = await file('m1.jsonl', [line(1, 2)], '{"input":"/v/d.mp4","posi');
    await expectMcoreRejection(
      mergeResults([a, b], path.join(tmp, 'x.jsonl')),
      'E_INPUT',
      '1 of 5 input(s) missing: input #3 (shard 1/2)',
      `${b} end(s) in a torn line`,
    );
    await expectMcoreRejection(
      mergeResults([a, b], path.join(tmp, 'x.jsonl'), { inputs }),
      'E_INPUT',
      '/v/d.mp4 (shard 1/2)',
    );
  });

  it('refuses overlaps, mixed batches and lines of other inputs', async () => {
    const a = await file('o0.jsonl', [line(0, 2), line(2, 2), line(4, 2)]);
    const b = await file('o1.jsonl', [line(1, 2), line(3, 2), line(2, 2)]);
    await expectMcoreRejection(
      mergeResults([a, b], path.join(tmp, 'x.jsonl')),
      'E_INPUT',
      `1 input(s) in more than one line: /v/c.mp4 (in ${a} and ${b})`,
    );
    const c = await file('c1.jsonl', [line(1, 3), line(3, 3)]);
    await expectMcoreRejection(
      mergeResults([a, c], path.join(tmp, 'x.jsonl')),
      'E_INPUT',
      'from a batch of 5 inputs in 3 shards, others from 5 inputs in 2 shards',
    );
    const d = await file('d1.jsonl', [line(1, 2), line(3, 2)]);
    await expectMcoreRejection(
      mergeResults([a, d], path.join(tmp, 'x.jsonl'), { inputs: [...inputs, '/v/f.mp4'] }),
      'E_INPUT',
      'the shards scored a list of 5 inputs, --inputs lists 6',
    );
    await expectMcoreRejection(mergeResults([], path.join(tmp, 'x.jsonl')), 'E_INPUT', 'no result files');
    const ok = await file(
      'w0.jsonl',
      [0, 1, 2, 3, 4].map((p) => line(p, 1)),
    );
    await expectMcoreRejection(
      mergeResults([ok], path.join(tmp, 'no-dir', 'all.jsonl')),
      'E_INPUT',
      'no-dir/all.jsonl: cannot write the merged results (ENOENT)',
    );
  });
});
