import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePng } from '../../src/data/images.ts';
import { loadManifestDataset } from '../../src/data/manifest.ts';
import { encodeMp4, VideoClipCache } from '../../src/data/video.ts';
import { McoreError } from '../../src/errors.ts';
import { grey, mean } from '../helpers/frames.ts';

let dir: string;
let cache: VideoClipCache;

async function layoutError(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(McoreError);
  expect((e as McoreError).code).toBe('E_DATA_LAYOUT');
  return (e as McoreError).message;
}

async function writeJson(name: string, value: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(value));
  return path;
}

const clip = (extra: Record<string, unknown>) => ({
  video: 'ramp.mp4',
  score: 50,
  actionType: '107b',
  transitions: [5, 10],
  split: 'train',
  ...extra,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcore-manifest-'));
  cache = new VideoClipCache({ dir: join(dir, 'cache') });
  // 30 frames, frame i uniform grey 8 i, 25 fps
  await encodeMp4(
    Array.from({ length: 30 }, (_, i) => grey(16, 16, 8 * i)),
    25,
    join(dir, 'ramp.mp4'),
  );
  // FineDiving-style instance folder: absolute frames 00010..00029, frame n uniform grey 10 (n - 10)
  const folder = join(dir, 'fd', '01', '3');
  await mkdir(folder, { recursive: true });
  for (let n = 10; n < 30; n++)
    await writePng(join(folder, `${String(n).padStart(5, '0')}.png`), grey(8, 8, 10 * (n - 10)));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('manifest validation', () => {
  it('three different mistakes come back as one E_DATA_LAYOUT listing all three', async () => {
    const path = await writeJson('three-mistakes.json', {
      stages: ['take-off', 'flight', 'entry'],
      clips: [
        clip({ key: 'one', score: 'high' }),
        clip({ key: 'two', video: 'videos/missing.mp4' }),
        clip({ key: 'three', transitions: [5] }),
        clip({ key: 'fine' }),
      ],
    });
    const msg = await layoutError(loadManifestDataset(path, { width: 16, height: 16, cache }));
    expect(msg).toMatch(/three-mistakes\.json: 3 problems in the manifest/);
    expect(msg.split('\n').filter((l) => l.startsWith('  ✖'))).toEqual([
      "  ✖ clips[0] 'one': score: Invalid input: expected number, received string",
      `  ✖ clips[1] 'two': video: file not found: ${join(dir, 'videos', 'missing.mp4')} (paths are relative to the manifest's folder)`,
      "  ✖ clips[2] 'three': transitions: expected 2 value(s) (K-1 for stages take-off, flight, entry), found 1",
    ]);
    expect(msg).toMatch(/Fix these entries/);
  });

  it('ranges, unreadable videos, duplicate keys, video-or-frames and split are all checked', async () => {
    await writeFile(join(dir, 'text.mp4'), 'not a video');
    const path = await writeJson('more-mistakes.json', {
      stages: ['a', 'b', 'c'],
      clips: [
        clip({ key: 'late', transitions: [5, 30] }), // frame 30 is past the last frame (29)
        clip({ key: 'text', video: 'text.mp4' }),
        clip({ key: 'dup' }),
        clip({ key: 'dup' }),
        clip({ key: 'both', frames: 'fd/01/3' }),
        clip({ key: 'split', split: 'val' }),
        clip({ key: 'end', end: 40 }),
        clip({ key: 'typo', socre: 3 }),
      ],
    });
    const msg = await layoutError(loadManifestDataset(path, { width: 16, height: 16, cache }));
    const lines = msg.split('\n').filter((l) => l.startsWith('  ✖'));
    expect(lines).toHaveLength(7);
    expect(msg).toMatch(/more-mistakes\.json: 7 problems in the manifest/);
    expect(msg).toMatch(
      /clips\[0\] 'late': transitions: \[5, 30\] must be strictly increasing .* last frame 29/,
    );
    expect(msg).toMatch(
      /clips\[1\] 'text': video: .*text\.mp4: not a readable video \(ffmpeg: .*Invalid data/,
    );
    expect(msg).toMatch(/clips\[3\] 'dup': key: 'dup' is used twice \(also by clips\[2\] 'dup'\)/);
    expect(msg).toMatch(/clips\[4\] 'both': entry: give either `video`/);
    expect(msg).toMatch(/clips\[5\] 'split': split: Invalid option: expected one of "train"\|"test"/);
    expect(msg).toMatch(/clips\[6\] 'end': end: frame 40 is past the end \(the video has frames 0-29\)/);
    expect(msg).toMatch(/clips\[7\] 'typo': entry: Unrecognized key: "socre"/);
  });

  it('bad JSON, a missing manifest and a missing top-level field', async () => {
    await writeFile(join(dir, 'broken.json'), '{ "stages": [');
    expect(await layoutError(loadManifestDataset(join(dir, 'broken.json'), { width: 8, height: 8 }))).toMatch(
      /broken\.json: not valid JSON/,
    );
    expect(await layoutError(loadManifestDataset(join(dir, 'nope.json'), { width: 8, height: 8 }))).toMatch(
      /nope\.json: cannot read the manifest/,
    );
    const path = await writeJson('no-stages.json', { clips: [clip({})] });
    expect(await layoutError(loadManifestDataset(path, { width: 8, height: 8, cache }))).toMatch(
      /1 problem in the manifest:\n {2}✖ stages: Invalid input: expected array, received undefined/,
    );
  });
});

describe('manifest datasets', () => {
  it('CSV with a FineDiving-style folder: absolute frame numbers from file names, start/end, seconds', async () => {
    const csv = [
      'key,frames,score,actionType,difficulty,judgeScores,transitions,start,end,split,transitionsUnit,fps',
      'dive3,fd/01/3,71.4,107b,3.0,"7.5, 8, 8.5",15;20,12,25,train,,',
      'secs,fd/01/3,60,107b,,,1.5 2.0,,,test,seconds,10',
    ].join('\r\n');
    await writeFile(join(dir, 'folders.csv'), `${csv}\r\n`);
    const ds = await loadManifestDataset(join(dir, 'folders.csv'), { width: 4, height: 4 });
    expect(ds.name).toBe('folders');
    expect(ds.stageNames).toEqual(['stage-1', 'stage-2', 'stage-3']);
    expect(ds.clips).toEqual([
      // files 00012..00025 -> 14 frames; transitions 15, 20 -> positions 3, 8
      {
        key: 'dive3',
        actionType: '107b',
        difficulty: 3,
        score: 71.4,
        judgeScores: [7.5, 8, 8.5],
        numFrames: 14,
        transitions: [3, 8],
        split: 'train',
      },
      // 1.5 s, 2.0 s at 10 fps -> frames 15, 20 -> positions 5, 10 of files 00010..00029
      {
        key: 'secs',
        actionType: '107b',
        difficulty: 1,
        score: 60,
        judgeScores: [],
        numFrames: 20,
        transitions: [5, 10],
        split: 'test',
      },
    ]);
    expect(ds.source('dive3')).toEqual({ kind: 'frames', path: join(dir, 'fd', '01', '3'), firstFrame: 12 });
    const first = await ds.loadFrame('dive3', 0); // file 00012: grey 20
    expect([first.width, first.height, mean(first)]).toEqual([4, 4, 20]);
    expect(mean(await ds.loadFrame('dive3', 13))).toBe(150); // file 00025
    expect((await ds.loadFrames('secs', [0, 19])).map(mean)).toEqual([0, 190]);
    await expect(ds.loadFrame('dive3', 14)).rejects.toThrow(/frame 14 is outside 0..13/);
  });

  it('CSV problems: unknown columns and non-numbers, all listed', async () => {
    const csv = [
      'key,frames,score,actionType,transitions,split,notes',
      'a,fd/01/3,abc,107b,15 20,train,x',
    ].join('\n');
    await writeFile(join(dir, 'bad.csv'), csv);
    const msg = await layoutError(loadManifestDataset(join(dir, 'bad.csv'), { width: 4, height: 4 }));
    expect(msg).toMatch(/2 problems/);
    expect(msg).toMatch(/header \(line 1\): unknown column\(s\) notes/);
    expect(msg).toMatch(/line 2 'a': score: Invalid input: expected number, received string/);
  });

  it('CSV that is not valid CSV (an unclosed quote, a quote inside a cell) names its line; quoted cells may span lines', async () => {
    const head = 'key,frames,score,actionType,transitions,split';
    await writeFile(
      join(dir, 'unclosed.csv'),
      [head, 'a,fd/01/3,1,107b,15 20,train', 'b,"fd/01/3,2,107b,15 20,train'].join('\n'),
    );
    const unclosed = await layoutError(
      loadManifestDataset(join(dir, 'unclosed.csv'), { width: 4, height: 4 }),
    );
    expect(unclosed).toMatch(/line 3: not valid CSV \(Quote Not Closed/);
    await writeFile(
      join(dir, 'inner.csv'),
      [head, 'a,fd/01/3,1,107b,15 20,train', 'b,fd"01,2,107b,15 20,train'].join('\n'),
    );
    const inner = await layoutError(loadManifestDataset(join(dir, 'inner.csv'), { width: 4, height: 4 }));
    expect(inner).toMatch(/line 3: not valid CSV \(Invalid Opening Quote/);
    // A quoted cell over two lines: the next row's problem still names its own first line (4).
    await writeFile(
      join(dir, 'multi.csv'),
      [head, '"a\nb",fd/01/3,1,107b,15 20,train', 'c,fd/01/3,abc,107b,15 20,train'].join('\n'),
    );
    const multi = await layoutError(loadManifestDataset(join(dir, 'multi.csv'), { width: 4, height: 4 }));
    expect(multi).toMatch(/line 4 'c': score: Invalid input: expected number, received string/);
  });

  it('a bare JSON array of video clips with seconds: clip range and transitions from the probe fps', async () => {
    const path = await writeJson('videos.json', [
      clip({ transitions: [0.6, 0.8], transitionsUnit: 'seconds', start: 0.4, end: 1.0 }),
    ]);
    const ds = await loadManifestDataset(path, {
      width: 8,
      height: 8,
      framesPerClip: 4,
      cache,
      stages: ['a', 'b', 'c'],
    });
    expect(ds.stageNames).toEqual(['a', 'b', 'c']);
    // 0.4 s .. 1.0 s at 25 fps = frames 10..25; 0.6 s, 0.8 s = frames 15, 20
    expect(ds.clips[0]).toMatchObject({ key: 'ramp', numFrames: 16, transitions: [5, 10] });
    expect(ds.source('ramp')).toEqual({ kind: 'video', path: join(dir, 'ramp.mp4'), firstFrame: 10 });
    // sample set linspace(0, 15, 4) = 0, 5, 10, 15 -> video frames 10, 15, 20, 25
    const means = [];
    for (const i of [0, 5, 10, 15, 7]) means.push(Math.round(mean(await ds.loadFrame('ramp', i)) / 8));
    expect(means).toEqual([10, 15, 20, 25, 17]);
  });

  it('a corrupt image in a frame folder is E_INPUT naming the file when loaded', async () => {
    const folder = join(dir, 'corrupt');
    await mkdir(folder, { recursive: true });
    await writePng(join(folder, '0.png'), grey(4, 4, 9));
    await writeFile(join(folder, '1.png'), 'garbage');
    await writePng(join(folder, '2.png'), grey(4, 4, 9));
    const path = await writeJson('corrupt.json', {
      stages: ['a', 'b'],
      clips: [{ frames: 'corrupt', score: 1, actionType: 'x', transitions: [1], split: 'train' }],
    });
    const ds = await loadManifestDataset(path, { width: 4, height: 4 });
    expect(mean(await ds.loadFrame('corrupt', 0))).toBe(9);
    const e = await ds.loadFrame('corrupt', 1).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(McoreError);
    expect((e as McoreError).code).toBe('E_INPUT');
    expect((e as McoreError).message).toMatch(/corrupt[\\/]1\.png: cannot read the image/);
  });
});
