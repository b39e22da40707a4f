import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchLine, openResults, parseResults, readResults } from '../../src/score/results-file.ts';
import { expectMcoreError, expectMcoreRejection } from '../helpers/errors.ts';

const line = (position: number, ok = true): BatchLine => ({
  input: `/v/${position}.mp4`,
  position,
  total: 9,
  shard: '0/1',
  ok,
  ms: 1.5,
  ...(ok ? {} : { error: { code: 'E_INPUT', message: 'bad' } }),
});
const text = (ls: BatchLine[]) => ls.map((l) => `${JSON.stringify(l)}\n`).join('');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-results-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('results file', () => {
  it('reads whole lines and detects a torn last line, counting the good bytes (UTF-8)', () => {
    const good = text([line(0), { ...line(1), input: '/v/é plongeon.mp4' }, line(2, false)]);
    expect(parseResults(good, 'f')).toEqual({
      lines: [line(0), { ...line(1), input: '/v/é plongeon.mp4' }, line(2, false)],
      goodBytes: Buffer.byteLength(good),
      torn: false,
    });
    const half = JSON.stringify(line(3)).slice(0, 30);
    const r = parseResults(good + half, 'f');
    expect(r.lines).toHaveLength(3);
    expect(r.torn).toBe(true);
    expect(r.goodBytes).toBe(Buffer.byteLength(good));
    // A whole JSON object without its newline is torn too: the newline is written with the line.
    expect(parseResults(good + JSON.stringify(line(3)), 'f').torn).toBe(true);
    expect(parseResults('', 'f')).toEqual({ lines: [], goodBytes: 0, torn: false });
  });

  it('refuses a bad line in the middle, naming file and line', () => {
    const t = `${text([line(0)])}{"input": 3}\n${text([line(1)])}`;
    expectMcoreError(() => parseResults(t, 'r.jsonl'), 'E_INPUT', 'r.jsonl:2: not a result line', '--out');
  });

  it('refuses a results file in a missing folder, saying so', async () => {
    await expectMcoreRejection(
      openResults(path.join(tmp, 'no-such-dir', 'r.jsonl'), 0),
      'E_INPUT',
      'no-such-dir/r.jsonl: cannot open the results file for appending (ENOENT)',
    );
  });

  it('appends after cutting a torn line off; a missing file reads as empty', async () => {
    const f = path.join(tmp, 'r.jsonl');
    expect(await readResults(f)).toEqual({ lines: [], goodBytes: 0, torn: false });
    await writeFile(f, `${text([line(0)])}{"input":"/v/1.m`);
    const before = await readResults(f);
    expect(before.torn).toBe(true);
    const w = await openResults(f, before.goodBytes);
    await Promise.all([w.append(line(1)), w.append(line(2, false))]);
    await w.close();
    expect(await readFile(f, 'utf8')).toBe(text([line(0), line(1), line(2, false)]));
  });
});
