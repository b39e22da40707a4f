import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FineDivingDataset,
  fineDivingTransitions,
  frameFileName,
  openFineDiving,
  sampleFineDiving,
  validateFineDivingLayout,
} from '../../src/data/finediving.ts';
import {
  type FineDivingAnnotations,
  loadFineDivingAnnotations,
} from '../../src/data/finediving-annotations.ts';
import { sampleIndices } from '../../src/data/frame-sampling.ts';
import { McoreError } from '../../src/errors.ts';
import {
  buildFixture,
  FIXTURE_KEYS,
  FIXTURE_TEST_KEYS,
  FIXTURE_TRAIN_KEYS,
  frameJpeg,
} from '../helpers/finediving-fixture.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(repoRoot, '../shared/data/finediving');
const hasData = existsSync(dataDir);
if (!hasData) console.warn(`FineDiving dataset tests skipped: ${dataDir} is absent`);

const TRAIN = FIXTURE_TRAIN_KEYS;
const TEST = FIXTURE_TEST_KEYS;
const KEYS = FIXTURE_KEYS;

const tmpDirs: string[] = [];
async function tmpDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'mcore-fdds-'));
  tmpDirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe('frameFileName and fineDivingTransitions', () => {
  it('pads to 5 digits and keeps longer numbers', () => {
    expect([frameFileName(95), frameFileName(7378), frameFileName(290470)]).toEqual([
      '00095.jpg',
      '07378.jpg',
      '290470.jpg',
    ]);
  });

  it('takes the first frame of the 2nd distinct label and of the last one; recurring labels count once', () => {
    // runs: 1 x3, 15 x2, 30 x2, 15 x1, 36 x2 -> distinct [1, 15, 30, 36]
    const labels = [1, 1, 1, 15, 15, 30, 30, 15, 36, 36];
    expect(fineDivingTransitions(labels, 3)).toEqual([3, 8]);
    expect(fineDivingTransitions(labels, 4)).toEqual([3, 5, 8]);
    expect(fineDivingTransitions(labels, 2)).toEqual([8]);
    // 3 distinct labels cannot make 4 stages
    expect(fineDivingTransitions([4, 25, 25, 36], 4)).toBeUndefined();
  });
});

describe.skipIf(!hasData)(`FineDiving on real annotations (skipped when ${dataDir} is absent)`, () => {
  let ann: FineDivingAnnotations;
  beforeAll(async () => {
    ann = await loadFineDivingAnnotations(dataDir);
  });

  it('01/1: 85 frames sampled 96 times (every frame, 11 repeats); transitions [4, 40]', () => {
    // start 7378, end 7462; labels 3 x Inward (4), 32 x 3.5 Soms.Tuck (25), 50 x Entry (36).
    // Sample i is 7378 + trunc(i * 84/95) (84/95 = 0.8842). Clip transitions: 25 first at frame 3
    // (7381), 36 first at frame 35 (7413). Sampled: i = 3 -> 2.65 -> 7380 (label 4), i = 4 -> 3.54 ->
    // 7381 (label 25): t0 = 4; i = 39 -> 34.49 -> 7412 (label 25), i = 40 -> 35.37 -> 7413: t1 = 40.
    const s = sampleFineDiving(ann.records.get('01/1')!);
    expect(s.indices.slice(0, 5)).toEqual([7378, 7378, 7379, 7380, 7381]);
    expect([s.indices[39], s.indices[40], s.indices[95]]).toEqual([7412, 7413, 7462]);
    expect(new Set(s.indices).size).toBe(85);
    expect(s.frames[40]).toBe(35);
    expect(s.transitions).toEqual([4, 40]);
  });

  it('Men3m_final_r1/8 (train): 112 frames, transitions [36, 60]', () => {
    // start 10635, end 10746; labels 41 x Back (2), 29 x 2.5 Soms.Pike (15), 42 x Entry (36): clip
    // transitions [41, 70]. Step 111/95: i = 35 -> 40.89 (rel 40, label 2); i = 36 -> 42.06 (rel 42,
    // label 15; rel 41 is skipped): t0 = 36; i = 59 -> 68.94 (rel 68); i = 60 -> 70.11 (rel 70, Entry): t1 = 60.
    const s = sampleFineDiving(ann.records.get('FINADivingWorldCup2021_Men3m_final_r1/8')!);
    expect([s.indices[0], s.indices[35], s.indices[36], s.indices[59], s.indices[60], s.indices[95]]).toEqual(
      [10635, 10675, 10677, 10703, 10705, 10746],
    );
    expect(s.transitions).toEqual([36, 60]);
  });

  it('Women3m_semifinal_r3/3 (test): 100 frames, the first Entry frame is skipped, transitions [24, 48]', () => {
    // start 5255, end 5354; labels 25 x Back (2), 24 x 2.5 Soms.Pike (15), 51 x Entry (36): clip
    // transitions [25, 49]. Step 99/95: i = 23 -> 23.97 (rel 23), i = 24 -> 25.01 (rel 25): t0 = 24;
    // i = 47 -> 48.98 (rel 48, label 15), i = 48 -> 50.02 (rel 50, Entry; rel 49 skipped): t1 = 48.
    const s = sampleFineDiving(ann.records.get('FINADivingWorldCup2021_Women3m_semifinal_r3/3')!);
    expect([s.indices[23], s.indices[24], s.indices[47], s.indices[48]]).toEqual([5278, 5280, 5303, 5305]);
    expect(s.transitions).toEqual([24, 48]);
  });

  it('14/16: a one-frame 2nd label skipped by sampling puts t0 at the next run of that label', () => {
    // start 23063, end 23192 (130 frames); runs: 45 x Forward (1), 1 x 2.5 Soms.Pike (15) at rel 45,
    // 14 x 1 Twist (30), 23 x 15 from rel 60, 47 x Entry (36) from rel 83: clip transitions [45, 83].
    // Step 129/95: i = 33 -> 44.81 (rel 44, label 1), i = 34 -> 46.17 (rel 46, label 30): rel 45 is
    // never sampled. First sampled 15: i = 44 -> 59.75 (rel 59, label 30), i = 45 -> 61.11 (rel 61): t0 = 45.
    // Entry: i = 61 -> 82.83 (rel 82), i = 62 -> 84.19 (rel 84): t1 = 62. (Distinct labels of the
    // SAMPLED frames, as the reference loader takes them, would give t0 = 34.)
    const r = ann.records.get('14/16')!;
    expect(fineDivingTransitions(r.framesLabels, 3)).toEqual([45, 83]);
    const s = sampleFineDiving(r);
    expect([s.frames[33], s.frames[34], s.frames[44], s.frames[45], s.frames[61], s.frames[62]]).toEqual([
      44, 46, 59, 61, 82, 84,
    ]);
    expect(s.transitions).toEqual([45, 62]);
  });

  it('01/114: linspace over absolute frames, not over 0..n-1 (exact integer 45 x 7/5 = 63)', () => {
    // start 173866, end 173999: step 133/95 = 7/5; i = 45 -> exactly 63 -> 173929 (numpy agrees).
    // In floats 45 * 1.4 = 62.99999999999999, so a clip-relative linspace would truncate to 62.
    const s = sampleFineDiving(ann.records.get('01/114')!);
    expect(s.indices[45]).toBe(173929);
    expect(s.frames[45]).toBe(63);
    expect(sampleIndices(0, 133, 96)[45]).toBe(62);
  });

  it('opens all 3000 clips: train first, split from the split files, ClipInfo of 01/1', async () => {
    const ds = await openFineDiving({ root: '/nonexistent', annotations: ann });
    expect(ds.clips.length).toBe(3000);
    expect(ds.stageNames).toEqual(['take-off', 'flight', 'entry']);
    expect(ds.clips.slice(0, 2251).every((c) => c.split === 'train')).toBe(true);
    expect(ds.clips[0].key).toBe('FINADivingWorldCup2021_Men3m_final_r1/8');
    expect(ds.clips.find((c) => c.key === '01/1')).toEqual({
      key: '01/1',
      actionType: '407c',
      difficulty: 3.2,
      score: 88,
      judgeScores: [9.5, 9, 9.5, 9, 8.5, 9.5, 8.5],
      numFrames: 85,
      transitions: [3, 35],
      split: 'test',
      videoName: '01',
      instance: 1,
      startFrame: 7378,
      endFrame: 7462,
    });
    expect(ds.framePath('01/1', 84)).toBe(path.join('/nonexistent', '01', '1', '07462.jpg'));
    expect(() => ds.framePath('01/1', 85)).toThrow(
      /frame index 85 is outside \[0, 85\) \(frames 7378-7462\)/,
    );
    const sampled = ds.sampledClips();
    const one = sampled.find((c) => c.key === '01/114')!;
    expect(one.frames[45]).toBe(63);
    expect(sampled.find((c) => c.key === '01/1')!.transitions).toEqual([4, 40]);
  });

  it('filters keys, refuses unknown keys and too many stages', async () => {
    const ds = await openFineDiving({ root: '/x', annotations: ann, keys: [...TEST, ...TRAIN], stages: 2 });
    expect(ds.clips.map((c) => c.key)).toEqual(KEYS);
    expect(ds.clips.find((c) => c.key === '01/1')!.transitions).toEqual([35]);
    const err = await openFineDiving({ root: '/x', annotations: ann, keys: ['01/1', '01/99999'] }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(McoreError);
    expect(err.message).toMatch(/1 requested keys are in neither split \(e\.g\. '01\/99999'\)/);
    // 2206 instances have 3 distinct step labels only
    await expect(openFineDiving({ root: '/x', annotations: ann, stages: 4 })).rejects.toThrow(
      /stages=4 needs 4 distinct step labels per clip, but 2206 clips have fewer/,
    );
  });

  describe('on a frame folder built from 6 real keys', () => {
    let root: string;
    let ds: FineDivingDataset;
    beforeAll(async () => {
      root = await tmpDir();
      await buildFixture(root, ann, KEYS);
      ds = await openFineDiving({ root, annotations: ann, keys: KEYS });
    });

    it('is clean, and loadFrame reads absolute frame start + i', async () => {
      expect(await validateFineDivingLayout(ds, { checkImages: true })).toEqual([]);
      // 01/1 frame 40 is absolute 7418 = 28 * 256 + 250
      const f = await ds.loadFrame('01/1', 40);
      expect([f.width, f.height, f.data.length]).toEqual([64, 36, 64 * 36 * 3]);
      expect(Math.abs(f.data[0] - 250)).toBeLessThanOrEqual(2);
      expect(Math.abs(f.data[1] - 28)).toBeLessThanOrEqual(2);
    });

    it('lists every problem at once, each with its key and path', async () => {
      const dir = (key: string) => ds.clipDir(key);
      // missing frame, extra frame, corrupt JPEG, untrimmed layout, renumbered frames, missing instance
      await unlink(path.join(dir('01/1'), '07400.jpg'));
      const r0711 = ann.records.get('07/11')!;
      await writeFile(path.join(dir('07/11'), frameFileName(r0711.endFrame + 1)), await frameJpeg(0));
      const wide = path.join(dir('07/11'), frameFileName(r0711.startFrame + 10));
      await writeFile(
        wide,
        await sharp({ create: { width: 80, height: 36, channels: 3, background: '#808080' } })
          .jpeg()
          .toBuffer(),
      );
      const corrupt = path.join(dir('FINADivingWorldCup2021_Women3m_semifinal_r3/3'), '05300.jpg');
      const bytes = await readFile(corrupt);
      await writeFile(corrupt, bytes.subarray(0, bytes.length >> 1));
      const r121 = ann.records.get('01/121')!;
      for (let f = r121.startFrame; f <= r121.endFrame; f++) {
        await rename(path.join(dir('01/121'), frameFileName(f)), path.join(root, '01', frameFileName(f)));
      }
      await rm(dir('01/121'), { recursive: true });
      const r0312 = ann.records.get('03/12')!;
      for (let f = r0312.startFrame; f <= r0312.endFrame; f++) {
        await rename(
          path.join(dir('03/12'), frameFileName(f)),
          path.join(dir('03/12'), `x${frameFileName(f - r0312.startFrame + 1)}`),
        );
      }
      for (let f = 1; f <= 63; f++) {
        await rename(
          path.join(dir('03/12'), `x${frameFileName(f)}`),
          path.join(dir('03/12'), frameFileName(f)),
        );
      }
      await rm(dir('FINADivingWorldCup2021_Men3m_final_r1/8'), { recursive: true });

      const progress: number[] = [];
      const problems = await validateFineDivingLayout(ds, {
        checkImages: true,
        onProgress: (done) => progress.push(done),
      });
      expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
      expect(problems.map((p) => [p.kind, p.key, p.path])).toEqual([
        [
          'missing-instance-folder',
          'FINADivingWorldCup2021_Men3m_final_r1/8',
          dir('FINADivingWorldCup2021_Men3m_final_r1/8'),
        ],
        ['frame-names', '03/12', dir('03/12')],
        ['untrimmed-layout', '01/121', path.join(root, '01')],
        ['unreadable-image', 'FINADivingWorldCup2021_Women3m_semifinal_r3/3', corrupt],
        ['frame-count', '07/11', dir('07/11')],
        ['frame-size', '07/11', wide],
        ['frame-count', '01/1', dir('01/1')],
      ]);
      const msg = problems.map((p) => p.message);
      expect(msg[1]).toMatch(
        /file names do not match the annotated frames 29680\.jpg\.\.29742\.jpg: missing 29680\.jpg, 29681\.jpg, 29682\.jpg and 60 more; unexpected 00001\.jpg, 00002\.jpg, 00003\.jpg and 60 more; the frames are numbered 1\.\.63, but must keep their absolute frame numbers in the source video \(29680\.\.29742\)/,
      );
      expect(msg[2]).toMatch(
        /no folder 121\/ but 85 frames lie directly in the video folder \(85 of them in this clip's range/,
      );
      expect(msg[6]).toBe(
        'holds 84 frames but the annotation has 85 (len(frames_labels), frames 07378.jpg..07462.jpg): missing 07400.jpg',
      );
      expect(msg[3]).toMatch(/^cannot decode the JPEG \(.*premature end of JPEG/i);
      expect(msg[5]).toBe(
        `1 of 78 frames are not 64x36 like ${frameFileName(r0711.startFrame)}, e.g. ${frameFileName(r0711.startFrame + 10)} is 80x36`,
      );
      expect(msg[4]).toMatch(
        new RegExp(
          `holds 78 frames but the annotation has 77 .*: unexpected ${frameFileName(r0711.endFrame + 1)}`,
        ),
      );
      // without decoding, the corrupt frame goes unnoticed
      const quick = await validateFineDivingLayout(ds, { checkImages: false });
      expect(quick.map((p) => p.kind)).not.toContain('unreadable-image');
      expect(quick.length).toBe(5);
      await expect(ds.loadFrame('01/1', 22)).rejects.toThrow(/07400\.jpg: frame 22 of clip 01\/1 is missing/);
    });
  });

  it('an empty root reports every clip missing', async () => {
    const root = await tmpDir();
    const ds = await openFineDiving({ root, annotations: ann });
    const problems = await validateFineDivingLayout(ds, { checkImages: true });
    expect(problems.length).toBe(3000);
    expect(problems.every((p) => p.kind === 'missing-video-folder')).toBe(true);
    expect(problems[0]).toEqual({
      kind: 'missing-video-folder',
      key: 'FINADivingWorldCup2021_Men3m_final_r1/8',
      path: path.join(root, 'FINADivingWorldCup2021_Men3m_final_r1'),
      message: `video folder not found (frames 10635-10746 expected in ${path.join(root, 'FINADivingWorldCup2021_Men3m_final_r1', '8')})`,
    });
    await expect(
      validateFineDivingLayout({ ...ds, root: path.join(root, 'nope') }, { checkImages: false }),
    ).rejects.toThrow(/nope: no such folder/);
  });
});
