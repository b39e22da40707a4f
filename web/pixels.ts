/**
 * Pixels for the scoring page, as Node makes them (no DOM here; unit-tested in Node): frames brought to
 * the bundle's resize size with an area-averaging resampler, and decoded YUV video frames converted to
 * RGB the way ffmpeg's swscale does it in `mcore score` (src/data/video.ts: one pass that scales each
 * plane with the area scaler, luma to the output size and chroma to half its width, then converts with
 * BT.601, or BT.709 when the stream says so, limited range unless tagged full). Measured against
 * ffmpeg on H.264 frames with sharp coloured edges: about 1.5 of 255 mean difference per channel
 * (chroma siting and swscale's fixed-point arithmetic are not reproduced).
 *
 *   frame w x h (any plane) --areaWeights per axis--> W x H floats --(YUV -> RGB)--> RGB bytes
 *
 * A frame already at the target size is copied, never resampled (lossless PNG frame folders at the
 * bundle's size score exactly as in Node). Downscaling averages the covered source pixels (box
 * coverage); upscaling is bilinear (as swscale's area scaler does).
 *
 * @example
 * const rgb = resizeRgb(frame, { width: 112, height: 112, fit: 'squeeze' });   // Frame 112 x 112
 */
import type { Frame } from '../src/score/core.ts';

export type FitMode = 'squeeze' | 'cover';

export interface Target {
  width: number;
  height: number;
  fit: FitMode;
}

/** A source rectangle (source pixel units) mapped onto the whole output. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Per output pixel of one axis: the first source index and the weights from there on (sum 1). */
export interface AxisWeights {
  start: Int32Array;
  weights: Float32Array[];
}

/**
 * Weights of one axis: `n` source pixels, the span [x0, x0 + len) of them onto `m` output pixels.
 * Same size and whole span: the identity.
 */
export function areaWeights(n: number, m: number, x0 = 0, len = n): AxisWeights {
  const start = new Int32Array(m);
  const weights: Float32Array[] = [];
  const scale = len / m;
  for (let j = 0; j < m; j++) {
    if (scale === 1 && x0 === Math.trunc(x0)) {
      start[j] = Math.min(n - 1, x0 + j);
      weights.push(Float32Array.of(1));
    } else if (scale > 1) {
      const a = x0 + j * scale;
      const b = a + scale;
      const first = Math.max(0, Math.floor(a));
      const last = Math.min(n - 1, Math.ceil(b) - 1);
      const w = new Float32Array(last - first + 1);
      let sum = 0;
      for (let i = first; i <= last; i++) {
        const cover = Math.min(b, i + 1) - Math.max(a, i);
        w[i - first] = Math.max(0, cover);
        sum += w[i - first];
      }
      for (let k = 0; k < w.length; k++) w[k] /= sum;
      start[j] = first;
      weights.push(w);
    } else {
      const c = Math.min(Math.max(x0 + (j + 0.5) * scale - 0.5, 0), n - 1);
      const i = Math.min(Math.floor(c), n - 1);
      const f = c - i;
      start[j] = i;
      weights.push(i + 1 < n && f > 0 ? Float32Array.of(1 - f, f) : Float32Array.of(1));
    }
  }
  return { start, weights };
}

/**
 * Resamples channel `c` of an interleaved plane (`channels` values a pixel, `stride` values a row) with
 * the axis weights; returns W x H floats.
 */
export function resamplePlane(
  src: ArrayLike<number>,
  plane: { stride: number; channels: number; channel: number; offset?: number },
  xw: AxisWeights,
  yw: AxisWeights,
): Float32Array {
  const W = xw.start.length;
  const H = yw.start.length;
  const { stride, channels, channel } = plane;
  const offset = plane.offset ?? 0;
  const out = new Float32Array(W * H);
  const row = new Float32Array(W);
  for (let y = 0; y < H; y++) {
    const wy = yw.weights[y];
    const y0 = yw.start[y];
    row.fill(0);
    for (let k = 0; k < wy.length; k++) {
      const base = offset + (y0 + k) * stride + channel;
      const a = wy[k];
      for (let x = 0; x < W; x++) {
        const wx = xw.weights[x];
        let s = 0;
        let p = base + xw.start[x] * channels;
        for (let q = 0; q < wx.length; q++, p += channels) s += wx[q] * src[p];
        row[x] += a * s;
      }
    }
    out.set(row, y * W);
  }
  return out;
}

/** The source rectangle that `fit` maps onto a W x H output: all of it (squeeze) or the centre (cover). */
export function fitRect(w: number, h: number, t: Target): Rect {
  if (t.fit === 'squeeze') return { x: 0, y: 0, w, h };
  const f = Math.max(t.width / w, t.height / h);
  const rw = Math.min(w, t.width / f);
  const rh = Math.min(h, t.height / f);
  return { x: (w - rw) / 2, y: (h - rh) / 2, w: rw, h: rh };
}

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * An interleaved RGB (3) or RGBA (4) image -> an RGB Frame at the target size. An image already at the
 * target size is copied byte for byte (no resampling).
 */
export function resizeRgb(
  img: { width: number; height: number; data: ArrayLike<number>; channels: 3 | 4 },
  t: Target,
): Frame {
  const { width: w, height: h, channels } = img;
  const out = new Uint8Array(t.width * t.height * 3);
  if (w === t.width && h === t.height) {
    for (let p = 0, q = 0; p < w * h; p++, q += channels) {
      out[p * 3] = img.data[q];
      out[p * 3 + 1] = img.data[q + 1];
      out[p * 3 + 2] = img.data[q + 2];
    }
    return { width: t.width, height: t.height, data: out };
  }
  const r = fitRect(w, h, t);
  const xw = areaWeights(w, t.width, r.x, r.w);
  const yw = areaWeights(h, t.height, r.y, r.h);
  for (let c = 0; c < 3; c++) {
    const plane = resamplePlane(img.data, { stride: w * channels, channels, channel: c }, xw, yw);
    for (let p = 0; p < plane.length; p++) out[p * 3 + c] = clampByte(plane[p]);
  }
  return { width: t.width, height: t.height, data: out };
}

/** One plane of a YUV frame: `data` from `offset`, `stride` bytes a row, `channels` interleaved values. */
export interface YuvPlane {
  data: Uint8Array;
  offset: number;
  stride: number;
  width: number;
  height: number;
  channels: number;
  channel: number;
}

/** YUV -> RGB coefficients of a matrix (Kr, Kb) and range. */
export function yuvCoefficients(
  matrix: 'bt601' | 'bt709',
  fullRange: boolean,
): { ys: number; yo: number; rv: number; gu: number; gv: number; bu: number } {
  const [kr, kb] = matrix === 'bt709' ? [0.2126, 0.0722] : [0.299, 0.114];
  const kg = 1 - kr - kb;
  const ys = fullRange ? 1 : 255 / 219;
  const cs = fullRange ? 1 : 255 / 224;
  return {
    ys,
    yo: fullRange ? 0 : 16,
    rv: cs * 2 * (1 - kr),
    gu: (-cs * 2 * kb * (1 - kb)) / kg,
    gv: (-cs * 2 * kr * (1 - kr)) / kg,
    bu: cs * 2 * (1 - kb),
  };
}

/**
 * A YUV frame (`w` x `h` luma; chroma planes at their own, possibly subsampled, size) -> an RGB Frame
 * at the target size: luma resampled to the output size, chroma to half its width (as swscale does for
 * RGB output), over the same source rectangle, then converted per pixel.
 */
export function yuvToRgb(
  planes: { y: YuvPlane; u: YuvPlane; v: YuvPlane },
  w: number,
  h: number,
  t: Target,
  color: { matrix: 'bt601' | 'bt709'; fullRange: boolean },
): Frame {
  const r = fitRect(w, h, t);
  const sample = (p: YuvPlane, outW: number): Float32Array => {
    const sx = p.width / w;
    const sy = p.height / h;
    const xw = areaWeights(p.width, outW, r.x * sx, r.w * sx);
    const yw = areaWeights(p.height, t.height, r.y * sy, r.h * sy);
    return resamplePlane(
      p.data,
      { stride: p.stride, channels: p.channels, channel: p.channel, offset: p.offset },
      xw,
      yw,
    );
  };
  // swscale (without SWS_FULL_CHR_H_INT, as `mcore score` runs it) brings chroma to half the output
  // width for packed RGB and uses each chroma sample for two output pixels.
  const cw = Math.ceil(t.width / 2);
  const Y = sample(planes.y, t.width);
  const U = sample(planes.u, cw);
  const V = sample(planes.v, cw);
  const k = yuvCoefficients(color.matrix, color.fullRange);
  const out = new Uint8Array(t.width * t.height * 3);
  for (let row = 0; row < t.height; row++) {
    for (let x = 0; x < t.width; x++) {
      const p = row * t.width + x;
      const c = row * cw + (x >> 1);
      const y = k.ys * (Y[p] - k.yo);
      const u = U[c] - 128;
      const v = V[c] - 128;
      out[p * 3] = clampByte(y + k.rv * v);
      out[p * 3 + 1] = clampByte(y + k.gu * u + k.gv * v);
      out[p * 3 + 2] = clampByte(y + k.bu * u);
    }
  }
  return { width: t.width, height: t.height, data: out };
}
