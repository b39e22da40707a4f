/**
 * The page's pixel and file handling, checked in Node against what Node does: an image at the target
 * size is copied (not resampled); area downscaling averages; YUV frames converted by the page's code
 * land close to ffmpeg's own scale + convert (the path of `mcore score` on videos); frame folders are
 * ordered as listFrameFolder orders them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { naturalCompare as nodeNaturalCompare } from '../../src/data/images.ts';
import type { Frame } from '../../src/data/types.ts';
import { decodeFrames, encodeMp4, ffmpegPath } from '../../src/data/video.ts';
import { frameFiles, naturalCompare, snapFps } from '../../web/frames.ts';
import { areaWeights, fitRect, resizeRgb, yuvToRgb } from '../../web/pixels.ts';

const run = promisify(execFile);

let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'mcore-pixels-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A smooth colourful W x H frame (gradients and a disc), frame `k` of a moving sequence. */
function scene(W: number, H: number, k: number): Frame {
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * 3;
      const inDisc = (x - 20 - 3 * k) ** 2 + (y - H / 2) ** 2 < 100;
      data[p] = inDisc ? 230 : Math.round((255 * x) / W);
      data[p + 1] = inDisc ? 40 : Math.round((255 * y) / H);
      data[p + 2] = inDisc ? 60 : 128 + Math.round(60 * Math.sin((x + y) / 9));
    }
  }
  return { width: W, height: H, data };
}

const meanAbs = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

describe('resizeRgb', () => {
  it('copies an image already at the target size byte for byte (RGBA in, RGB out)', () => {
    const W = 7;
    const H = 5;
    const rgba = new Uint8Array(W * H * 4).map((_, i) => (i * 37 + 11) % 256);
    const out = resizeRgb(
      { width: W, height: H, data: rgba, channels: 4 },
      { width: W, height: H, fit: 'squeeze' },
    );
    expect(out.width).toBe(W);
    for (let p = 0; p < W * H; p++) {
      expect([...out.data.subarray(p * 3, p * 3 + 3)]).toEqual([...rgba.subarray(p * 4, p * 4 + 3)]);
    }
  });

  it('averages the covered pixels when it shrinks by 2', () => {
    const src = new Uint8Array([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 161]);
    const out = resizeRgb(
      { width: 4, height: 4, data: new Uint8Array([...src].flatMap((v) => [v, 255 - v, 7])), channels: 3 },
      { width: 2, height: 2, fit: 'squeeze' },
    );
    // Top-left block: 10, 20, 50, 60 -> 35; bottom-right: 110, 120, 150, 161 -> 135.25 -> 135.
    expect([out.data[0], out.data[1], out.data[2]]).toEqual([35, 220, 7]);
    expect(out.data[9]).toBe(135);
  });

  it('weights sum to 1 and cover mode takes the centre', () => {
    for (const [n, m] of [
      [320, 112],
      [112, 320],
      [33, 32],
    ]) {
      const w = areaWeights(n, m);
      for (const row of w.weights) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
    expect(fitRect(200, 100, { width: 50, height: 50, fit: 'cover' })).toEqual({
      x: 50,
      y: 0,
      w: 100,
      h: 100,
    });
    expect(fitRect(200, 100, { width: 50, height: 50, fit: 'squeeze' })).toEqual({
      x: 0,
      y: 0,
      w: 200,
      h: 100,
    });
  });
});

describe('yuvToRgb against ffmpeg', () => {
  it('converts and shrinks H.264 frames to within 2.5 levels of ffmpeg (mcore score)', async () => {
    const W = 96;
    const H = 64;
    const mp4 = path.join(tmp, 'scene.mp4');
    await encodeMp4(
      Array.from({ length: 6 }, (_, k) => scene(W, H, k)),
      25,
      mp4,
    );
    const target = { width: 40, height: 24, fit: 'squeeze' as const };
    const node = await decodeFrames(mp4, { indices: [0, 3, 5], ...target });
    // The decoder's own YUV 4:2:0 planes, as WebCodecs hands them to the page.
    const { stdout } = await run(
      ffmpegPath(),
      ['-v', 'error', '-i', mp4, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'],
      { encoding: 'buffer', maxBuffer: 1 << 26 },
    );
    const yuv = new Uint8Array(stdout);
    const frameBytes = W * H * 1.5;
    const diffs = [0, 3, 5].map((k, i) => {
      const off = k * frameBytes;
      const plane = (offset: number, width: number, height: number) => ({
        data: yuv,
        offset: off + offset,
        stride: width,
        width,
        height,
        channels: 1,
        channel: 0,
      });
      const page = yuvToRgb(
        { y: plane(0, W, H), u: plane(W * H, W / 2, H / 2), v: plane(W * H * 1.25, W / 2, H / 2) },
        W,
        H,
        target,
        { matrix: 'bt601', fullRange: false },
      );
      return meanAbs(page.data, node.frames[i].data);
    });
    // Measured: 1.2-1.9 of 255 (chroma siting and swscale's fixed-point arithmetic differ, and this
    // scene's sharp coloured edges show it); a wrong matrix or range gives 6 or more.
    for (const d of diffs) expect(d).toBeLessThan(2.5);
    const wrong = yuvToRgb(
      {
        y: { data: yuv, offset: 0, stride: W, width: W, height: H, channels: 1, channel: 0 },
        u: { data: yuv, offset: W * H, stride: W / 2, width: W / 2, height: H / 2, channels: 1, channel: 0 },
        v: {
          data: yuv,
          offset: W * H * 1.25,
          stride: W / 2,
          width: W / 2,
          height: H / 2,
          channels: 1,
          channel: 0,
        },
      },
      W,
      H,
      target,
      { matrix: 'bt709', fullRange: true },
    );
    expect(meanAbs(wrong.data, node.frames[0].data)).toBeGreaterThan(3);
  });
});

describe('frame folders and rates as Node sees them', () => {
  it('orders names as listFrameFolder does and keeps only top-level images', () => {
    const names = ['10.png', '2.png', 'img_1.PNG', '00009.jpg', '00010.jpg', 'b.jpeg', 'A.png', 'notes.txt'];
    const files = [
      ...names.map((name) => ({ name, path: `clip/${name}` })),
      { name: '1.png', path: 'clip/thumbs/1.png' },
    ];
    const picked = frameFiles(files).map((f) => f.name);
    const node = names.filter((n) => /\.(jpe?g|png)$/i.test(n)).sort(nodeNaturalCompare);
    expect(picked).toEqual(node);
    expect(picked.slice(0, 4)).toEqual(['2.png', '00009.jpg', '00010.jpg', '10.png']);
    expect([...names].sort(naturalCompare)).toEqual([...names].sort(nodeNaturalCompare));
  });

  it('restores NTSC rates as ffmpeg prints them', () => {
    expect(snapFps(29.97)).toBeCloseTo(30000 / 1001, 12);
    expect(snapFps(25)).toBe(25);
    expect(snapFps(12.5)).toBe(12.5);
  });
});
