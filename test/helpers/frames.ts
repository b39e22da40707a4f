/** Frames for tests: a uniform grey frame and the mean value of a frame (names a grey level). */
import type { Frame } from '../../src/data/types.ts';

export const grey = (w: number, h: number, v: number): Frame => ({
  width: w,
  height: h,
  data: new Uint8Array(w * h * 3).fill(v),
});

export const mean = (f: Frame): number => f.data.reduce((a, b) => a + b, 0) / f.data.length;
