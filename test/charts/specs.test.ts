/**
 * The stage charts' specs (src/charts/specs.ts): runtime-neutral (bundled for a browser by esbuild with
 * no Node built-in and no package at all), and drawn by vega (Node's renderer, src/charts/svg.ts) with
 * the numbers they are given: bar heights proportional to the deltas, means where the mean is, stage
 * bars on the frames of their stage, thumbnails on their frame, hover titles.
 */
import path from 'node:path';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';
import {
  type ChartedResult,
  EXEMPLAR_COLOURS,
  resultDeltaSpec,
  resultTimelineLayout,
  resultTimelineSpec,
  STAGE_COLOURS,
  stageDeltaSpec,
  thumbnailFrames,
  timelineLayout,
} from '../../src/charts/specs.ts';
import { renderSvg } from '../../src/charts/svg.ts';
import { repoRoot } from '../helpers/cli.ts';
import { attrOf, markItems, rectOf, round6, ruleOf, translateX } from '../helpers/vega-svg.ts';

async function browserBundle(entry: string) {
  return esbuild.build({
    entryPoints: [path.join(repoRoot, entry)],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
}

const stageNames = ['take-off', 'flight', 'entry'];
/** Deltas of stage s against exemplar e; the entry/ex-b one is exactly 0. */
const DELTAS = [
  [0.5, -0.2, 0.25],
  [0.1, -0.4, 0.3],
  [-0.3, 0, 0.05],
];
const EXEMPLARS = ['ex-a', 'ex-b', 'ex-c'];

/** A result of T = 24 sampled frames (every third source frame at 25 fps): stages [0, 7) [7, 18) [18, 24). */
const result: ChartedResult = {
  input: { sampled: Array.from({ length: 24 }, (_, i) => 3 * i) },
  stages: [
    [0, 7],
    [7, 18],
    [18, 24],
  ].map(([start, end], k) => ({
    name: stageNames[k],
    start,
    end,
    sourceStart: 3 * start,
    sourceEnd: 3 * end,
    startSec: (3 * start) / 25,
    endSec: (3 * end) / 25,
  })),
  perStage: stageNames.map((stage, s) => ({
    stage,
    deltas: EXEMPLARS.map((exemplar, e) => ({ exemplar, delta: DELTAS[s][e] })),
    mean: DELTAS[s].reduce((a, b) => a + b, 0) / 3,
  })),
};

describe('chart specs', () => {
  it('bundle for a browser with no Node built-in and no package (vega-lite is only a type)', async () => {
    const r = await browserBundle('src/charts/specs.ts');
    expect(r.errors).toEqual([]);
    expect(Object.keys(r.metafile.inputs).sort()).toEqual(['src/charts/specs.ts', 'src/errors.ts']);
    // Node's renderer does not (sharp), which shows the check can fail.
    const failure = await browserBundle('src/charts/svg.ts').then(
      () => undefined,
      (e: { errors?: { text: string }[] }) => e.errors ?? [],
    );
    expect(failure?.length).toBeGreaterThan(0);
  });

  it('per-stage chart: one bar per (stage, exemplar), heights proportional to the deltas, the mean dashed', async () => {
    const svg = await renderSvg(resultDeltaSpec(result), { titles: true });
    const bars = markItems(svg, 'deltaBars');
    expect(bars).toHaveLength(9);
    const [zero] = markItems(svg, 'zero').map(ruleOf);
    const y0 = zero.y;
    const expected = stageNames.flatMap((stage, s) => EXEMPLARS.map((ex, e) => ({ stage, s, ex, e })));
    // Pixels per score unit, from the first bar; every bar must agree.
    const k = Math.abs(rectOf(bars[0]).h) / Math.abs(DELTAS[0][0]);
    expect(k).toBeGreaterThan(100);
    bars.forEach((el, i) => {
      const { stage, s, ex, e } = expected[i];
      const d = DELTAS[s][e];
      const b = rectOf(el);
      expect(Math.abs(b.h)).toBeCloseTo(Math.abs(d) * k, 6);
      // Above the zero line for a positive delta, below for a negative one.
      const top = Math.min(b.y, b.y + b.h);
      expect(top).toBeCloseTo(d >= 0 ? y0 - d * k : y0, 6);
      expect(b.fill).toBe(EXEMPLAR_COLOURS[e]);
      expect(attrOf(el, 'aria-label')).toBe(
        `${stage} vs ${ex}: ${d >= 0 ? '+' : '-'}${Math.abs(d).toFixed(3)}`,
      );
      expect(el).toContain(`<title>${attrOf(el, 'aria-label')}</title>`);
    });
    // Bars of one stage sit side by side in exemplar order; the stages left to right.
    const xs = bars.map((el) => rectOf(el).x);
    for (let i = 1; i < xs.length; i++) expect(xs[i]).toBeGreaterThan(xs[i - 1]);
    // Each stage's mean: a dashed rule at its value, across its group of bars.
    const means = markItems(svg, 'deltaMeans');
    expect(means).toHaveLength(3);
    means.forEach((el, s) => {
      const m = result.perStage[s].mean;
      const rule = ruleOf(el);
      expect(rule.y).toBeCloseTo(y0 - m * k, 6);
      const group = bars.slice(3 * s, 3 * s + 3).map(rectOf);
      expect(rule.x).toBeCloseTo(group[0].x, 6);
      expect(rule.x + rule.length).toBeCloseTo(group[2].x + group[2].w, 6);
      expect(attrOf(el, 'stroke-dasharray')).toBe('5,3');
      expect(attrOf(el, 'aria-label')).toBe(`${stageNames[s]}: mean ${['+0.183', '+0.000', '-0.083'][s]}`);
    });
    // The stage axis says each stage's mean (flight's is 1e-17 or so: no '-0.00').
    expect(svg).toMatch(
      />take-off \(\+0\.18\)<\/text>.*>flight \(\+0\.00\)<\/text>.*>entry \(-0\.08\)<\/text>/,
    );
  });

  it('per-stage chart: exemplars must be the same, in the same order, for every stage', () => {
    const swapped = result.perStage.map((s, i) => (i === 1 ? { ...s, deltas: [...s.deltas].reverse() } : s));
    expect(() => stageDeltaSpec(swapped)).toThrow(/stage 'flight' compares with \[ex-c, ex-b, ex-a\]/);
  });

  it('timeline: stage bars on their frames with the range as tooltip, thumbnails on their frames', async () => {
    const layout = resultTimelineLayout(24, 6);
    // 800 / 24 -> 33 px per frame; 6 thumbnails of every 4th frame, 132 px wide.
    expect(layout).toEqual({ width: 792, cell: 33, stride: 4, thumb: 132 });
    const frames = thumbnailFrames(24, layout);
    expect(frames).toEqual([0, 4, 8, 12, 16, 20]);
    const urls = frames.map((f) => `data:image/png;base64,${Buffer.from(`frame ${f}`).toString('base64')}`);
    const svg = await renderSvg(resultTimelineSpec(result, urls, 0.5, layout), { titles: true });
    const bars = markItems(svg, 'stageBars').map(rectOf);
    expect(bars.map(({ x, y, w, h }) => [x, y, w, h].map(round6))).toEqual([
      [0, 0, 7 * 33, 25],
      [7 * 33, 0, 11 * 33, 25],
      [18 * 33, 0, 6 * 33, 25],
    ]);
    expect(bars.map((b) => b.fill)).toEqual(STAGE_COLOURS.slice(0, 3));
    expect(markItems(svg, 'stageBars').map((el) => attrOf(el, 'aria-label'))).toEqual([
      'take-off: sampled 0-6, source frames 0-20, 0.00-0.84 s',
      'flight: sampled 7-17, source frames 21-53, 0.84-2.16 s',
      'entry: sampled 18-23, source frames 54-71, 2.16-2.88 s',
    ]);
    // Each name inside its bar, where it fits.
    const labels = markItems(svg, 'stageLabels');
    expect(labels.map((el) => round6(translateX(el)))).toEqual([3.5 * 33, 12.5 * 33, 21 * 33]);
    expect(svg).toMatch(/>take-off<\/text>.*>flight<\/text>.*>entry<\/text>/);
    const images = markItems(svg, 'thumbnails');
    expect(images.map((el) => round6(translateX(el)))).toEqual(frames.map((f) => f * 33));
    expect(images.map((el) => [attrOf(el, 'width'), attrOf(el, 'height')])).toEqual(
      frames.map(() => ['132', '66']),
    );
    expect(images.map((el) => attrOf(el, 'xlink:href'))).toEqual(urls);
    expect(images[2]).toContain('<title>sampled frame 8 (source frame 24)</title>');
    // Without thumbnails: no strip; with the wrong number: an error naming the frames.
    const bare = await renderSvg(resultTimelineSpec(result));
    expect(bare).not.toContain('thumbnails_marks');
    expect(() => resultTimelineSpec(result, urls.slice(1), 0.5, layout)).toThrow(
      /5 thumbnails for the 6 frames \[0, 4, 8, 12, 16, 20\]/,
    );
  });

  it('timelineLayout: 4-40 px per frame, thumbnails at least minThumb wide and at most `thumbnails`', () => {
    expect(timelineLayout(96)).toEqual({ width: 576, cell: 6, stride: 6, thumb: 36 });
    expect(timelineLayout(96, { width: 800, minThumb: 40, thumbnails: 16 })).toEqual({
      width: 768,
      cell: 8,
      stride: 6,
      thumb: 48,
    });
    expect(timelineLayout(96, { width: 800, minThumb: 40, thumbnails: 32 }).stride).toBe(5);
    expect(timelineLayout(8, { thumbnails: 100 })).toEqual({ width: 320, cell: 40, stride: 1, thumb: 40 });
    expect(timelineLayout(1000).cell).toBe(4);
  });
});
