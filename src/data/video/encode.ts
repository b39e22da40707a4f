/** Encoding frames to an MP4 (H.264 when ffmpeg has libx264). */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { McoreError } from '../../errors.ts';
import type { Frame } from '../types.ts';
import { ffmpegReason, runFfmpeg } from './ffmpeg.ts';

export interface EncodeOptions {
  /** 'auto' (default): libx264 when this ffmpeg has it, else mpeg4. */
  codec?: 'auto' | 'libx264' | 'mpeg4';
  /** libx264 constant rate factor (default 18, visually lossless); mpeg4 uses -q:v 2. */
  crf?: number;
  /** Put the index at the front of the file (default true). */
  faststart?: boolean;
}

async function hasLibx264(): Promise<boolean> {
  const run = await runFfmpeg(['-hide_banner', '-nostdin', '-encoders']);
  return /^\s*V\S*\s+libx264\s/m.test(run.stdout);
}

/**
 * Encodes RGB frames (all of one size) to an H.264 MP4 (libx264, else mpeg4) at `fps`, feeding ffmpeg's
 * stdin as frames arrive (an async iterable streams a long clip). yuv420p, or yuv444p for odd sizes
 * with libx264. Written to a temporary file, then renamed to `outPath`.
 */
export async function encodeMp4(
  frames: Iterable<Frame> | AsyncIterable<Frame>,
  fps: number,
  outPath: string,
  options: EncodeOptions = {},
): Promise<{ frames: number; codec: 'libx264' | 'mpeg4' }> {
  if (!(fps > 0)) throw new McoreError('E_CONFIG', `encodeMp4: fps must be positive, found ${fps}`);
  const it: AsyncIterator<Frame> | Iterator<Frame> =
    Symbol.asyncIterator in frames ? frames[Symbol.asyncIterator]() : frames[Symbol.iterator]();
  const first = await it.next();
  if (first.done) throw new McoreError('E_INPUT', `encodeMp4: no frames to write to ${outPath}`);
  const { width, height } = first.value;
  const wanted = options.codec ?? 'auto';
  const codec = wanted !== 'auto' ? wanted : (await hasLibx264()) ? 'libx264' : 'mpeg4';
  const odd = width % 2 === 1 || height % 2 === 1;
  const pixFmt = codec === 'libx264' && odd ? 'yuv444p' : 'yuv420p';
  const quality =
    codec === 'libx264' ? ['-preset', 'medium', '-crf', String(options.crf ?? 18)] : ['-q:v', '2'];
  const out = resolve(outPath);
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  let count = 0;
  async function* raw(): AsyncGenerator<Uint8Array> {
    for (let r: IteratorResult<Frame> = first; !r.done; r = await it.next()) {
      const f = r.value;
      if (f.width !== width || f.height !== height || f.data.length !== width * height * 3) {
        throw new McoreError(
          'E_SHAPE',
          `encodeMp4: frame ${count} is ${f.width}x${f.height} (${f.data.length} bytes); all frames must be ${width}x${height} RGB`,
        );
      }
      count++;
      yield f.data;
    }
  }
  const run = await runFfmpeg(
    [
      ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24'],
      ...['-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0', '-an', '-c:v', codec],
      ...quality,
      ...['-pix_fmt', pixFmt, ...(options.faststart === false ? [] : ['-movflags', '+faststart'])],
      ...['-f', 'mp4', '-y', tmp],
    ],
    {
      feed: (child) =>
        pipeline(Readable.from(raw()), child.stdin!).catch((e: unknown) => {
          if (e instanceof McoreError) throw e; // a bad frame: stop ffmpeg, report it
        }),
    },
  ).catch(async (e: unknown) => {
    await rm(tmp, { force: true });
    throw e;
  });
  if (run.code !== 0) {
    await rm(tmp, { force: true });
    throw new McoreError(
      'E_INPUT',
      `${out}: ffmpeg could not encode the video (${ffmpegReason(run.stderr, tmp)})`,
    );
  }
  await rename(tmp, out);
  return { frames: count, codec };
}
