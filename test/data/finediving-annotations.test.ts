import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FINEDIVING_FILES,
  type FineDivingAnnotations,
  loadFineDivingAnnotations,
} from '../../src/data/finediving-annotations.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(repoRoot, '../shared/data/finediving');
const hasData = existsSync(dataDir);
if (!hasData) console.warn(`finediving-annotations tests on real data skipped: ${dataDir} is absent`);

const tmpDirs: string[] = [];
async function tmpDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mcore-fd-'));
  tmpDirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(!hasData)(`FineDiving annotations (real files; skipped when ${dataDir} is absent)`, () => {
  let ann: FineDivingAnnotations;
  beforeAll(async () => {
    ann = await loadFineDivingAnnotations(dataDir);
  });

  it('has 3000 instances and disjoint 2251 / 749 splits', () => {
    expect(ann.records.size).toBe(3000);
    expect(ann.usedAqaFile).toBe(true);
    expect(ann.trainKeys.length).toBe(2251);
    expect(ann.testKeys.length).toBe(749);
    const train = new Set(ann.trainKeys);
    expect(ann.testKeys.filter((k) => train.has(k))).toEqual([]);
    expect(ann.trainKeys.every((k) => ann.records.has(k))).toBe(true);
  });

  it('has 52 action types in train and every test type among them', () => {
    const trainTypes = new Set(ann.trainKeys.map((k) => ann.records.get(k)!.actionType));
    const testTypes = new Set(ann.testKeys.map((k) => ann.records.get(k)!.actionType));
    expect(trainTypes.size).toBe(52);
    expect(testTypes.size).toBe(44);
    expect([...testTypes].filter((t) => !trainTypes.has(t))).toEqual([]);
  });

  it('has scores in [0, 114.8], difficulty in [1.5, 4.1] and train mean ~66.7', () => {
    const recs = [...ann.records.values()];
    expect(Math.min(...recs.map((r) => r.diveScore))).toBe(0);
    expect(Math.max(...recs.map((r) => r.diveScore))).toBe(114.8);
    expect(Math.min(...recs.map((r) => r.difficulty))).toBe(1.5);
    expect(Math.max(...recs.map((r) => r.difficulty))).toBe(4.1);
    const train = ann.trainKeys.map((k) => ann.records.get(k)!.diveScore);
    expect(train.reduce((a, b) => a + b, 0) / train.length).toBeCloseTo(66.7, 1);
    const test = ann.testKeys.map((k) => ann.records.get(k)!.diveScore);
    expect([Math.min(...test), Math.max(...test)]).toEqual([0, 104.4]);
  });

  it('has 2206 / 537 / 257 instances with 2 / 3 / 4 step changes and one label per frame', () => {
    const counts = new Map<number, number>();
    for (const r of ann.records.values()) {
      counts.set(r.stepsTransitFrames.length, (counts.get(r.stepsTransitFrames.length) ?? 0) + 1);
      expect(r.framesLabels.length).toBe(r.endFrame - r.startFrame + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ 2: 2206, 3: 537, 4: 257 });
    const lengths = [...ann.records.values()].map((r) => r.framesLabels.length);
    expect([Math.min(...lengths), Math.max(...lengths)]).toEqual([63, 273]);
  });

  it('decodes one record completely', () => {
    const r = ann.records.get('01/1')!;
    expect(r).toMatchObject({
      key: '01/1',
      videoName: '01',
      instance: 1,
      actionType: '407c',
      startFrame: 7378,
      endFrame: 7462,
      diveScore: 88,
      difficulty: 3.2,
      judgeScores: [9.5, 9, 9.5, 9, 8.5, 9.5, 8.5],
      stepsTransitFrames: [2, 34],
    });
    // labels: 3 x Inward (4), 32 x 3.5 Soms.Tuck (25), 50 x Entry (36)
    const l = Array.from(r.framesLabels);
    expect([l.indexOf(25), l.indexOf(36), l.length]).toEqual([3, 35, 85]);
    // the coarse file's difficulty disagrees for one instance; the fine-grained value is used
    expect(ann.warnings).toEqual(['17/164: difficulty 2 (fine-grained, used) vs 3.4 (coarse)']);
    expect(ann.records.get('17/164')!.difficulty).toBe(2);
  });

  it('a truncated copy of a real pickle gives E_PICKLE naming the file', async () => {
    const dir = await tmpDir();
    const full = await readFile(path.join(dataDir, FINEDIVING_FILES.coarse));
    const file = path.join(dir, FINEDIVING_FILES.coarse);
    await writeFile(file, full.subarray(0, Math.floor(full.length / 2)));
    await expectMcoreRejection(
      loadFineDivingAnnotations(dir),
      'E_PICKLE',
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated pickle: `),
    );
  });
});

describe('FineDiving annotation errors', () => {
  it('a missing file says which files the folder needs', async () => {
    const dir = await tmpDir();
    await expectMcoreRejection(
      loadFineDivingAnnotations(dir),
      'E_DATA_LAYOUT',
      /FineDiving_coarse_annotation\.pkl not found: the FineDiving annotation folder must hold .*train_split\.pkl/,
    );
  });

  it('a pickle with a forbidden global (os.system via GLOBAL) is refused', async () => {
    const dir = await tmpDir();
    // PROTO 2, GLOBAL 'os\nsystem\n', BINUNICODE 'id', TUPLE1, REDUCE, STOP
    const evil = Buffer.concat([
      Buffer.from([0x80, 0x02]),
      Buffer.from('cos\nsystem\n', 'latin1'),
      Buffer.from([0x58, 2, 0, 0, 0]),
      Buffer.from('id'),
      Buffer.from([0x85, 0x52, 0x2e]),
    ]);
    await writeFile(path.join(dir, FINEDIVING_FILES.coarse), evil);
    await expectMcoreRejection(
      loadFineDivingAnnotations(dir),
      'E_PICKLE',
      /forbidden global 'os\.system'.*\(at byte 2\)/,
    );
  });

  it('a pickle of the wrong structure names the file', async () => {
    const dir = await tmpDir();
    // PROTO 2, EMPTY_LIST, STOP: a list where a dict is expected
    await writeFile(path.join(dir, FINEDIVING_FILES.coarse), Buffer.from([0x80, 0x02, 0x5d, 0x2e]));
    await writeFile(path.join(dir, FINEDIVING_FILES.fine), Buffer.from([0x80, 0x02, 0x5d, 0x2e]));
    await expectMcoreRejection(
      loadFineDivingAnnotations(dir),
      'E_DATA_LAYOUT',
      /FineDiving_coarse_annotation\.pkl: the annotation should be a dict, found list of 0/,
    );
  });
});
