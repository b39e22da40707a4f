/**
 * Video files through ffmpeg (a child process, never a shell): probe a video, decode only the sampled
 * frames as RGB, cache decoded sample sets on disk, and encode frames to MP4.
 *
 * Frame numbers are decode-order positions from the start of the file (0-based), as FineDiving's
 * frames were extracted with ffmpeg. Decoding always starts at the first frame (exact frame numbers,
 * no seek inaccuracy) and stops after the last wanted one; ffmpeg's `select` filter drops every other
 * frame before scaling, so only the sampled frames cross the pipe and are kept in memory. A clip in a
 * long untrimmed video costs one decode up to its end; `VideoClipCache` then serves it from disk.
 *
 * Speed: decoding the full-size frames is nearly all of the cost (a 5 s 720p H.264 clip: about
 * 0.37 s of CPU to decode, 0.02-0.04 s more to bring 96 frames to 112 x 112 with bicubic). Frames are
 * brought to the output size in one swscale pass that also converts YUV to RGB (the conversion runs on
 * the small frame), with the area-averaging scaler: it filters out aliasing as bicubic does (mean
 * |difference| 0.34 of 255 from bicubic, the same distance as bicubic from sharp's resize) at about a
 * third of its cost. `fastDecode` also skips the decoder's deblocking filter (about 20% less decoding;
 * pixels differ).
 *
 * Example:
 *   const info = await probeVideo('clip.mp4');            // { frameCount: 75, fps: 25, width: 320, ... }
 *   const { frames, indices } = await decodeFrames('clip.mp4', { count: 8, width: 112, height: 200 });
 *   // indices = [0, 10, 21, 31, 42, 52, 63, 74]: numpy.linspace(0, 74, 8) truncated, as the reference samples
 *   await encodeMp4(frames, 25, 'out.mp4');
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { sampleIndices } from './frame-sampling.ts';
import type { FitMode } from './images.ts';
import type { Frame } from './types.ts';

/**
 * The ffmpeg binary. By default the one pinned by the npm package `@ffmpeg-installer/ffmpeg` (the same
 * build on every machine, so decoded frames, and the caches and features made from them, do not differ
 * by machine). `MCORE_FFMPEG=system` uses `ffmpeg` from PATH instead; `MCORE_FFMPEG=/path/to/ffmpeg` that
 * binary. Which one decoded a clip is part of the clip and feature-cache keys (`decoderId`). Throws
 * McoreError('E_BACKEND') saying how to get one.
 */
export function ffmpegPath(): string {
  const choice = process.env.MCORE_FFMPEG ?? '';
  if (choice === '' || choice === 'bundled') {
    try {
      const installer = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string };
      return installer.path;
    } catch {
      throw new McoreError(
        'E_BACKEND',
        'the pinned ffmpeg (npm package @ffmpeg-installer/ffmpeg) is not installed: reinstall mcore (npm ci), ' +
          'or set MCORE_FFMPEG=system to use ffmpeg from PATH',
      );
    }
  }
  if (choice !== 'system') {
    if (!isFile(choice)) {
      throw new McoreError(
        'E_BACKEND',
        `MCORE_FFMPEG=${choice}: no such file (use 'system', 'bundled' or a path)`,
      );
    }
    return resolve(choice);
  }
  const exe = process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg';
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isFile(join(dir, exe))) return join(dir, exe);
  }
  throw new McoreError(
    'E_BACKEND',
    'MCORE_FFMPEG=system but no ffmpeg on PATH: install one (e.g. `apt install ffmpeg`) or unset MCORE_FFMPEG',
  );
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const decoderIds = new Map<string, string>();

/**
 * The decoder that turns videos into frames, e.g. 'ffmpeg N-47683-g0e8eb07980-static' (its version line):
 * part of the clip-cache and feature-cache keys, so frames decoded by another ffmpeg are never served
 * from a cache. Run once per binary and process.
 */
export function decoderId(): string {
  const bin = ffmpegPath();
  let id = decoderIds.get(bin);
  if (id === undefined) {
    let version = 'unknown';
    try {
      const out = execFileSync(bin, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
      version = /^ffmpeg version (\S+)/m.exec(out)?.[1] ?? 'unknown';
    } catch {
      // decoding will report the problem with the binary
    }
    id = `ffmpeg ${version}`;
    decoderIds.set(bin, id);
  }
  return id;
}

interface FfmpegRun {
  code: number;
  stderr: string;
  stdout: string;
}

/** Runs ffmpeg with `args`; `onStdout` takes stdout chunks (else stdout is collected as text). */
function runFfmpeg(
  args: string[],
  opts: { onStdout?: (chunk: Buffer) => void; feed?: (child: ChildProcess) => Promise<void> } = {},
): Promise<FfmpegRun> {
  const bin = ffmpegPath();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { stdio: [opts.feed ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let fed: Promise<unknown> = Promise.resolve();
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      stderr = (stderr + s).slice(-65536);
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      if (opts.onStdout) opts.onStdout(chunk);
      else stdout += chunk.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      const fix = e.code === 'EACCES' ? ` (make it executable: chmod +x ${bin})` : '';
      reject(new McoreError('E_BACKEND', `cannot run ffmpeg at ${bin}: ${e.message}${fix}`));
    });
    if (opts.feed) {
      fed = opts.feed(child).catch((e: unknown) => {
        child.kill('SIGKILL');
        return e;
      });
    }
    child.on('close', (code) => {
      void fed.then((e) => {
        if (e instanceof McoreError) reject(e);
        else resolvePromise({ code: code ?? 1, stderr, stdout });
      });
    });
  });
}

/** ffmpeg's reason in one line: the last distinct error lines, without '[demuxer @ 0x..]' and path prefixes. */
function ffmpegReason(stderr: string, path: string): string {
  const lines: string[] = [];
  for (const raw of stderr.split(/[\r\n]+/)) {
    const line = raw
      .replace(/\[[^\]]* @ 0x[0-9a-f]+\] ?/g, '')
      .replace(/^\[(error|fatal|panic)\] ?/, '')
      .replaceAll(`${path}: `, '')
      .trim();
    if (line && !lines.includes(line)) lines.push(line);
  }
  return lines.slice(-2).join('; ') || 'ffmpeg failed without a message';
}

export interface VideoInfo {
  /** Absolute path of the file. */
  path: string;
  /** Readable frames of the first video stream (packets counted by a stream copy, no decoding). */
  frameCount: number;
  /** Frames per second (NTSC rates such as 29.97 restored to 30000/1001). */
  fps: number;
  /** Container duration in seconds (NaN when the container does not say). */
  duration: number;
  /** Displayed frame size (after ffmpeg's rotation by the file's display matrix). */
  width: number;
  height: number;
  codec: string;
  /** Problems ffmpeg reported that did not stop it (truncated or damaged data). */
  warnings: string[];
}

function snapFps(fps: number): number {
  const ntsc = (fps * 1001) / 1000;
  return !Number.isInteger(fps) && Math.abs(ntsc - Math.round(ntsc)) < 0.006
    ? (Math.round(ntsc) * 1000) / 1001
    : fps;
}

/**
 * Probes a video with one fast stream-copy pass of ffmpeg (`-c copy -f null`): frame count, fps,
 * duration, size. Not a video, no video stream, a missing or unreadable file: McoreError('E_INPUT') with
 * the file name and ffmpeg's one-line reason. A truncated file whose start is readable gives the readable
 * frames and a warning.
 */
export async function probeVideo(path: string): Promise<VideoInfo> {
  const abs = resolve(path);
  const run = await runFfmpeg([
    ...['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+info', '-i', abs],
    ...['-map', '0:v:0', '-c', 'copy', '-f', 'null', '-progress', 'pipe:1', '-'],
  ]);
  const errors = run.stderr.split(/\r?\n/).filter((l) => /\[(error|fatal|panic)\]/.test(l));
  const frameCount = Number([...run.stdout.matchAll(/^frame=(\d+)/gm)].pop()?.[1] ?? 0);
  const input = run.stderr.split(/^\[info\] Output #0/m)[0];
  const stream = /Stream #\d+:\d+.*?: Video: (\w+).*$/m.exec(input);
  if (run.code !== 0 || !stream || frameCount === 0) {
    const reason = ffmpegReason(errors.join('\n'), abs) || 'no video frames';
    throw new McoreError(
      'E_INPUT',
      `${abs}: not a readable video (ffmpeg: ${reason}); check that the file is a complete video file`,
    );
  }
  const size = /, (\d+)x(\d+)/.exec(stream[0]);
  const fpsMatch = /, ([\d.]+) fps/.exec(stream[0]) ?? /, ([\d.]+)(k?) tbr/.exec(stream[0]);
  let fps = fpsMatch ? Number(fpsMatch[1]) * (fpsMatch[2] === 'k' ? 1000 : 1) : Number.NaN;
  fps = snapFps(fps);
  const dur = /Duration: (\d+):(\d+):([\d.]+)/.exec(input);
  const duration = dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : Number.NaN;
  const after = input.slice(stream.index);
  const rot = /rotate\s*:\s*(-?\d+)/.exec(after) ?? /rotation of (-?[\d.]+) degrees/.exec(after);
  const turned = rot ? Math.abs(Math.round(Number(rot[1]))) % 180 === 90 : false;
  let width = size ? Number(size[1]) : 0;
  let height = size ? Number(size[2]) : 0;
  if (turned) [width, height] = [height, width];
  const warnings: string[] = [];
  if (!(fps > 0) || width === 0) {
    throw new McoreError('E_INPUT', `${abs}: ffmpeg reports no frame rate or size for the video stream`);
  }
  if (errors.length > 0) {
    const expected = Number.isFinite(duration) ? `, the header says about ${Math.round(duration * fps)}` : '';
    warnings.push(
      `${abs}: the file is truncated or damaged (ffmpeg: ${ffmpegReason(errors.join('\n'), abs)}); ` +
        `${frameCount} frames are readable${expected}`,
    );
  }
  return { path: abs, frameCount, fps, duration, width, height, codec: stream[1], warnings };
}

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
function resolveSampling(info: VideoInfo, o: DecodeOptions): Sampling {
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
async function decodeUnique(
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

function assemble(s: Sampling, unique: readonly number[], data: Uint8Array[]): Frame[] {
  const at = new Map<number, Frame>();
  unique.forEach((f, i) => {
    at.set(f, { width: s.width, height: s.height, data: data[i] });
  });
  return s.indices.map((i) => at.get(i)!);
}

function uniqueSorted(indices: readonly number[]): number[] {
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

/** Default clip cache folder: ~/.cache/mcore/clips. */
export function defaultClipCacheDir(): string {
  return join(homedir(), '.cache', 'mcore', 'clips');
}

const CLIP_MAGIC = 'MCLIP001';

/**
 * A disk cache of probes and decoded sample sets, keyed by (absolute path, mtime, size) and the
 * sampling (frame indices, size, fit, scaler, fastDecode). A sample set is one file: 8-byte magic,
 * uint32 LE header length, JSON header, then the unique frames' raw RGB bytes; files are written
 * atomically (temp + rename), so concurrent writers and interrupted runs never leave a half file.
 * Hits skip ffmpeg.
 *
 * Example:
 *   const cache = new VideoClipCache({ dir: 'runs/cache' });
 *   const clip = await cache.decode('a.mp4', { count: 96, width: 112, height: 200 }); // clip.hit: false
 *   (await cache.decode('a.mp4', { count: 96, width: 112, height: 200 })).hit;        // true
 */
export class VideoClipCache {
  readonly dir: string;

  constructor(options: { dir?: string } = {}) {
    this.dir = options.dir ?? defaultClipCacheDir();
  }

  private async identity(path: string): Promise<{ path: string; mtimeMs: number; size: number }> {
    const abs = resolve(path);
    try {
      const st = await stat(abs);
      return { path: abs, mtimeMs: st.mtimeMs, size: st.size };
    } catch {
      throw new McoreError('E_INPUT', `${abs}: video file not found`);
    }
  }

  private file(key: unknown, ext: string): string {
    return join(
      this.dir,
      `${createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 40)}${ext}`,
    );
  }

  /** probeVideo, cached. */
  async probe(path: string): Promise<VideoInfo> {
    const id = await this.identity(path);
    const file = this.file({ v: 1, probe: id }, '.probe.json');
    try {
      const entry = JSON.parse(await readFile(file, 'utf8')) as { id: typeof id; info: VideoInfo };
      if (JSON.stringify(entry.id) === JSON.stringify(id)) {
        return { ...entry.info, duration: entry.info.duration ?? Number.NaN }; // JSON turns NaN into null
      }
    } catch {
      // miss
    }
    const info = await probeVideo(id.path);
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(file, JSON.stringify({ id, info }));
    return info;
  }

  /** decodeFrames, cached; `hit` says whether ffmpeg was skipped. */
  async decode(path: string, options: DecodeOptions): Promise<DecodedClip & { hit: boolean }> {
    const id = await this.identity(path);
    const info = await this.probe(path);
    const s = resolveSampling(info, options);
    const unique = uniqueSorted(s.indices);
    const header = {
      v: 3,
      id,
      decoder: decoderId(),
      unique,
      width: s.width,
      height: s.height,
      fit: s.fit,
      scaler: SCALER,
      fastDecode: s.fastDecode,
    };
    const file = this.file(header, '.clip');
    const frameBytes = s.width * s.height * 3;
    const cached = await readClipFile(file, JSON.stringify(header), unique.length * frameBytes);
    if (cached) {
      const data = unique.map((_, i) => cached.raw.subarray(i * frameBytes, (i + 1) * frameBytes));
      const warnings = [...info.warnings, ...s.warnings, ...cached.warnings];
      return { frames: assemble(s, unique, data), indices: s.indices, warnings, info, hit: true };
    }
    const decoded = await decodeUnique(info, unique, s);
    const json = Buffer.from(JSON.stringify({ ...header, warnings: decoded.warnings }), 'utf8');
    const out = Buffer.alloc(12 + json.length + unique.length * frameBytes);
    out.write(CLIP_MAGIC, 0, 'latin1');
    out.writeUInt32LE(json.length, 8);
    json.copy(out, 12);
    decoded.frames.forEach((f, i) => {
      out.set(f, 12 + json.length + i * frameBytes);
    });
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(file, out);
    const warnings = [...info.warnings, ...s.warnings, ...decoded.warnings];
    return { frames: assemble(s, unique, decoded.frames), indices: s.indices, warnings, info, hit: false };
  }
}

/** Reads a cached sample set; undefined when absent, for another header, or damaged. */
async function readClipFile(
  file: string,
  header: string,
  rawBytes: number,
): Promise<{ raw: Uint8Array; warnings: string[] } | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return undefined;
  }
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== CLIP_MAGIC) return undefined;
  const len = buf.readUInt32LE(8);
  if (buf.length !== 12 + len + rawBytes) return undefined;
  try {
    const { warnings, ...rest } = JSON.parse(buf.toString('utf8', 12, 12 + len)) as { warnings: string[] };
    if (JSON.stringify(rest) !== header) return undefined;
    return { raw: new Uint8Array(buf.buffer, buf.byteOffset + 12 + len, rawBytes), warnings };
  } catch {
    return undefined;
  }
}

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
