import { describe, expect, it } from 'vitest';
import { FrameCache, sampleClips } from '../../src/data/clips.ts';
import { createSynthDive } from '../../src/data/synthdive/index.ts';
import type { StagedDataset } from '../../src/data/types.ts';

describe('FrameCache', () => {
  const ds = createSynthDive({ seed: 2, clips: 18, width: 16, height: 16 });
  const clips = sampleClips(ds, 4);
  const byKey = new Map(clips.map((c) => [c.key, c]));
  const perClip = 4 * 16 * 16 * 3; // bytes of one clip's sampled frames
  /** The dataset, counting frame loads per clip. */
  const counting = () => {
    const loads = new Map<string, number>();
    const d: StagedDataset = {
      ...ds,
      loadFrame: (key, i) => {
        loads.set(key, (loads.get(key) ?? 0) + 1);
        return ds.loadFrame(key, i);
      },
    };
    return { d, loads };
  };
  const [a, b, c] = clips.map((x) => x.key);

  it('decodes each clip once when the budget holds them all', async () => {
    const { d, loads } = counting();
    const cache = new FrameCache(d, byKey);
    const first = await cache.frames(a);
    expect(await cache.frames(a)).toBe(first);
    expect(loads.get(a)).toBe(4);
    expect(cache.heldBytes).toBe(perClip);
  });

  it('keeps at most maxBytes, evicting the least recently used clip, and decodes it again later', async () => {
    const { d, loads } = counting();
    const cache = new FrameCache(d, byKey, 2 * perClip);
    const fa = await cache.frames(a);
    await cache.frames(b);
    await cache.frames(a); // a is now the most recent
    await cache.frames(c); // evicts b
    expect(cache.heldBytes).toBe(2 * perClip);
    await cache.frames(a);
    expect(loads.get(a)).toBe(4);
    await cache.frames(b); // decoded again (evicts c)
    expect(loads.get(b)).toBe(8);
    expect(cache.heldBytes).toBe(2 * perClip);
    // A clip larger than the whole budget is returned, not kept.
    const tiny = new FrameCache(d, byKey, perClip - 1);
    const again = await tiny.frames(a);
    expect(again.map((f) => Array.from(f.data))).toEqual(fa.map((f) => Array.from(f.data)));
    expect(tiny.heldBytes).toBe(0);
  });
});
