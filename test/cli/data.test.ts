import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameFileName } from '../../src/data/finediving.ts';
import {
  type FineDivingAnnotations,
  loadFineDivingAnnotations,
} from '../../src/data/finediving-annotations.ts';
import { mcore, repoRoot } from '../helpers/cli.ts';

const annDir = path.resolve(repoRoot, '../shared/data/finediving');
const hasData = existsSync(annDir);
if (!hasData) console.warn(`mcore data check tests skipped: ${annDir} is absent`);

/** Arguments of `mcore data check finediving --root ROOT --annotations ANN ...more`. */
const checkFineDiving = (root: string, annotations: string, ...more: string[]): string[] => [
  'data',
  'check',
  'finediving',
  '--root',
  root,
  '--annotations',
  annotations,
  ...more,
];

// 3 train keys, then 3 test keys, in split-file order; 01/121 and 01/1 share the video folder '01'.
const KEYS = [
  'FINADivingWorldCup2021_Men3m_final_r1/8',
  '03/12',
  '01/121',
  'FINADivingWorldCup2021_Women3m_semifinal_r3/3',
  '07/11',
  '01/1',
];

/** A 64x36 horizontal gradient whose blue channel is frame % 256. */
async function frameJpeg(frame: number): Promise<Buffer> {
  const w = 64;
  const h = 36;
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) data.set([x * 4, y * 7, frame % 256], 3 * (y * w + x));
  }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

let tmp: string;
let ann: FineDivingAnnotations;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-data-'));
  if (hasData) ann = await loadFineDivingAnnotations(annDir);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mcore data check: arguments', () => {
  it('a missing annotation folder exits 2 with one clear line', async () => {
    const r = await mcore(...checkFineDiving(tmp, path.join(tmp, 'nope')));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `mcore: --annotations ${path.join(tmp, 'nope')}: no such folder; pass the FineDiving 'Annotations' folder (FineDiving_coarse_annotation.pkl, FineDiving_fine-grained_annotation.pkl, train_split.pkl, test_split.pkl)\n`,
    );
  });

  it('a folder without the pickles, an unknown dataset or a missing --root exit 2', async () => {
    const noPkl = await mcore('data', 'check', 'finediving', '--root', tmp, '--annotations', tmp);
    expect(noPkl.code).toBe(2);
    expect(noPkl.stderr).toMatch(
      /FineDiving_coarse_annotation\.pkl not found: the FineDiving annotation folder must hold/,
    );
    const unknown = await mcore('data', 'check', 'gym', '--root', tmp, '--annotations', tmp);
    expect([unknown.code, unknown.stderr]).toEqual([
      2,
      "mcore: unknown dataset 'gym': give finediving (with --root and --annotations), a manifest file (.json/.csv) or synthdive[:seed=N,clips=N]\n",
    ]);
    const noRoot = await mcore('data', 'check', 'finediving', '--annotations', tmp);
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toMatch(/data check finediving needs --root DIR .*; --root is missing/);
  });
});

describe.skipIf(!hasData)(`mcore data check finediving (skipped when ${annDir} is absent)`, () => {
  it('without frames: exits 1 and reports all 3000 clips missing, with the summary', async () => {
    const root = path.join(tmp, 'empty');
    await mkdir(root);
    const r = await mcore(...checkFineDiving(root, annDir, '--limit', '2'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/checking the layout: clips 3000\/3000/);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('clips        3000 (train 2251, test 749)');
    expect(lines[1]).toMatch(/^action types 52 \(train 52, test 44\); most common 407c x347, 107b x324/);
    expect(lines).toContain('step changes 2: 2206 clips, 3: 537 clips, 4: 257 clips');
    expect(lines).toContain('warning      17/164: difficulty 2 (fine-grained, used) vs 3.4 (coarse)');
    expect(lines).toContain('problems     3000 in 3000 clips');
    expect(lines).toContain('missing-video-folder: 3000');
    expect(lines).toContain('  ... and 2998 more (--limit N shows more)');
    expect(r.stdout).toMatch(/^score {8}min 0\.00 {2}mean 66\.37 {2}sd 15\.25 {2}max 114\.80$/m);
    expect(r.stdout).toMatch(/^ {2}train {6}min 0\.00 {2}mean 66\.70 {2}sd 15\.32 {2}max 114\.80$/m);
    expect(r.stdout).toMatch(/^difficulty {3}min 1\.50 .* max 4\.10$/m);

    const json = await mcore(...checkFineDiving(root, annDir, '--json'));
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.clips).toEqual({ total: 3000, train: 2251, test: 749 });
    expect(report.stepChanges).toEqual({ 2: 2206, 3: 537, 4: 257 });
    expect([report.numFrames.min, report.numFrames.max]).toEqual([63, 273]);
    expect(report.score.histogram.reduce((s: number, b: { count: number }) => s + b.count, 0)).toBe(3000);
    expect(report.stageLengths.map((s: { stage: string }) => s.stage)).toEqual([
      'take-off',
      'flight',
      'entry',
    ]);
    expect(report.problems.total).toBe(3000);
    expect(report.problems.byKind).toEqual({ 'missing-video-folder': 3000 });

    const some = await mcore(...checkFineDiving(root, annDir, '--keys', KEYS.join(',')));
    expect(some.code).toBe(1);
    expect(some.stdout).toMatch(/^clips {8}6 \(train 3, test 3\)$/m);
    expect(some.stdout).toMatch(/^missing-video-folder: 6$/m);
    for (const key of KEYS)
      expect(some.stdout).toContain(`  ${key}  ${path.join(root, key.split('/')[0])}: `);
  });

  it('on a 6-clip frame folder: 0 when clean, then 1 with every problem listed with key and path', async () => {
    const root = path.join(tmp, 'frames');
    const dirOf = (key: string) => path.join(root, ...key.split('/'));
    for (const key of KEYS) {
      const r = ann.records.get(key)!;
      await mkdir(dirOf(key), { recursive: true });
      for (let f = r.startFrame; f <= r.endFrame; f++)
        await writeFile(path.join(dirOf(key), frameFileName(f)), await frameJpeg(f));
    }
    const args = checkFineDiving(root, annDir, '--keys', KEYS.join(','));
    const clean = await mcore(...args, '--images');
    expect(clean.stderr).toMatch(/decoding frames: clips 6\/6/);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^clips {8}6 \(train 3, test 3\)$/m);
    // frames per clip: 112, 63, 85 | 100, 77, 85
    expect(clean.stdout).toMatch(/^frames {7}min 63\.0 {2}mean 87\.0 .* max 112\.0 per clip$/m);
    expect(clean.stdout).toMatch(/^problems {5}none$/m);

    // one frame deleted, one extra frame, one corrupt JPEG, one instance moved to the untrimmed layout
    const deleted = path.join(dirOf('01/1'), '07400.jpg');
    await unlink(deleted);
    const extraName = frameFileName(ann.records.get('07/11')!.endFrame + 1);
    await writeFile(path.join(dirOf('07/11'), extraName), await frameJpeg(0));
    const corrupt = path.join(dirOf('FINADivingWorldCup2021_Women3m_semifinal_r3/3'), '05300.jpg');
    await writeFile(corrupt, (await readFile(corrupt)).subarray(0, 300));
    const moved = ann.records.get('03/12')!;
    for (let f = moved.startFrame; f <= moved.endFrame; f++) {
      await rename(path.join(dirOf('03/12'), frameFileName(f)), path.join(root, '03', frameFileName(f)));
    }
    await rm(dirOf('03/12'), { recursive: true });

    const broken = await mcore(...args, '--images');
    expect(broken.code).toBe(1);
    const out = broken.stdout;
    expect(out).toMatch(/^problems {5}4 in 4 clips$/m);
    expect(out).toMatch(/^untrimmed-layout: 1$/m);
    expect(out).toContain(
      `  03/12  ${path.join(root, '03')}: no folder 12/ but 63 frames lie directly in the video folder (63 of them in this clip's range 29680-29742)`,
    );
    expect(out).toMatch(/^unreadable-image: 1$/m);
    expect(out).toContain(`  FINADivingWorldCup2021_Women3m_semifinal_r3/3  ${corrupt}: `);
    expect(out).toMatch(/^frame-count: 2$/m);
    expect(out).toContain(
      `  07/11  ${dirOf('07/11')}: holds 78 frames but the annotation has 77 (len(frames_labels), frames 20840.jpg..20916.jpg): unexpected ${extraName}`,
    );
    expect(out).toContain(
      `  01/1  ${dirOf('01/1')}: holds 84 frames but the annotation has 85 (len(frames_labels), frames 07378.jpg..07462.jpg): missing 07400.jpg`,
    );

    const json = JSON.parse((await mcore(...args, '--images', '--json')).stdout);
    expect(
      json.problems.list.map((p: { kind: string; key: string; path: string }) => [p.kind, p.key, p.path]),
    ).toEqual([
      ['untrimmed-layout', '03/12', path.join(root, '03')],
      ['unreadable-image', 'FINADivingWorldCup2021_Women3m_semifinal_r3/3', corrupt],
      ['frame-count', '07/11', dirOf('07/11')],
      ['frame-count', '01/1', dirOf('01/1')],
    ]);
    // without --images the corrupt frame is not looked at
    const quick = await mcore(...args);
    expect(quick.code).toBe(1);
    expect(quick.stdout).toMatch(/^problems {5}3 in 3 clips$/m);
  });
});
