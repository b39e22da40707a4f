/**
 * Frame transforms (spec section 4): resize (nearest), one crop for the whole clip, optional
 * horizontal flip, ImageNet normalisation, packed as a clip tensor's data [T, S, S, 3] (NHWC).
 * The reference squeezes FineDiving frames to 112 wide x 200 high, takes one random 112x112 crop
 * (a vertical offset) in training and the centre crop at test.
 */
import { McoreError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import type { Frame } from './types.ts';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface ClipTransform {
  /** Resize every frame to this width x height first (nearest); omitted: keep the size. */
  resize?: { width: number; height: number };
  /** Square crop side. */
  crop: number;
  /** Random crop offset and flip (training) or centre crop (test). */
  train: boolean;
  /** Flip probability in training (reference 0.5). */
  flipProb: number;
}

/** Reference geometry at `size` (112 in the paper): squeeze to size x round(size*200/112), crop size. */
export function referenceTransform(size: number, train: boolean): ClipTransform {
  return {
    resize: { width: size, height: Math.round((size * 200) / 112) },
    crop: size,
    train,
    flipProb: 0.5,
  };
}

/** Nearest-neighbour resize (the reference squeezes frames with nearest sampling). */
export function resizeNearest(f: Frame, width: number, height: number): Frame {
  if (f.width === width && f.height === height) return f;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(f.height - 1, Math.floor((y * f.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(f.width - 1, Math.floor((x * f.width) / width));
      const si = (sy * f.width + sx) * 3;
      const di = (y * width + x) * 3;
      out[di] = f.data[si];
      out[di + 1] = f.data[si + 1];
      out[di + 2] = f.data[si + 2];
    }
  }
  return { width, height, data: out };
}

/**
 * Applies one transform to all frames of a clip (same crop and flip for every frame).
 * frames: T frames of equal size -> data of a [T, crop, crop, 3] float32 tensor, normalised.
 */
export function transformClip(frames: readonly Frame[], t: ClipTransform, rng: Rng): Float32Array {
  const S = t.crop;
  const first = frames[0];
  const w = t.resize?.width ?? first.width;
  const h = t.resize?.height ?? first.height;
  if (w < S || h < S) {
    throw new McoreError(
      'E_CONFIG',
      `a ${S}x${S} crop does not fit frames of ${w}x${h}; lower model.imageSize (--set model.imageSize=N) or use larger frames`,
    );
  }
  const ox = t.train ? rng.int(w - S + 1) : Math.floor((w - S) / 2);
  const oy = t.train ? rng.int(h - S + 1) : Math.floor((h - S) / 2);
  const flip = t.train && rng.next() < t.flipProb;
  const out = new Float32Array(frames.length * S * S * 3);
  let o = 0;
  for (const frame of frames) {
    const f = resizeNearest(frame, w, h);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const sx = ox + (flip ? S - 1 - x : x);
        const si = ((oy + y) * w + sx) * 3;
        for (let c = 0; c < 3; c++) out[o++] = (f.data[si + c] / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
      }
    }
  }
  return out;
}
