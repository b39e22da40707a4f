import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcore } from '../helpers/cli.ts';

interface ExportedClip {
  key: string;
  frames: string;
  score: number;
  actionType: string;
  transitions: number[];
  split: string;
}

let dir: string;
let clips: ExportedClip[];

/** CSV rows of the exported clips with a 4th stage ('splash') starting 9 frames into the entry. */
function fourStageCsv(header: string[]): string {
  const rows = clips.map(
    (c) =>
      `${c.key},${c.frames},${c.score},${c.actionType},${[...c.transitions, c.transitions[1] + 9].join(' ')},${c.split}`,
  );
  return [...header, 'key,frames,score,actionType,transitions,split', ...rows, ''].join('\n');
}

const problemLines = (text: string) => text.split('\n').filter((l) => l.startsWith('  ✖ '));

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-manifest-'));
  const r = await mcore('data', 'export', 'synthdive:seed=6,clips=40,size=32', '--out', dir);
  expect(r.code, r.stderr).toBe(0);
  clips = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')).clips;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('manifests a new user gets right first time', () => {
  it("a CSV names its stages with '# stages:'; training takes K = 4 from it; a contradicting model.stages is refused", async () => {
    const csv = path.join(dir, 'four.csv');
    await writeFile(
      csv,
      fourStageCsv(['# from our judging sheet', '# stages: take-off, flight, entry, splash']),
    );
    const check = await mcore('data', 'check', csv);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('stages       4: take-off, flight, entry, splash (model.stages = 4)');
    expect(check.stdout).toMatch(/clips\s+40 \(train \d+, test \d+\)/);
    expect(check.stdout).toContain('problems     none');

    const out = path.join(dir, 'run4');
    const sets = ['variant=mcore-tiny', 'model.frames=32', 'train.epochs=1', 'train.batchPairs=8'].flatMap(
      (s) => ['--set', s],
    );
    const t = await mcore('train', '--dataset', csv, '--out', out, ...sets);
    expect(t.code, t.stderr).toBe(0);
    const info = JSON.parse(await readFile(path.join(out, 'checkpoint.json'), 'utf8'));
    expect(info.config.config.model.stages).toBe(4);
    expect(info.config.config.loss.tasWeights).toEqual([1, 1, 1]);

    const refused = await mcore(
      'train',
      '--dataset',
      csv,
      '--out',
      path.join(dir, 'x'),
      '--set',
      'model.stages=3',
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr.split('\n').filter((l) => l.startsWith('mcore:'))).toEqual([
      `mcore: model.stages=3 is set, but ${csv} has 4 stages (take-off, flight, entry, splash); drop model.stages (it is taken from the dataset)`,
    ]);
  });

  it('data check lists every problem, one a line naming the clip; training lists the first 20 and a count', async () => {
    const csv = path.join(dir, 'missing.csv');
    const rows = Array.from({ length: 25 }, (_, i) => `gone/${i},50,107b,10 20,train`);
    await writeFile(csv, ['frames,score,actionType,transitions,split', ...rows].join('\n'));
    const check = await mcore('data', 'check', csv);
    expect(check.code).toBe(1);
    const listed = problemLines(check.stdout);
    expect(listed).toHaveLength(25);
    expect(listed[0]).toBe(
      `  ✖ line 2 (gone/0): frames: folder not found: ${path.join(dir, 'gone', '0')} (paths are relative to the manifest's folder)`,
    );
    expect(listed[24]).toMatch(/^ {2}✖ line 26 \(gone\/24\): frames: folder not found/);

    const t = await mcore('train', '--dataset', csv, '--out', path.join(dir, 'y'));
    expect(t.code).toBe(2);
    expect(t.stderr.split('\n').find((l) => l.startsWith('mcore:'))).toBe(
      `mcore: ${csv}: 25 problems in the manifest:`,
    );
    expect(problemLines(t.stderr)).toEqual(listed.slice(0, 20));
    expect(t.stderr).toContain(`\n... and 5 more (mcore data check ${csv} lists them all)`);
  });

  it('a CSV whose first row is bad does not make every other row wrong', async () => {
    const csv = path.join(dir, 'first-bad.csv');
    const good = clips
      .slice(0, 5)
      .map((c) => `${c.frames},${c.score},${c.actionType},${c.transitions.join(' ')},${c.split}`);
    const bad = `${clips[5].frames},${clips[5].score},${clips[5].actionType},${clips[5].transitions[0]},train`;
    await writeFile(csv, ['frames,score,actionType,transitions,split', bad, ...good].join('\n'));
    const check = await mcore('data', 'check', csv);
    expect(check.code).toBe(1);
    expect(problemLines(check.stdout)).toEqual([
      `  ✖ line 2 (${clips[5].frames}): transitions: expected 2 value(s) (K-1 for stages stage-1, stage-2, stage-3), found 1`,
    ]);
  });

  it('JSON with NaN (as Python writes it) names the clip and the field', async () => {
    const file = path.join(dir, 'nan.json');
    const [a, b, c] = clips;
    const text = JSON.stringify({ stages: ['take-off', 'flight', 'entry'], clips: [a, b, c] }, null, 1)
      .replace(`"score": ${a.score}`, '"score": NaN')
      .replace(`${b.transitions[0]},\n`, '-Infinity,\n');
    expect(text).toContain('"score": NaN');
    expect(text).toContain('-Infinity');
    await writeFile(file, text);
    const check = await mcore('data', 'check', file);
    expect(check.code).toBe(1);
    const expected = [
      `  ✖ clips[0] '${a.key}': score: NaN is not a number (JSON has no NaN; give a number or drop the clip)`,
      `  ✖ clips[1] '${b.key}': transitions[0]: -Infinity is not a number (JSON has no -Infinity; give a number or drop the clip)`,
    ];
    expect(problemLines(check.stdout)).toEqual(expected);
    const t = await mcore('train', '--dataset', file, '--out', path.join(dir, 'z'));
    expect(t.code).toBe(2);
    expect(problemLines(t.stderr)).toEqual(expected);
  });

  it('data check of a SynthDive spec: a summary and no problems', async () => {
    const r = await mcore('data', 'check', 'synthdive:seed=1,clips=40');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('stages       3: take-off, flight, entry (model.stages = 3)');
    expect(r.stdout).toContain('problems     none');
  });
});
