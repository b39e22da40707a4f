import { describe, expect, it } from 'vitest';
import { mapLimit } from '../src/concurrency.ts';

describe('mapLimit', () => {
  it('keeps item order, never runs more than `limit` at once, and handles empty input', async () => {
    let active = 0;
    let peak = 0;
    const delays = [30, 5, 20, 1, 10, 15, 2];
    const out = await mapLimit(delays, 3, async (d) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, d));
      active--;
      return d * 2;
    });
    expect(out).toEqual(delays.map((d) => d * 2));
    expect(peak).toBe(3);
    expect(await mapLimit([], 4, async (x) => x)).toEqual([]);
  });

  it('passes a rejection through', async () => {
    await expect(
      mapLimit([1, 2, 3], 2, async (x) => {
        if (x === 2) throw new Error('bad item 2');
        return x;
      }),
    ).rejects.toThrow('bad item 2');
  });
});
