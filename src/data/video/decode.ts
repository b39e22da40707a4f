import { McoreError } from '../../errors.ts';
import { sampleIndices } from '../frame-sampling.ts';
import type { FitMode } from '../images.ts';
import type { Frame } from '../types.ts';
import { ffmpegReason, runFfmpeg } from './ffmpeg.ts';
import { probeVideo, type VideoInfo } from './probe.ts';

export interface DecodeOptions {
  /** Absolute frame numbers to decode, in any order, repeats allowed. */
  indices?: readonly number[];
  /** Or: this many frames uniform over the clip, or over [startSec, endSec] (numpy.linspace, truncated). */
  count?: number;
  /** Range for `count`: the frames nearest to these times, inclusive (default: the whole video). */
  startSec?: number;
  endSec?: number;
  /** Output size (default: the video's); both or neither. */
  width?: number;
  height?: number;
  /** 'squeeze' (default) stretches to width x height; 'cover' scales to fill and centre-crops. */
  fit?: FitMode;
  /**
   * Skip the decoder's in-loop deblocking filter (`-skip_loop_filter all`): about 20% faster for H.264,
   * but the pixels are no longer the encoder's (blocky edges), so opt in only where speed matters more
   * than matching the frames a model was trained on. Default false.
   */
  fastDecode?: boolean;
}

export interface DecodedClip {
  /** One frame per requested index, in request order (repeated indices share one Frame). */
  frames: Frame[];
  indices: number[];
  /** Repeated samples of short clips, frames that could not be decoded, truncated files. */
  warnings: string[];
  info: VideoInfo;
}

interface Sampling {
  indices: number[];
  width: number;
  height: number;
  fit: FitMode;
  fastDecode: boolean;
  warnings: string[];
}

/** Resolves the options against the probe: absolute frame indices and the output size. */
export function resolveSampling(info: VideoInfo, o: DecodeOptions): Sampling {
  const name = info.path;
  const last = info.frameCount - 1;
  const warnings: string[] = [];
  let indices: number[];
  if ((o.indices === undefined) === (o.count === undefined)) {
    throw new McoreError('E_CONFIG', 'decodeFrames: give exactly one of `indices` or `count`');
  }
  if (o.indices) {
    indices = [...o.indices];
    const bad = indices.find((i) => !Number.isInteger(i) || i < 0);
    if (bad !== undefined)
      throw new McoreError('E_CONFIG', `decodeFrames: frame index ${bad} is not an integer >= 0`);
    const beyond = indices.filter((i) => i > last);
    if (beyond.length > 0) {
      throw new McoreError(
        'E_INPUT',
        `${name}: frames ${beyond.slice(0, 5).join(', ')} requested, but the video has ${info.frameCount} frames (0-${last})`,
      );
    }
  } else {
    const count = o.count!;
    if (!Number.isInteger(count) || count < 1) {
      throw new McoreError('E_CONFIG', `decodeFrames: count must be a positive integer, found ${count}`);
    }
    const start = o.startSec === undefined ? 0 : Math.round(o.startSec * info.fps);
    const end = o.endSec === undefined ? last : Math.min(last, Math.round(o.endSec * info.fps));
    if (!(start >= 0 && start <= end)) {
      throw new McoreError(
        'E_INPUT',
        `${name}: the range ${o.startSec ?? 0}s-${o.endSec ?? info.duration}s (frames ${start}-${end}) ` +
          `is empty or outside the video (${info.frameCount} frames at ${info.fps.toFixed(3)} fps)`,
      );
    }
    indices = sampleIndices(start, end, count);
    if (end - start + 1 < count) {
      warnings.push(
        `${name}: only ${end - start + 1} frames in ${start}-${end} for ${count} samples; frames are repeated`,
      );
    }
  }
  if ((o.width === undefined) !== (o.height === undefined)) {
    throw new McoreError('E_CONFIG', 'decodeFrames: give both `width` and `height`, or neither');
  }
  const width = o.width ?? info.width;
  const height = o.height ?? info.height;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new McoreError('E_CONFIG', `decodeFrames: bad output size ${width}x${height}`);
  }
  return { indices, width, height, fit: o.fit ?? 'squeeze', fastDecode: o.fastDecode ?? false, warnings };
}

/** The swscale filter that brings decoded frames to the output size (part of the clip and feature-cache keys). */
export const SCALER = 'area';

/** ffmpeg select expression for sorted unique frame numbers: runs as between(n,a,b), singles as eq(n,a). */
function selectExpression(unique: readonly number[]): string {
  const terms: string[] = [];
  for (let i = 0; i < unique.length; ) {
    let j = i;
    while (j + 1 < unique.length && unique[j + 1] === unique[j] + 1) j++;
    terms.push(j > i ? `between(n,${unique[i]},${unique[j]})` : `eq(n,${unique[i]})`);
    i = j + 1;
  }
  return terms.join('+');
}

/** Decodes the sorted unique frames; missing trailing frames are reported, not invented. */
export async function decodeUnique(
  info: VideoInfo,
  unique: readonly number[],
  s: Sampling,
  syncFlag = '-vsync',
): Promise<{ frames: Uint8Array[]; warnings: string[] }> {
  const { width, height } = s;
  // One swscale pass: resize and YUV -> RGB (to the sink's rgb24) on the small frame, area-averaging.
  const scale =
    s.fit === 'cover'
      ? `scale=${width}:${height}:force_original_aspect_ratio=increase:flags=${SCALER},crop=${width}:${height}`
      : `scale=${width}:${height}:flags=${SCALER}`;
  const frameBytes = width * height * 3;
  const frames: Uint8Array[] = [];
  let current = new Uint8Array(frameBytes);
  let fill = 0;
  const onStdout = (chunk: Buffer): void => {
    for (let off = 0; off < chunk.length; ) {
      const n = Math.min(frameBytes - fill, chunk.length - off);
      current.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === frameBytes) {
        if (frames.length < unique.length) frames.push(current);
        current = new Uint8Array(frameBytes);
        fill = 0;
      }
    }
  };
  const run = await runFfmpeg(
    [
      ...['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error'],
      ...(s.fastDecode ? ['-skip_loop_filter', 'all'] : []),
      ...['-i', info.path],
      ...['-map', '0:v:0', '-an', '-sn', '-dn', '-vf', `select='${selectExpression(unique)}',${scale}`],
      ...[syncFlag, 'passthrough', '-frames:v', String(unique.length), '-pix_fmt', 'rgb24', '-f', 'rawvideo'],
      'pipe:1',
    ],
    { onStdout },
  );
  if (run.code !== 0 && syncFlag === '-vsync' && /option.{0,3}vsync/i.test(run.stderr)) {
    return decodeUnique(info, unique, s, '-fps_mode'); // ffmpeg builds that dropped -vsync
  }
  const reason = ffmpegReason(run.stderr, info.path);
  if (frames.length === 0) {
    throw new McoreError('E_INPUT', `${info.path}: no frame could be decoded (ffmpeg: ${reason})`);
  }
  const warnings: string[] = [];
  if (frames.length < unique.length) {
    const missing = unique.slice(frames.length);
    warnings.push(
      `${info.path}: frame${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}` +
        `${missing.length > 5 ? ', ...' : ''} could not be ` +
        `decoded (${run.code !== 0 ? `ffmpeg: ${reason}` : 'the stream ended early'}); ` +
        `frame ${unique[frames.length - 1]} stands in for them`,
    );
    while (frames.length < unique.length) frames.push(frames[frames.length - 1]);
  }
  return { frames, warnings };
}

export function assemble(s: Sampling, unique: readonly number[], data: Uint8Array[]): Frame[] {
  const at = new Map<number, Frame>();
  unique.forEach((f, i) => {
    at.set(f, { width: s.width, height: s.height, data: data[i] });
  });
  return s.indices.map((i) => at.get(i)!);
}

export function uniqueSorted(indices: readonly number[]): number[] {
  return [...new Set(indices)].sort((a, b) => a - b);
}

/**
 * Decodes the sampled frames of a video as RGB frames of `width` x `height`, keeping only those frames.
 * Clips shorter than `count` are sampled with repetition (reported in `warnings`). Not a video, a
 * corrupt or truncated file: McoreError('E_INPUT') naming the file with ffmpeg's one-line reason.
 */
export async function decodeFrames(
  path: string,
  options: DecodeOptions,
  info?: VideoInfo,
): Promise<DecodedClip> {
  const probe = info ?? (await probeVideo(path));
  const s = resolveSampling(probe, options);
  const unique = uniqueSorted(s.indices);
  const decoded = await decodeUnique(probe, unique, s);
  return {
    frames: assemble(s, unique, decoded.frames),
    indices: s.indices,
    warnings: [...probe.warnings, ...s.warnings, ...decoded.warnings],
    info: probe,
  };
}
