import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFrameFolder, readImage, writeJpeg, writePng } from '../../src/data/images.ts';
import type { Frame } from '../../src/data/types.ts';
import {
  decodeFrames,
  decoderId,
  encodeMp4,
  ffmpegPath,
  probeVideo,
  VideoClipCache,
} from '../../src/data/video.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';
import { grey, mean } from '../helpers/frames.ts';

let dir: string;
/** Ramp video: frame i is uniform grey 8 i (i = 0..29), 32 x 24 at 25 fps, so a frame's mean names it. */
let ramp: string;
/** Frame i: grey 16 + 7 i plus fixed noise in [-15, 15] (so every frame costs bytes in the MP4). */
function noisyFrame(i: number): Frame {
  const f = grey(32, 24, 0);
  let s = 12345 + i;
  for (let p = 0; p < f.data.length; p++) {
    s = (s * 1103515245 + 12345) >>> 0;
    f.data[p] = 16 + 7 * i + ((s >>> 16) % 31) - 15;
  }
  return f;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcore-video-'));
  ramp = join(dir, 'ramp.mp4');
  const written = await encodeMp4(
    Array.from({ length: 30 }, (_, i) => grey(32, 24, 8 * i)),
    25,
    ramp,
  );
  expect(written).toEqual({ frames: 30, codec: 'libx264' });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ffmpeg', () => {
  it('uses the pinned @ffmpeg-installer binary by default; MCORE_FFMPEG picks another, and names it in the key', async () => {
    const saved = process.env.MCORE_FFMPEG;
    try {
      delete process.env.MCORE_FFMPEG;
      const pinned = ffmpegPath();
      expect(pinned).toMatch(/@ffmpeg-installer/);
      expect((await stat(pinned)).isFile()).toBe(true);
      expect(decoderId()).toMatch(/^ffmpeg \S+$/);
      expect(decoderId()).not.toBe('ffmpeg unknown');
      // A path: that binary.
      process.env.MCORE_FFMPEG = pinned;
      expect(ffmpegPath()).toBe(pinned);
      process.env.MCORE_FFMPEG = join(dir, 'no-such-ffmpeg');
      expect(() => ffmpegPath()).toThrow(/MCORE_FFMPEG=.*no-such-ffmpeg: no such file/);
      // 'system' searches PATH only.
      process.env.MCORE_FFMPEG = 'system';
      const path0 = process.env.PATH;
      process.env.PATH = dir;
      try {
        expect(() => ffmpegPath()).toThrow(/MCORE_FFMPEG=system but no ffmpeg on PATH/);
      } finally {
        process.env.PATH = path0;
      }
    } finally {
      if (saved === undefined) delete process.env.MCORE_FFMPEG;
      else process.env.MCORE_FFMPEG = saved;
    }
  });

  it('probes frame count, fps, duration and size', async () => {
    const info = await probeVideo(ramp);
    expect(info).toMatchObject({
      frameCount: 30,
      fps: 25,
      width: 32,
      height: 24,
      codec: 'h264',
      warnings: [],
    });
    expect(info.duration).toBeCloseTo(1.2, 2);
  });
});

describe('decodeFrames', () => {
  it('count N gives N frames at linspace indices, each the right frame', async () => {
    const d = await decodeFrames(ramp, { count: 7 });
    // numpy.linspace(0, 29, 7) = 0, 4.83, 9.67, 14.5, 19.33, 24.17, 29 -> truncated
    expect(d.indices).toEqual([0, 4, 9, 14, 19, 24, 29]);
    expect(d.frames).toHaveLength(7);
    expect(d.warnings).toEqual([]);
    d.frames.forEach((f, k) => {
      expect([f.width, f.height]).toEqual([32, 24]);
      expect(Math.abs(mean(f) - 8 * d.indices[k])).toBeLessThan(3);
    });
  });

  it('explicit indices in any order with repeats, resized', async () => {
    const d = await decodeFrames(ramp, { indices: [29, 3, 3, 17], width: 16, height: 8 });
    expect(d.frames.map((f) => [f.width, f.height])).toEqual([
      [16, 8],
      [16, 8],
      [16, 8],
      [16, 8],
    ]);
    expect(d.frames.map((f) => Math.round(mean(f) / 8))).toEqual([29, 3, 3, 17]);
    expect(d.frames[1]).toBe(d.frames[2]);
  });

  it('count over [startSec, endSec]: nearest frames, inclusive', async () => {
    // 0.4 s -> frame 10, 0.8 s -> frame 20 at 25 fps; linspace(10, 20, 4) = 10, 13.3, 16.7, 20
    const d = await decodeFrames(ramp, { count: 4, startSec: 0.4, endSec: 0.8 });
    expect(d.indices).toEqual([10, 13, 16, 20]);
    expect(d.frames.map((f) => Math.round(mean(f) / 8))).toEqual([10, 13, 16, 20]);
  });

  it('a clip shorter than N is sampled with repetition and says so', async () => {
    const d = await decodeFrames(ramp, { count: 40, width: 8, height: 8 });
    expect(d.frames).toHaveLength(40);
    expect(d.indices.slice(0, 4)).toEqual([0, 0, 1, 2]); // linspace(0, 29, 40) = 0, 0.74, 1.49, 2.23
    expect(d.warnings).toHaveLength(1);
    expect(d.warnings[0]).toMatch(/only 30 frames in 0-29 for 40 samples/);
  });

  it("fit 'cover' centre-crops where 'squeeze' stretches", async () => {
    // 32 x 16 frames: white in columns 8..23, black elsewhere
    const f = grey(32, 16, 0);
    for (let y = 0; y < 16; y++) f.data.fill(255, (y * 32 + 8) * 3, (y * 32 + 24) * 3);
    const path = join(dir, 'bars.mp4');
    await encodeMp4([f, f, f], 25, path);
    const squeeze = await decodeFrames(path, { indices: [1], width: 16, height: 16 });
    const cover = await decodeFrames(path, { indices: [1], width: 16, height: 16, fit: 'cover' });
    expect(Math.abs(mean(squeeze.frames[0]) - 127.5)).toBeLessThan(8);
    expect(mean(cover.frames[0])).toBeGreaterThan(235);
  });

  it('requests outside the video are E_INPUT, bad options E_CONFIG', async () => {
    await expectMcoreRejection(
      decodeFrames(ramp, { indices: [5, 30] }),
      'E_INPUT',
      /frames 30 requested/,
      /30 frames \(0-29\)/,
    );
    await expectMcoreRejection(decodeFrames(ramp, { count: 3, startSec: 2 }), 'E_INPUT', /outside the video/);
    await expectMcoreRejection(decodeFrames(ramp, { count: 3, indices: [1] }), 'E_CONFIG', /exactly one/);
    await expectMcoreRejection(
      decodeFrames(ramp, { count: 3, width: 8 }),
      'E_CONFIG',
      /both `width` and `height`/,
    );
  });
});

describe('encodeMp4', () => {
  it('mpeg4 and odd sizes (yuv444p) round-trip frame count and size', async () => {
    const frames = Array.from({ length: 5 }, (_, i) => grey(33, 17, 40 * i));
    const a = join(dir, 'odd-x264.mp4');
    const b = join(dir, 'odd-mpeg4.mp4');
    expect(await encodeMp4(frames, 10, a)).toEqual({ frames: 5, codec: 'libx264' });
    expect(await encodeMp4(frames, 10, b, { codec: 'mpeg4' })).toEqual({ frames: 5, codec: 'mpeg4' });
    for (const [p, codec] of [
      [a, 'h264'],
      [b, 'mpeg4'],
    ]) {
      const info = await probeVideo(p);
      expect(info).toMatchObject({ frameCount: 5, fps: 10, width: 33, height: 17, codec });
      const d = await decodeFrames(p, { count: 5 });
      expect(d.frames.map((f) => Math.round(mean(f) / 40))).toEqual([0, 1, 2, 3, 4]);
    }
  });

  it('a frame of another size is E_SHAPE and leaves no file', async () => {
    const out = join(dir, 'mixed.mp4');
    await expectMcoreRejection(
      encodeMp4([grey(16, 16, 0), grey(8, 8, 0)], 25, out),
      'E_SHAPE',
      /frame 1 is 8x8/,
    );
    const left = (await readdir(dir)).filter((n) => n.startsWith('mixed'));
    expect(left).toEqual([]);
  });
});

describe('bad video files', () => {
  it('a text file named .mp4 is E_INPUT naming it, with ffmpeg reason', async () => {
    const path = join(dir, 'notes.mp4');
    await writeFile(path, 'these are my notes, not a video\n');
    await expectMcoreRejection(
      probeVideo(path),
      'E_INPUT',
      /notes\.mp4: not a readable video/,
      /Invalid data/,
    );
    const { message: msg } = await expectMcoreRejection(
      decodeFrames(path, { count: 4 }),
      'E_INPUT',
      /notes\.mp4/,
    );
    expect(msg).not.toMatch(/\n|at .*\.ts:/); // one line, no stack
  });

  it('a missing file is E_INPUT', async () => {
    await expectMcoreRejection(probeVideo(join(dir, 'nope.mp4')), 'E_INPUT', /nope\.mp4/, /No such file/);
  });

  it('an MP4 cut in half with its index at the end is E_INPUT (moov atom not found)', async () => {
    const full = join(dir, 'tail-index.mp4');
    await encodeMp4(
      Array.from({ length: 30 }, (_, i) => grey(32, 24, 8 * i)),
      25,
      full,
      { faststart: false },
    );
    const bytes = await readFile(full);
    const half = join(dir, 'tail-index-half.mp4');
    await writeFile(half, bytes.subarray(0, bytes.length >> 1));
    await expectMcoreRejection(
      decodeFrames(half, { count: 4 }),
      'E_INPUT',
      /tail-index-half\.mp4/,
      /moov atom not found/,
    );
  });

  it('an MP4 cut in half with its index in front decodes the readable start with a warning', async () => {
    const full = join(dir, 'noisy.mp4');
    await encodeMp4(
      Array.from({ length: 30 }, (_, i) => noisyFrame(i)),
      25,
      full,
    );
    const bytes = await readFile(full);
    const half = join(dir, 'noisy-half.mp4');
    await writeFile(half, bytes.subarray(0, bytes.length >> 1));
    const info = await probeVideo(half);
    expect(info.frameCount).toBeGreaterThan(2);
    expect(info.frameCount).toBeLessThan(30);
    expect(info.warnings[0]).toMatch(
      /noisy-half\.mp4: the file is truncated or damaged .* header says about 30/,
    );
    const d = await decodeFrames(half, { count: 3 });
    expect(d.frames).toHaveLength(3);
    expect(d.warnings.length).toBeGreaterThanOrEqual(1);
    // the samples span the readable frames, and those are the right frames
    expect(d.indices).toEqual([0, (info.frameCount - 1) >> 1, info.frameCount - 1]);
    expect(Math.abs(mean(d.frames[0]) - 16)).toBeLessThan(3);
    expect(Math.round((mean(d.frames[1]) - 16) / 7)).toBe(d.indices[1]);
  });
});

describe('VideoClipCache', () => {
  it('a hit skips ffmpeg and returns the same bytes; touching the file misses', async () => {
    const cache = new VideoClipCache({ dir: join(dir, 'cache') });
    const opts = { count: 5, width: 8, height: 6 } as const;
    const a = await cache.decode(ramp, opts);
    const b = await cache.decode(ramp, opts);
    expect([a.hit, b.hit]).toEqual([false, true]);
    expect(b.indices).toEqual([0, 7, 14, 21, 29]);
    expect(b.frames.map((f) => Buffer.from(f.data).toString('hex'))).toEqual(
      a.frames.map((f) => Buffer.from(f.data).toString('hex')),
    );
    const files = await readdir(join(dir, 'cache'));
    expect(files.filter((n) => n.endsWith('.clip'))).toHaveLength(1);
    expect(files.filter((n) => n.includes('.tmp-'))).toEqual([]);
    const clipFile = join(dir, 'cache', files.find((n) => n.endsWith('.clip'))!);
    // magic + uint32 header length + JSON header + 5 frames of 8 x 6 x 3 bytes
    const raw = await readFile(clipFile);
    expect(raw.toString('latin1', 0, 8)).toBe('MCLIP001');
    expect(raw.length).toBe(12 + raw.readUInt32LE(8) + 5 * 8 * 6 * 3);
    // another sampling is another entry
    expect((await cache.decode(ramp, { ...opts, count: 4 })).hit).toBe(false);
    const later = new Date(Date.now() + 5000);
    await utimes(ramp, later, later);
    expect((await cache.decode(ramp, opts)).hit).toBe(false);
    // a damaged entry is a miss, then rewritten
    await writeFile(clipFile, raw.subarray(0, 20));
    const c = await new VideoClipCache({ dir: join(dir, 'cache') }).decode(ramp, opts);
    expect(c.frames.map((f) => Math.round(mean(f) / 8))).toEqual([0, 7, 14, 21, 29]);
  });
});

describe('images', () => {
  it('PNG is lossless, JPEG close; listFrameFolder sorts naturally and skips other files', async () => {
    const folder = join(dir, 'imgs');
    await rm(folder, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(folder));
    const f: Frame = { width: 4, height: 2, data: Uint8Array.from({ length: 24 }, (_, i) => i * 10) };
    await writePng(join(folder, '10.png'), f);
    await writePng(join(folder, '2.png'), grey(4, 2, 7));
    await writeJpeg(join(folder, '1.jpg'), grey(4, 2, 200), 95);
    await writeFile(join(folder, 'notes.txt'), 'x');
    const files = await listFrameFolder(folder);
    expect(files.map((p) => p.slice(folder.length + 1))).toEqual(['1.jpg', '2.png', '10.png']);
    expect(Array.from((await readImage(files[2])).data)).toEqual(Array.from(f.data));
    expect(Math.abs(mean(await readImage(files[0])) - 200)).toBeLessThan(2);
    const small = await readImage(files[1], { width: 2, height: 1 });
    expect([small.width, small.height, small.data.length]).toEqual([2, 1, 6]);
    await expectMcoreRejection(listFrameFolder(join(dir, 'none')), 'E_DATA_LAYOUT', /none: cannot list/);
    const noise: Frame = {
      width: 64,
      height: 64,
      data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7919) % 251),
    };
    await writeJpeg(join(folder, 'whole.jpg'), noise, 90);
    const jpeg = await readFile(join(folder, 'whole.jpg'));
    await writeFile(join(folder, 'cut.jpg'), jpeg.subarray(0, jpeg.length >> 1));
    await expectMcoreRejection(
      readImage(join(folder, 'cut.jpg')),
      'E_INPUT',
      /cut\.jpg: cannot read the image \(.*premature end/,
    );
    await writeFile(join(folder, 'broken.jpg'), 'not a jpeg');
    await expectMcoreRejection(
      readImage(join(folder, 'broken.jpg')),
      'E_INPUT',
      /broken\.jpg: cannot read the image/,
    );
  });
});
