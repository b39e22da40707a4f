import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openSynthDive, parseDatasetSpec } from '../../src/data/open.ts';
import { difficultyOf } from '../../src/data/synthdive/actions.ts';
import { sceneAt } from '../../src/data/synthdive/choreography.ts';
import {
  ACTION_TYPES,
  createSynthDive,
  finaScore,
  finaTrimmedSum,
  JUDGE_WEIGHTS_4,
  renderFrame,
  renderFrameSync,
  type SynthDive,
  type SynthDiveClipParams,
} from '../../src/data/synthdive/index.ts';
import { expectedAward } from '../../src/data/synthdive/judges.ts';
import { McoreError } from '../../src/errors.ts';

/** Ranks with ties averaged (1-based). */
function ranks(v: number[]): number[] {
  const idx = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Array<number>(v.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

const spearman = (a: number[], b: number[]): number => pearson(ranks(a), ranks(b));

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** All frames of a clip, rendered from its params at 24x24. */
const renderAll = (p: SynthDiveClipParams): Uint8Array[] =>
  Array.from({ length: p.numFrames }, (_, i) => renderFrameSync(p, i, 24, 24).data);

/**
 * Renders the first 6 clips of `ds` with stage quality `stage` at 0.05 and at 0.95: frames outside the
 * stage must be byte-identical, at least `minShare` of the stage's frames must differ, and the mean
 * absolute difference per pixel value inside the stage (8-bit levels) must exceed `minCue`.
 */
function expectStageLocality(ds: SynthDive, stage: number, minShare: number, minCue: number): void {
  const cue: number[] = [];
  for (const clip of ds.clips.slice(0, 6)) {
    const base = ds.params(clip.key);
    const lo = structuredClone(base);
    const hi = structuredClone(base);
    lo.quality[stage] = 0.05;
    hi.quality[stage] = 0.95;
    const a = renderAll(lo);
    const b = renderAll(hi);
    const bounds = [base.actionStart, ...base.transitions, base.actionEnd];
    let differing = 0;
    let absDiff = 0;
    for (let i = 0; i < base.numFrames; i++) {
      const inside = i >= bounds[stage] && i < bounds[stage + 1];
      const same = sameBytes(a[i], b[i]);
      if (inside) for (let k = 0; k < a[i].length; k++) absDiff += Math.abs(a[i][k] - b[i][k]) / a[i].length;
      if (!inside)
        expect(
          same,
          `${clip.key} frame ${i} (stage ${stage} spans ${bounds[stage]}..${bounds[stage + 1]})`,
        ).toBe(true);
      else if (!same) differing++;
    }
    // the stage's first frame is the fixed hand-over state; most of the rest must differ
    const length = bounds[stage + 1] - bounds[stage];
    expect(differing).toBeGreaterThanOrEqual(minShare * length);
    cue.push(absDiff / length);
  }
  const mean = cue.reduce((x, y) => x + y, 0) / cue.length;
  expect(mean, `mean cue of stage ${stage}: ${mean.toFixed(2)}`).toBeGreaterThan(minCue);
}

describe('synthdive', () => {
  const ds = createSynthDive({ seed: 11, clips: 600, width: 32, height: 32 });

  it('spearman helper reproduces a hand-computed value with ties', () => {
    // ranks of [1, 2, 2, 3] = [1, 2.5, 2.5, 4]; of [1, 3, 2, 4] = [1, 3, 2, 4]; pearson = 4.5 / sqrt(4.5 * 5)
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(4.5 / Math.sqrt(4.5 * 5), 12);
  });

  it('has clips of 60-140 frames with background, each stage 15-50% of the action', () => {
    expect(ds.clips).toHaveLength(600);
    expect(ds.stageNames).toEqual(['take-off', 'flight', 'entry']);
    for (const c of ds.clips) {
      const p = ds.params(c.key);
      expect(c.numFrames).toBeGreaterThanOrEqual(60);
      expect(c.numFrames).toBeLessThanOrEqual(140);
      expect(c.transitions).toHaveLength(2);
      const [t0, t1] = c.transitions;
      expect(p.actionStart).toBeGreaterThanOrEqual(3);
      expect(t0).toBeGreaterThan(p.actionStart);
      expect(t1).toBeGreaterThan(t0);
      expect(p.actionEnd).toBeGreaterThan(t1);
      expect(c.numFrames - p.actionEnd).toBeGreaterThanOrEqual(3);
      const n = p.actionEnd - p.actionStart;
      for (const len of [t0 - p.actionStart, t1 - t0, p.actionEnd - t1]) {
        expect(len / n).toBeGreaterThanOrEqual(0.15);
        expect(len / n).toBeLessThanOrEqual(0.5);
      }
    }
    const lengths = ds.clips.map((c) => c.numFrames);
    expect(Math.min(...lengths)).toBeLessThan(70);
    expect(Math.max(...lengths)).toBeGreaterThan(130);
  });

  it('names 18 action types like dive numbers with difficulty 1.5-4.0, more rotations harder', () => {
    expect(ACTION_TYPES).toHaveLength(18);
    const names = ACTION_TYPES.map((t) => t.name);
    expect(names).toContain('107b');
    expect(names).toContain('205c');
    expect(names).toContain('403c');
    expect(new Set(ds.clips.map((c) => c.actionType)).size).toBe(18);
    expect(difficultyOf('forward', 3, 'tuck')).toBe(1.5);
    expect(difficultyOf('back', 7, 'pike')).toBe(3.6);
    expect(difficultyOf('inward', 5, 'pike')).toBe(2.8);
    for (const t of ACTION_TYPES) {
      expect(t.difficulty).toBeGreaterThanOrEqual(1.5);
      expect(t.difficulty).toBeLessThanOrEqual(4);
      if (t.halfSomersaults < 7) {
        const harder = ACTION_TYPES.find(
          (u) =>
            u.group === t.group && u.position === t.position && u.halfSomersaults === t.halfSomersaults + 2,
        )!;
        expect(harder.difficulty).toBeGreaterThan(t.difficulty);
      }
    }
  });

  it('applies the FINA rule: hand-computed panels', () => {
    // 5 judges: drop 9 and 6.5 -> 7 + 7.5 + 8 = 22.5
    expect(finaTrimmedSum([7, 8, 6.5, 9, 7.5])).toBe(22.5);
    expect(finaScore([7, 8, 6.5, 9, 7.5], 3.2)).toBeCloseTo(72, 12);
    // 7 judges: drop 10, 9 and 4, 5 -> 6 + 7 + 8 = 21
    expect(finaTrimmedSum([5, 6, 7, 8, 9, 10, 4])).toBe(21);
    expect(finaScore([5, 6, 7, 8, 9, 10, 4], 2.7)).toBeCloseTo(56.7, 12);
    expect(() => finaTrimmedSum([5, 6, 7])).toThrow(McoreError);
  });

  it('scores every clip as difficulty x trimmed sum of half-point awards (5 and 7 judges)', () => {
    const ds7 = createSynthDive({ seed: 11, clips: 200, width: 16, height: 16, judges: 7 });
    for (const [set, judges, drop] of [
      [ds, 5, 1],
      [ds7, 7, 2],
    ] as const) {
      for (const c of set.clips) {
        expect(c.judgeScores).toHaveLength(judges);
        for (const s of c.judgeScores) {
          expect(s).toBeGreaterThanOrEqual(0);
          expect(s).toBeLessThanOrEqual(10);
          expect(Number.isInteger(s * 2)).toBe(true);
        }
        const sorted = c.judgeScores.slice().sort((a, b) => a - b);
        const kept = sorted.slice(drop, judges - drop);
        expect(kept).toHaveLength(3);
        const expected = c.difficulty * kept.reduce((a, b) => a + b, 0);
        expect(c.score).toBeCloseTo(expected, 9);
        expect(ACTION_TYPES.find((t) => t.name === c.actionType)!.difficulty).toBe(c.difficulty);
      }
    }
    const scores = ds.clips.map((c) => c.score);
    expect(Math.max(...scores) - Math.min(...scores)).toBeGreaterThan(40);
  });

  it('is deterministic: same seed -> same clips and frame bytes; another seed -> different', () => {
    const again = createSynthDive({ seed: 11, clips: 600, width: 32, height: 32 });
    expect(again.clips).toEqual(ds.clips);
    const other = createSynthDive({ seed: 12, clips: 600, width: 32, height: 32 });
    expect(other.clips.map((c) => c.score)).not.toEqual(ds.clips.map((c) => c.score));
    for (const c of ds.clips.slice(0, 5)) {
      for (const i of [0, c.transitions[0], c.transitions[1] + 2, c.numFrames - 1]) {
        expect(sameBytes(again.loadFrameSync(c.key, i).data, ds.loadFrameSync(c.key, i).data)).toBe(true);
        expect(sameBytes(other.loadFrameSync(c.key, 0).data, ds.loadFrameSync(c.key, 0).data)).toBe(false);
      }
    }
  });

  /** Smallest mean cue per stage at 24x24 (measured: see the test's message; floors ~20% below). */
  const MIN_CUE = [4.5, 2.5, 5];

  it.each([
    { stage: 0, name: 'take-off' },
    { stage: 1, name: 'flight' },
    { stage: 2, name: 'entry' },
  ] as const)('shows stage quality $stage ($name) only inside its stage', ({ stage }) => {
    expectStageLocality(ds, stage, 0.6, MIN_CUE[stage]);
  });

  it('makes the judges follow the hidden qualities (Spearman > 0.8), every stage counting', () => {
    const qs = ds.clips.map((c) => ds.quality(c.key));
    const totals = ds.clips.map((c) => finaTrimmedSum(c.judgeScores));
    const rho = spearman(
      qs.map((q) => q[0] + q[1] + q[2]),
      totals,
    );
    expect(rho).toBeGreaterThan(0.8);
    for (let s = 0; s < 3; s++) {
      expect(
        spearman(
          qs.map((q) => q[s]),
          totals,
        ),
      ).toBeGreaterThan(0.35);
    }
    for (const q of qs) for (const v of q) expect(v >= 0 && v <= 1).toBe(true);
  });

  it('keeps scores independent of nuisance, which does change the frames', () => {
    const other = createSynthDive({ seed: 11, nuisanceSeed: 99, clips: 600, width: 32, height: 32 });
    const plain = createSynthDive({ seed: 11, nuisance: false, clips: 600, width: 32, height: 32 });
    expect(other.clips).toEqual(ds.clips);
    expect(plain.clips).toEqual(ds.clips);
    for (const c of ds.clips.slice(0, 5)) {
      expect(other.quality(c.key)).toEqual(ds.quality(c.key));
      const i = c.transitions[0] + 1;
      expect(sameBytes(other.loadFrameSync(c.key, i).data, ds.loadFrameSync(c.key, i).data)).toBe(false);
      expect(sameBytes(plain.loadFrameSync(c.key, i).data, ds.loadFrameSync(c.key, i).data)).toBe(false);
    }
  });

  it('splits each action type 75/25, every test type also in train', () => {
    const train = new Set(ds.clips.filter((c) => c.split === 'train').map((c) => c.actionType));
    for (const t of ACTION_TYPES) {
      const members = ds.clips.filter((c) => c.actionType === t.name);
      expect(members.length === 33 || members.length === 34).toBe(true);
      expect(members.filter((c) => c.split === 'train')).toHaveLength(Math.round(0.75 * members.length));
      expect(train.has(t.name)).toBe(true);
    }
    const tiny = createSynthDive({ seed: 3, clips: 20, width: 16, height: 16, trainFraction: 0.1 });
    const tinyTrain = new Set(tiny.clips.filter((c) => c.split === 'train').map((c) => c.actionType));
    for (const c of tiny.clips) expect(tinyTrain.has(c.actionType)).toBe(true);
  });

  it('renders the standard scene with exact colours; the diver stands still before the action', async () => {
    const plain = createSynthDive({ seed: 11, nuisance: false, clips: 10, width: 32, height: 32 });
    const c = plain.clips[0];
    const f0 = await plain.loadFrame(c.key, 0);
    expect(f0.width).toBe(32);
    expect(f0.height).toBe(32);
    expect(f0.data).toHaveLength(32 * 32 * 3);
    // top-left pixel: background top colour [0.55, 0.65, 0.8] x 255
    expect([...f0.data.subarray(0, 3)]).toEqual([140, 166, 204]);
    // at 128x128 (pixel 0.02 body heights) the pixel containing the hip lies wholly inside the
    // torso (radius 0.09): figure colour [0.85, 0.2, 0.15] x 255
    const p = plain.params(c.key);
    const scene = sceneAt(p, 0);
    const pix = scene.camera.viewHeight / 128;
    const col = Math.floor((scene.figure!.joints.hip[0] - scene.camera.x) / pix + 64);
    const row = Math.floor((scene.camera.y - scene.figure!.joints.hip[1]) / pix + 64);
    const o = (row * 128 + col) * 3;
    expect([...renderFrameSync(p, 0, 128, 128).data.subarray(o, o + 3)]).toEqual([217, 51, 38]);
    for (let i = 1; i < p.actionStart; i++) {
      expect(sameBytes(plain.loadFrameSync(c.key, i).data, f0.data)).toBe(true);
    }
    expect(sameBytes(plain.loadFrameSync(c.key, p.actionStart + 3).data, f0.data)).toBe(false);
    expect(sameBytes((await renderFrame(p, 5, 32, 32)).data, renderFrameSync(p, 5, 32, 32).data)).toBe(true);
  });

  it('rejects bad options, keys and frame indices with coded errors', async () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof McoreError ? e.code : 'other';
      }
      return 'none';
    };
    expect(code(() => createSynthDive({ seed: 1, judges: 6 as 5 }))).toBe('E_CONFIG');
    expect(code(() => createSynthDive({ seed: 1, trainFraction: 1 }))).toBe('E_CONFIG');
    expect(code(() => createSynthDive({ seed: 1.5 }))).toBe('E_CONFIG');
    expect(code(() => ds.loadFrameSync('nope', 0))).toBe('E_INPUT');
    expect(code(() => ds.loadFrameSync(ds.clips[0].key, ds.clips[0].numFrames))).toBe('E_INPUT');
    await expect(ds.loadFrame(ds.clips[0].key, -1)).rejects.toThrow(/frames 0\.\./);
  });
});

describe('synthdive, 4-stage variant (stages: 4)', () => {
  const ds = createSynthDive({ seed: 21, clips: 300, width: 32, height: 32, stages: 4 });

  it('names four stages, each 12-40% of the action, with four qualities per clip', () => {
    expect(ds.stageNames).toEqual(['take-off', 'somersault', 'come-out', 'entry']);
    for (const c of ds.clips) {
      const p = ds.params(c.key);
      expect(c.transitions).toHaveLength(3);
      expect(c.stageQualities).toHaveLength(4);
      const bounds = [p.actionStart, ...p.transitions, p.actionEnd];
      const n = p.actionEnd - p.actionStart;
      for (let s = 0; s < 4; s++) {
        const len = bounds[s + 1] - bounds[s];
        expect(len).toBeGreaterThanOrEqual(0.12 * n);
        expect(len).toBeLessThanOrEqual(0.4 * n);
      }
    }
  });

  it('leaves the 3-stage dataset as it was (the shipped weights were trained on it)', () => {
    // sha256 of the clips of seed 1000 and of every 3rd frame of the first 40, at 32 px, computed
    // before the 4-stage variant existed
    const three = createSynthDive({ seed: 1000, clips: 300, width: 32, height: 32 });
    const h = createHash('sha256');
    h.update(JSON.stringify(three.clips));
    for (const c of three.clips.slice(0, 40))
      for (let i = 0; i < c.numFrames; i += 3) h.update(three.loadFrameSync(c.key, i).data);
    expect(h.digest('hex')).toBe('9d7f5537e67469ff3a639ff390693d1b83ff831f8fd1e91d9568adaa83e03a6a');
  });

  /** Smallest mean cue per stage at 24x24 (measured on these 6 clips: 5.52, 2.69, 2.54, 8.63; floors ~20% below). */
  const MIN_CUE_4 = [4.4, 2.1, 2, 6.9];
  it.each([0, 1, 2, 3])('shows stage quality %i only inside its stage', (stage) => {
    expectStageLocality(ds, stage, 0.5, MIN_CUE_4[stage]);
  });

  it('makes the judges follow all four qualities, with their own weights', () => {
    const qs = ds.clips.map((c) => ds.quality(c.key));
    const totals = ds.clips.map((c) => finaTrimmedSum(c.judgeScores));
    expect(
      spearman(
        qs.map((q) => q.reduce((a, b) => a + b, 0)),
        totals,
      ),
    ).toBeGreaterThan(0.8);
    for (let s = 0; s < 4; s++)
      expect(
        spearman(
          qs.map((q) => q[s]),
          totals,
        ),
      ).toBeGreaterThan(0.3);
    for (const w of JUDGE_WEIGHTS_4) expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // a panel's expected award for q: 1 + 9 w.q (judge 0: [0.25, 0.3, 0.2, 0.25])
    expect(expectedAward([1, 0, 0, 0], 0)).toBeCloseTo(1 + 9 * 0.25, 12);
    expect(expectedAward([0, 0, 1, 0], 0)).toBeCloseTo(1 + 9 * 0.2, 12);
    expect(() => expectedAward([1, 1], 0)).toThrow(McoreError);
  });

  it('is asked for with stages=4 in a dataset spec; other stage counts are refused', () => {
    expect(parseDatasetSpec('synthdive:seed=3,stages=4')).toEqual({
      kind: 'synthdive',
      options: { seed: 3, stages: 4 },
    });
    expect(() => parseDatasetSpec('synthdive:stages=5')).toThrow(/stages must be an integer in \[3, 4\]/);
    expect(() => createSynthDive({ seed: 1, stages: 2 as 3 })).toThrow(/stages must be 3 or 4/);
    expect(openSynthDive({ seed: 3, clips: 20, stages: 4 }).stageNames).toHaveLength(4);
  });
});
