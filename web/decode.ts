/**
 * The page's query input: a video file or a folder of frames -> the T sampled frames at the bundle's
 * resize size, sampled as Node samples them (sampleIndices over the clip's frames, 0-based in
 * presentation order).
 *
 * Videos: mediabunny demuxes MP4/MOV and WebM/MKV and decodes with WebCodecs, frame by frame in
 * presentation order from the first frame, so frame k is exactly ffmpeg's frame k in `mcore score`
 * (`<video>` seeking lands on timestamps, off by a frame at times, and scales with the browser's own
 * filter). The frame count is the packet count (Node counts packets too). Each sampled frame's YUV
 * planes are resampled and converted as ffmpeg does (./pixels.ts); frames in other pixel formats or
 * rotated go through a canvas.
 *
 * Folders: the image files directly in the folder in natural name order (./frames.ts); only the
 * sampled files are decoded, by createImageBitmap without colour conversion or premultiplication, so
 * a PNG at the bundle's size reaches the model with the bytes sharp reads in Node.
 */
import { ALL_FORMATS, BlobSource, Input, type VideoSample, VideoSampleSink } from 'mediabunny';
import { type QueryInput, sampleIndices } from '../src/score/core.ts';
import { frameFiles, snapFps } from './frames.ts';
import { resizeRgb, type Target, type YuvPlane, yuvToRgb } from './pixels.ts';

/** A problem with the user's input: shown on the page as it is. */
export class InputProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputProblem';
  }
}

export type DecodeProgress = (done: number, total: number) => void;

export interface PickedFile {
  file: File;
  /** Path relative to the pick ('clip/00001.png'), or the file name. */
  path: string;
}

/** T sampled frames of a folder's images. */
export async function readFrameFolder(
  picked: readonly PickedFile[],
  count: number,
  t: Target,
  onProgress?: DecodeProgress,
): Promise<QueryInput> {
  const files = frameFiles(picked.map((p) => ({ ...p, name: p.file.name })));
  const folder = picked[0]?.path.split('/')[0] ?? 'folder';
  if (files.length === 0) {
    throw new InputProblem(
      `${folder}: no .jpg/.jpeg/.png frames in this folder; pick the folder holding the clip's frames`,
    );
  }
  const n = files.length;
  const indices = sampleIndices(0, n - 1, count);
  const warnings: string[] = [];
  if (n < count) warnings.push(`${folder}: only ${n} frames for ${count} samples; frames are repeated`);
  const unique = [...new Set(indices)];
  const byIndex = new Map<number, QueryInput['frames'][number]>();
  let done = 0;
  for (const i of unique) {
    byIndex.set(i, await readImage(files[i], t));
    onProgress?.(++done, unique.length);
  }
  return {
    kind: 'frames',
    path: folder,
    frames: indices.map((i) => byIndex.get(i)!),
    indices,
    sourceFrames: n,
    warnings,
  };
}

async function readImage(p: PickedFile, t: Target) {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(p.file, {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'none',
    });
  } catch {
    throw new InputProblem(`${p.path}: cannot read the image; frames must be readable JPEG or PNG files`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const img = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' });
  return resizeRgb({ width, height, data: img.data, channels: 4 }, t);
}

/** Plane layouts of the formats converted directly: [width divisor, height divisor, channels]. */
const YUV_LAYOUTS: Record<string, { chroma: [number, number]; nv: boolean }> = {
  I420: { chroma: [2, 2], nv: false },
  I420A: { chroma: [2, 2], nv: false },
  I422: { chroma: [2, 1], nv: false },
  I444: { chroma: [1, 1], nv: false },
  NV12: { chroma: [2, 2], nv: true },
};

async function sampleToFrame(sample: VideoSample, t: Target) {
  const format = sample.format ?? '';
  const w = sample.visibleRect.width;
  const h = sample.visibleRect.height;
  const layout = YUV_LAYOUTS[format];
  if (sample.rotation === 0 && !sample.flip && layout) {
    const data = new Uint8Array(sample.allocationSize());
    const planes = await sample.copyTo(data);
    const cw = Math.ceil(w / layout.chroma[0]);
    const ch = Math.ceil(h / layout.chroma[1]);
    const plane = (i: number, pw: number, ph: number, channels: number, channel: number): YuvPlane => ({
      data,
      offset: planes[i].offset,
      stride: planes[i].stride,
      width: pw,
      height: ph,
      channels,
      channel,
    });
    const y = plane(0, w, h, 1, 0);
    const u = layout.nv ? plane(1, cw, ch, 2, 0) : plane(1, cw, ch, 1, 0);
    const v = layout.nv ? plane(1, cw, ch, 2, 1) : plane(2, cw, ch, 1, 0);
    const cs = sample.colorSpace;
    return yuvToRgb({ y, u, v }, w, h, t, {
      matrix: cs.matrix === 'bt709' ? 'bt709' : 'bt601',
      fullRange: cs.fullRange === true,
    });
  }
  // Other pixel formats, rotated or flipped frames: the browser converts to RGB on a canvas.
  const dw = sample.displayWidth;
  const dh = sample.displayHeight;
  const canvas = new OffscreenCanvas(dw, dh);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  sample.draw(ctx, 0, 0);
  const img = ctx.getImageData(0, 0, dw, dh);
  return resizeRgb({ width: dw, height: dh, data: img.data, channels: 4 }, t);
}

/** T sampled frames of a video file (MP4/MOV/WebM/MKV, any codec the browser's WebCodecs decodes). */
export async function readVideo(
  file: File,
  count: number,
  t: Target,
  onProgress?: DecodeProgress,
): Promise<QueryInput> {
  const name = file.name;
  if (typeof VideoDecoder === 'undefined') {
    throw new InputProblem(
      'this browser has no WebCodecs video decoder (it needs a recent Chromium, Edge, Firefox or Safari, ' +
        'and an https or localhost address); score a folder of frames instead',
    );
  }
  const input = new Input({ source: new BlobSource(file), formats: ALL_FORMATS });
  try {
    let track: Awaited<ReturnType<Input['getPrimaryVideoTrack']>>;
    try {
      track = await input.getPrimaryVideoTrack();
    } catch (e) {
      throw new InputProblem(
        `${name}: not a readable video (${(e as Error).message}); give an MP4 or WebM video file`,
      );
    }
    if (track === null) throw new InputProblem(`${name}: the file has no video track; give a video file`);
    const codec = (await track.getCodec()) ?? 'unknown';
    if (!(await track.canDecode())) {
      throw new InputProblem(
        `${name}: this browser cannot decode its ${codec} video; convert it to H.264 MP4 or VP9 WebM`,
      );
    }
    let stats: { packetCount: number; averagePacketRate: number };
    try {
      stats = await track.computePacketStats();
    } catch (e) {
      throw new InputProblem(
        `${name}: the file is truncated or damaged (${(e as Error).message}); check that it is a complete video file`,
      );
    }
    const n = stats.packetCount;
    if (n === 0) throw new InputProblem(`${name}: the video has no frames`);
    const indices = sampleIndices(0, n - 1, count);
    const warnings: string[] = [];
    if (n < count)
      warnings.push(`${name}: only ${n} frames in 0-${n - 1} for ${count} samples; frames are repeated`);
    const unique = [...new Set(indices)].sort((a, b) => a - b);
    const wanted = new Set(unique);
    const last = unique[unique.length - 1];
    const byIndex = new Map<number, QueryInput['frames'][number]>();
    const sink = new VideoSampleSink(track);
    let k = 0;
    try {
      for await (const sample of sink.samples()) {
        try {
          if (wanted.has(k)) {
            byIndex.set(k, await sampleToFrame(sample, t));
            onProgress?.(byIndex.size, unique.length);
          }
        } finally {
          sample.close();
        }
        if (++k > last) break;
      }
    } catch (e) {
      throw new InputProblem(
        `${name}: the file is truncated or damaged: frame ${k} of ${n} could not be decoded ` +
          `(${(e as Error).message}); check that it is a complete video file`,
      );
    }
    if (byIndex.size < unique.length) {
      throw new InputProblem(
        `${name}: the file is truncated or damaged: ${k} of the ${n} frames it lists could be decoded; ` +
          'check that it is a complete video file',
      );
    }
    const rate = stats.averagePacketRate;
    const fps = snapFps(Math.abs(rate - Math.round(rate)) < 0.01 ? Math.round(rate) : rate);
    return {
      kind: 'video',
      path: name,
      frames: indices.map((i) => byIndex.get(i)!),
      indices,
      sourceFrames: n,
      ...(fps > 0 ? { fps } : {}),
      warnings,
    };
  } finally {
    input.dispose();
  }
}
