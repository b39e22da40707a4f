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

  it('passes the first rejection through and starts no new item after it', async () => {
    const started: number[] = [];
    await expect(
      mapLimit([1, 2, 3, 4, 5, 6], 2, async (x) => {
        started.push(x);
        await new Promise((r) => setTimeout(r, x === 2 ? 1 : 20));
        if (x === 2) throw new Error('bad item 2');
        return x;
      }),
    ).rejects.toThrow('bad item 2');
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toEqual([1, 2]);
  });

  it('refuses a limit that is not an integer >= 1', async () => {
    for (const bad of [0, 1.5, Number.NaN]) {
      await expect(mapLimit([1], bad, async (x) => x)).rejects.toMatchObject({ code: 'E_CONFIG' });
    }
  });
});
