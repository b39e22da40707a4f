/**
 * The query of `score`: a video file or a folder of frames, sampled to T frames uniformly over the
 * whole clip (numpy.linspace truncated, as training samples clips) and brought to the bundle's frame
 * size. Only the sampled frames are ever held: ffmpeg drops the others before they reach us, and of a
 * folder only the T sampled files are read. A clip shorter than T frames is sampled with repetition
 * and says so in `warnings`. A truncated or damaged video is refused unless `allowDamaged`.
 *
 * @example
 * const q = await readQueryInput('dive.mp4', { count: 96, width: 112, height: 112, fit: 'squeeze' });
 * q.indices;   // [0, 1, 3, ...]: the source frame of each sampled frame
 * q.fps;       // 25 (videos only)
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from '../concurrency.ts';
import { sampleIndices } from '../data/frame-sampling.ts';
import { type FitMode, listFrameFolder, readImage } from '../data/images.ts';
import { decodeFrames, probeVideo } from '../data/video.ts';
import { McoreError } from '../errors.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import type { BundleManifest } from './bundle-format.ts';
import type { QueryInput } from './scoring.ts';

export type { QueryInput };

export interface QueryInputOptions {
  /** Frames to sample, T. */
  count: number;
  width: number;
  height: number;
  fit: FitMode;
  /** Score a truncated or damaged video from its readable frames (with warnings) instead of refusing it. */
  allowDamaged?: boolean;
  /**
   * Videos only: skip the decoder's deblocking filter (about 20% faster decoding, slightly different
   * pixels; see DecodeOptions.fastDecode). Default false.
   */
  fastDecode?: boolean;
}

/** How a bundle reads its queries: T frames at its transform's resize size (plus the caller's damage and decode options). */
export function queryOptions(
  m: Pick<BundleManifest, 'frames' | 'transform'>,
  o: { allowDamaged?: boolean; fastDecode?: boolean } = {},
): QueryInputOptions {
  return {
    count: m.frames,
    width: m.transform.resize.width,
    height: m.transform.resize.height,
    fit: m.transform.resize.fit,
    allowDamaged: o.allowDamaged,
    fastDecode: o.fastDecode,
  };
}

const IMAGE_FILE = /\.(jpe?g|png|bmp|gif|webp|tiff?)$/i;

async function readFolder(dir: string, o: QueryInputOptions): Promise<QueryInput> {
  const files = await listFrameFolder(dir);
  const n = files.length;
  const indices = sampleIndices(0, n - 1, o.count);
  const warnings: string[] = [];
  if (n < o.count) {
    warnings.push(`${dir}: only ${n} frames for ${o.count} samples; frames are repeated`);
  }
  const unique = [...new Set(indices)];
  const size = { width: o.width, height: o.height, fit: o.fit };
  // strict: a frame the decoder only warns about (garbled data) is damage, refused or, with
  // allowDamaged, decoded as far as it goes and named in the warnings
  const damaged: string[] = [];
  const read = await mapLimit(unique, 4, async (i) => {
    try {
      return await readImage(files[i], size, 'warning');
    } catch (err) {
      if (!(err instanceof McoreError)) throw err;
      if (!o.allowDamaged) {
        throw new McoreError(
          err.code,
          `${err.message}; to score the readable frames, pass --allow-damaged (option allowDamaged)`,
        );
      }
      const frame = await readImage(files[i], size, 'none'); // still refuses a file with nothing to decode
      damaged.push(`${files[i]}: damaged frame, decoded as far as it goes (${err.message})`);
      return frame;
    }
  });
  warnings.push(...damaged.sort());
  const byIndex = new Map(unique.map((i, k) => [i, read[k]]));
  return {
    kind: 'frames',
    path: dir,
    frames: indices.map((i) => byIndex.get(i)!),
    indices,
    sourceFrames: n,
    warnings,
  };
}

/**
 * Reads the query: a folder -> its JPEG/PNG frames in name order; a file -> a video through ffmpeg.
 * Missing input, an image file, not a video, a corrupt, truncated or unreadable video (unless
 * `allowDamaged`): McoreError('E_INPUT' or 'E_DATA_LAYOUT') in one line naming the path.
 */
export async function readQueryInput(input: string, o: QueryInputOptions): Promise<QueryInput> {
  const abs = path.resolve(input);
  let isDir: boolean;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch {
    throw new McoreError('E_INPUT', `${abs}: no such video file or frame folder`);
  }
  await refuseSpecialFile(abs, 'E_INPUT');
  if (isDir) return readFolder(abs, o);
  if (IMAGE_FILE.test(abs)) {
    throw new McoreError(
      'E_INPUT',
      `${abs}: is a single image; give a video file or the folder holding the clip's frames`,
    );
  }
  const info = await probeVideo(abs);
  const damaged = (reason: string): McoreError =>
    new McoreError(
      'E_INPUT',
      `${reason}; to score the readable part, pass --allow-damaged (option allowDamaged)`,
    );
  if (info.warnings.length > 0 && !o.allowDamaged) throw damaged(info.warnings[0]);
  const clip = await decodeFrames(
    abs,
    { count: o.count, width: o.width, height: o.height, fit: o.fit, fastDecode: o.fastDecode },
    info,
  );
  // Beyond the probe's warnings and the short-clip note, a warning means frames failed to decode.
  const expected = info.warnings.length + (info.frameCount < o.count ? 1 : 0);
  if (clip.warnings.length > expected && !o.allowDamaged)
    throw damaged(clip.warnings[clip.warnings.length - 1]);
  return {
    kind: 'video',
    path: abs,
    frames: clip.frames,
    indices: clip.indices,
    sourceFrames: clip.info.frameCount,
    fps: clip.info.fps,
    warnings: clip.warnings,
  };
}
