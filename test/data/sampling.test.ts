import { describe, expect, it } from 'vitest';
import { ExemplarIndex } from '../../src/data/sampling.ts';
import { McoreError } from '../../src/errors.ts';
import { createRng } from '../../src/rng.ts';
import { epochBatches } from '../../src/train/trainer.ts';

const train = [
  { key: 'a1', actionType: 'A' },
  { key: 'a2', actionType: 'A' },
  { key: 'a3', actionType: 'A' },
  { key: 'b1', actionType: 'B' },
  { key: 'c1', actionType: 'C' },
];

describe('ExemplarIndex', () => {
  it('draws a training exemplar of the same type, never the query itself unless it is alone', () => {
    const index = new ExemplarIndex(train);
    const rng = createRng(1);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const e = index.trainExemplar(train[0], true, rng);
      expect(['a2', 'a3']).toContain(e);
      seen.add(e);
    }
    expect(seen.size).toBe(2);
    expect(index.trainExemplar(train[3], true, rng)).toBe('b1');
  });

  it('without dive number draws from the whole training split', () => {
    const index = new ExemplarIndex(train);
    const rng = createRng(2);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) seen.add(index.trainExemplar(train[3], false, rng));
    expect([...seen].sort()).toEqual(['a1', 'a2', 'a3', 'c1']);
  });

  it('gives M distinct training exemplars at test, fewer when the class is smaller, never a test clip', () => {
    const index = new ExemplarIndex(train);
    const rng = createRng(3);
    const query = { key: 't1', actionType: 'A' };
    const ex = index.testExemplars(query, 10, true, rng);
    expect(ex.sort()).toEqual(['a1', 'a2', 'a3']);
    const two = index.testExemplars(query, 2, true, rng);
    expect(two).toHaveLength(2);
    expect(new Set(two).size).toBe(2);
    const all = index.testExemplars(query, 10, false, rng);
    expect(all.sort()).toEqual(['a1', 'a2', 'a3', 'b1', 'c1']);
  });

  it('is deterministic from the seed', () => {
    const index = new ExemplarIndex(train);
    const draw = (seed: number) =>
      index.testExemplars({ key: 't', actionType: 'A' }, 2, false, createRng(seed));
    expect(draw(7)).toEqual(draw(7));
  });

  it('names the unknown action type and the way out', () => {
    const index = new ExemplarIndex(train);
    expect(() => index.testExemplars({ key: 't', actionType: 'Z' }, 3, true, createRng(0))).toThrow(
      McoreError,
    );
    expect(() => index.testExemplars({ key: 't', actionType: 'Z' }, 3, true, createRng(0))).toThrow(
      /'Z'.*known: A, B, C/,
    );
    expect(() => new ExemplarIndex([])).toThrow(/training split is empty/);
  });
});

describe('epochBatches with train.crossTypeShare', () => {
  // 10 action types of 20 clips: a draw from the whole split lands on another type 180 times in 199.
  const clips = Array.from({ length: 200 }, (_, i) => ({
    key: `k${i}`,
    actionType: `T${i % 10}`,
    score: i,
    transitions: [1, 2],
  }));
  const index = new ExemplarIndex(clips);
  const typeOf = new Map(clips.map((c) => [c.key, c.actionType]));
  const crossShare = (share: number, seed: number) => {
    const batches = epochBatches(clips, index, {
      batchPairs: 8,
      dn: true,
      crossTypeShare: share,
      rng: createRng(seed),
    });
    let cross = 0;
    let pairs = 0;
    for (const b of batches) {
      b.queries.forEach((q, j) => {
        pairs++;
        if (typeOf.get(b.exemplars[j]) !== q.actionType) cross++;
      });
    }
    return { cross, pairs, batches };
  };

  it('0 keeps every pair within its action type and draws exactly as without the setting', () => {
    expect(crossShare(0, 5).cross).toBe(0);
    const without = epochBatches(clips, index, { batchPairs: 8, dn: true, rng: createRng(5) });
    expect(crossShare(0, 5).batches).toEqual(without);
  });

  it('p draws about a share p of the exemplars from the whole split (binomial bounds)', () => {
    for (const p of [0.25, 0.5, 1]) {
      let cross = 0;
      let pairs = 0;
      for (let seed = 0; seed < 10; seed++) {
        const r = crossShare(p, seed);
        cross += r.cross;
        pairs += r.pairs;
      }
      // expected share of pairs across types: p x 180/199; 2,000 pairs, bounds of ~4.5 sd
      const expected = p * (180 / 199);
      const sd = Math.sqrt((expected * (1 - expected)) / pairs);
      expect(Math.abs(cross / pairs - expected)).toBeLessThan(4.5 * sd + 1e-9);
      expect(cross).toBeGreaterThan(0);
    }
  });
});
