/** Decoded sample sets cached on disk (VideoClipCache), keyed by file identity, sampling, scaler and decoder. */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { McoreError } from '../../errors.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import {
  assemble,
  type DecodedClip,
  type DecodeOptions,
  decodeUnique,
  resolveSampling,
  SCALER,
  uniqueSorted,
} from './decode.ts';
import { decoderId } from './ffmpeg.ts';
import { probeVideo, type VideoInfo } from './probe.ts';

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
