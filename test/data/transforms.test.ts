import { describe, expect, it } from 'vitest';
import { IMAGENET_MEAN, IMAGENET_STD, referenceTransform, transformClip } from '../../src/data/transforms.ts';
import type { Frame } from '../../src/data/types.ts';
import { createRng } from '../../src/rng.ts';

/** A frame whose red channel encodes x and green encodes y. */
function gradient(width: number, height: number): Frame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      data[(y * width + x) * 3] = x;
      data[(y * width + x) * 3 + 1] = y;
    }
  return { width, height, data };
}

const denorm = (v: number, c: number) => Math.round((v * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255) + 0;

describe('transformClip', () => {
  it('centre-crops at test time and normalises with ImageNet statistics', () => {
    const out = transformClip([gradient(8, 12)], { crop: 4, train: false, flipProb: 0.5 }, createRng(0));
    expect(out.length).toBe(4 * 4 * 3);
    // centre crop of 8x12: x offset 2, y offset 4
    expect(denorm(out[0], 0)).toBe(2);
    expect(denorm(out[1], 1)).toBe(4);
    expect(denorm(out[(3 * 4 + 3) * 3], 0)).toBe(5);
    expect(out[2]).toBeCloseTo((0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], 5);
  });

  it('squeezes to the reference geometry (nearest) and uses one crop and flip for the whole clip', () => {
    const t = referenceTransform(8, true);
    expect(t.resize).toEqual({ width: 8, height: 14 });
    const frames = [gradient(16, 16), gradient(16, 16)];
    const out = transformClip(frames, t, createRng(3));
    const per = 8 * 8 * 3;
    for (let i = 0; i < per; i++) expect(out[i]).toBe(out[per + i]);
    // x of the crop covers the whole resized width (width == crop): red is 0,2,..,14 or reversed
    const reds = Array.from({ length: 8 }, (_, x) => denorm(out[x * 3], 0));
    const sorted = [...reds].sort((a, b) => a - b);
    expect(sorted).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
  });

  it('flips some clips and not others, deterministically from the seed', () => {
    const flips = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((s) => {
      const out = transformClip([gradient(4, 4)], { crop: 4, train: true, flipProb: 0.5 }, createRng(s));
      return denorm(out[0], 0) === 3;
    });
    expect(flips.some((f) => f)).toBe(true);
    expect(flips.some((f) => !f)).toBe(true);
    const again = transformClip([gradient(4, 4)], { crop: 4, train: true, flipProb: 0.5 }, createRng(4));
    expect(denorm(again[0], 0) === 3).toBe(flips[4]);
  });
});
