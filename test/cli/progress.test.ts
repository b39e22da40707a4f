import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBar } from '../../src/cli/progress.ts';

/** A non-terminal stream that keeps what is written. */
function sink(): NodeJS.WriteStream & { lines: () => string[] } {
  let text = '';
  return {
    isTTY: false,
    write(s: string) {
      text += s;
      return true;
    },
    lines: () => text.split('\n').filter((l) => l.length > 0),
  } as unknown as NodeJS.WriteStream & { lines: () => string[] };
}

let clock = 0;
afterEach(() => {
  vi.restoreAllMocks();
});
function fakeClock(): void {
  clock = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => clock * 1000);
}

describe('createBar (plain lines)', () => {
  it('extrapolates the rate since the first update: a resumed job with 2000 of 3000 done already', () => {
    fakeClock();
    const out = sink();
    const bar = createBar('features', 3000, out, 100);
    bar.update(2000); // reused from the cache at once
    clock = 10;
    bar.update(2100); // 100 clips in 10 s: 900 left take 90 s
    clock = 20;
    bar.update(2200);
    // the first line has no rate yet; the old rule (elapsed / done) said 0:00 and 0:00 here
    expect(out.lines()).toEqual([
      'features 2000/3000 0:00 eta --:--',
      'features 2100/3000 0:10 eta 1:30',
      'features 2200/3000 0:20 eta 1:20',
    ]);
  });

  it('counts time from the first update even when that update is not printed', () => {
    fakeClock();
    const out = sink();
    const bar = createBar('exemplars', 100, out, 10);
    clock = 5; // created early, first event 5 s later (a batch done)
    bar.update(4);
    clock = 11;
    bar.update(10); // 6 clips in 6 s, 90 left
    bar.done();
    expect(out.lines()).toEqual(['exemplars 10/100 0:11 eta 1:30', 'exemplars 100/100 0:11 eta 0:00']);
  });
});
