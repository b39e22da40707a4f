import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageSegments, timelineLayout } from '../../src/charts/specs.ts';
import { svgSize } from '../../src/charts/svg.ts';
import type { Frame } from '../../src/data/types.ts';
import { curveSeries, useLogScale } from '../../src/eval/charts.ts';
import type { Prediction } from '../../src/eval/evaluate.ts';
import {
  buildReport,
  flattenConfig,
  metricCells,
  pickTimelineKeys,
  type ReportData,
  reportFromDemo,
  writeEvalReport,
} from '../../src/eval/report.ts';
import type { EpochRecord } from '../../src/train/trainer.ts';
import type { DemoResults } from '../../src/verbs/demo.ts';

/** Throws unless `xml` is well-formed: one root, matched tags, quoted attributes, known entities. */
function assertWellFormedXml(xml: string): void {
  const bad = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(xml);
  if (bad) throw new Error(`bare '&' at ${bad.index}`);
  const stack: string[] = [];
  let roots = 0;
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|</g;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = token.exec(xml))) {
    if (/[<>]/.test(xml.slice(last, m.index))) throw new Error(`stray markup near ${last}`);
    last = m.index + m[0].length;
    if (m[0].startsWith('<!--') || m[0].startsWith('<?')) continue;
    if (m[2] === undefined)
      throw new Error(`malformed tag at ${m.index}: ${xml.slice(m.index, m.index + 60)}`);
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else if (!selfClosing) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

/** Leaf elements of every vega mark group `mark-<kind> role-mark`, one array per group. */
function markGroups(svg: string, kind: string): string[][] {
  const re = new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>(.*?)</g>`, 'g');
  return [...svg.matchAll(re)].map((g) => g[1].match(/<(path|image|line)\b[^>]*>/g) ?? []);
}

/** x, y, width, height and fill of a vega rect path 'M{x},{y}h{w}v{h}h-{w}Z'. */
function rectOf(el: string): { x: number; y: number; w: number; h: number; fill: string } {
  const d = /\bd="M([-\d.]+),([-\d.]+)h([-\d.]+)v([-\d.]+)h-[\d.]+Z"/.exec(el);
  const fill = /\bfill="([^"]+)"/.exec(el);
  if (!d || !fill) throw new Error(`not a rect: ${el}`);
  return { x: Number(d[1]), y: Number(d[2]), w: Number(d[3]), h: Number(d[4]), fill: fill[1] };
}

function predictions(n: number, slope: number, segments: boolean): Prediction[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `clip-${i}`,
    actionType: i % 2 ? '107b' : '305c',
    pred: 30 + slope * i + (i % 3),
    truth: 30 + 2 * i,
    exemplars: [],
    trueTransitions: [2, 5],
    ...(segments ? { transitions: [3, 6] } : {}),
  }));
}

function history(terms: (e: number) => Record<string, number>): EpochRecord[] {
  return [0, 1, 2].map((epoch) => ({ epoch, loss: terms(epoch).total, terms: terms(epoch), seconds: 1 }));
}

/** T tiny 4x4 frames, frame i filled with colour (10i, 200 - 10i, 7). */
function frames(T: number): Frame[] {
  return Array.from({ length: T }, (_, i) => {
    const data = new Uint8Array(4 * 4 * 3);
    for (let p = 0; p < 16; p++) data.set([10 * i, 200 - 10 * i, 7], p * 3);
    return { width: 4, height: 4, data };
  });
}

const stageNames = ['take-off', 'flight', 'entry'];

const data: ReportData = {
  title: 'Report <test> & check',
  seed: 7,
  seconds: 61.6,
  machine: '2 x Test CPU',
  config: { variant: 'mcore-tiny', model: { frames: 8 }, loss: { tasWeights: [1, 5] } },
  methods: {
    mcore: {
      metrics: { srcc: 0.91234, rl2: 0.012345, aiou50: 80, aiou75: 55 },
      // total = aqa + tas + cont; all four series are drawn.
      history: history((e) => ({ total: 6 - e, aqa: 3 - e, tas: 2, cont: 1 })),
      predictions: predictions(20, 2, true),
      seconds: 12.4,
    },
    regression: {
      metrics: { srcc: 0.5, rl2: 0.1, aiou50: Number.NaN, aiou75: Number.NaN },
      // mse equals total: only 'total' is drawn.
      history: history((e) => ({ total: 9 - e, mse: 9 - e })),
      predictions: predictions(20, 1.5, false),
    },
  },
  timelines: [
    {
      key: 'clip-3',
      method: 'mcore',
      stageNames,
      T: 8,
      predicted: [3, 6],
      truth: [2, 5],
      frames: frames(8),
      score: { pred: 41, truth: 36 },
    },
    { key: 'clip-9', method: 'mcore', stageNames, T: 8, predicted: [1, 7], truth: [4, 5], frames: frames(8) },
  ],
};

describe('writeEvalReport', () => {
  let dir: string;
  let html: string;
  const svg: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-report-'));
    const out = await writeEvalReport(dir, data);
    expect(out.html).toBe(path.join(dir, 'report.html'));
    html = await readFile(out.html, 'utf8');
    for (const name of ['scores', 'training', 'timeline-1', 'timeline-2'])
      svg[name] = await readFile(path.join(dir, 'charts', `${name}.svg`), 'utf8');
    expect(out.files.length).toBe(8);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has the title (escaped), seed, time, machine, config and the metrics table as papers print it', () => {
    expect(html).toContain('<title>Report &lt;test&gt; &amp; check</title>');
    expect(html).toContain('seed 7 &middot; 62 s &middot; 2 x Test CPU');
    expect(html).toContain('<tr><td>loss.tasWeights</td><td>[1, 5]</td></tr>');
    const tbody = html.slice(html.indexOf('<tbody>'), html.indexOf('</tbody>'));
    const rows = [...tbody.matchAll(/<tr><th>([^<]+)<\/th>(.*?)<\/tr>/g)].map((r) => [
      r[1],
      ...[...r[2].matchAll(/<td>(.*?)<\/td>/g)].map((c) => c[1].replace(/<\/?b>/g, '')),
    ]);
    expect(rows).toEqual([
      ['mcore', '0.9123', '1.2345', '80.00', '55.00', '-', '-', '-', '20', '12'],
      ['regression', '0.5000', '10.0000', '-', '-', '-', '-', '-', '20', '-'],
    ]);
    // The best value of each column is bold.
    expect(html).toContain('<td><b>0.9123</b></td><td><b>1.2345</b></td>');
    expect(html).not.toContain('<b>0.5000</b>');
    // No references, no warnings: neither the reference rows nor the warning box.
    expect(html).not.toContain('class="ref"');
    expect(html).not.toContain('class="warnings"');
  });

  it('with reference points and warnings: reference rows below the methods and a plain warning list', async () => {
    const built = await buildReport({
      ...data,
      methods: {
        mcore: { ...data.methods.mcore, warnings: ['within-type SRCC 0.050 < 0.2: the model barely ranks'] },
        regression: data.methods.regression,
      },
      references: {
        typeMean: { srcc: 0.81, withinTypeSrcc: 0, rl2: 0.02 },
        ridge: { srcc: 0.73, withinTypeSrcc: 0.4, rl2: 0.01, input: 'pixels', dims: 384, lambda: 2 },
      },
      timelines: [],
    });
    const refs = [...built.html.matchAll(/<tr class="ref"><th>([^<]+)<\/th>(.*?)<\/tr>/g)].map((r) => [
      r[1],
      ...[...r[2].matchAll(/<td>(.*?)<\/td>/g)].map((c) => c[1]),
    ]);
    expect(refs).toEqual([
      ['(type-mean predictor)', '0.8100', '2.0000', '-', '-', '0.8100', '-', '0.0000', '', ''],
      ['(ridge on pixels, 384 values)', '0.7300', '1.0000', '-', '-', '-', '0.7300', '0.4000', '', ''],
    ]);
    expect(built.html).toContain(
      '<li><b>mcore</b>: within-type SRCC 0.050 &lt; 0.2: the model barely ranks</li>',
    );
    expect(built.html.match(/<li>/g)).toHaveLength(1);
  });

  it('embeds every chart as an SVG data URI identical to charts/NAME.svg', () => {
    const uris = [...html.matchAll(/src="data:image\/svg\+xml;base64,([^"]+)"/g)].map((m) =>
      Buffer.from(m[1], 'base64').toString('utf8'),
    );
    expect(uris).toEqual([svg.scores, svg.training, svg['timeline-1'], svg['timeline-2']]);
    expect(html).not.toMatch(/src="(?!data:)/);
  });

  it('writes well-formed SVGs', () => {
    for (const s of Object.values(svg)) assertWellFormedXml(s);
    expect(() => assertWellFormedXml('<svg><g></svg>')).toThrow();
    expect(() => assertWellFormedXml('<svg a="1 & 2"/>')).toThrow();
  });

  it('scatter: one panel of 20 points per method, plus its y = x line', () => {
    const points = markGroups(svg.scores, 'symbol');
    expect(points.map((g) => g.length)).toEqual([20, 20]);
    expect(markGroups(svg.scores, 'line').map((g) => g.length)).toEqual([1, 1]);
    expect(svg.scores).toContain('>mcore</text>');
    expect(svg.scores).toContain('>regression</text>');
  });

  it('training curves: a point per epoch and series, one line per series', () => {
    // mcore: total, aqa, tas, cont x 3 epochs; regression: total (mse == total is not repeated).
    expect(markGroups(svg.training, 'symbol').map((g) => g.length)).toEqual([12, 3]);
    // vega draws each series of a line chart as its own mark group: 4 + 1 lines.
    expect(markGroups(svg.training, 'line').map((g) => g.length)).toEqual([1, 1, 1, 1, 1]);
  });

  it('timeline: stage bars at the hand-computed frame boundaries and one thumbnail per frame', async () => {
    // T = 8 -> 40 px per frame. Predicted [3, 6]: [0,3) [3,6) [6,8); true [2, 5]: [0,2) [2,5) [5,8).
    const [rects] = markGroups(svg['timeline-1'], 'rect');
    const bars = rects.map(rectOf);
    expect(bars.map(({ x, y, w, h }) => [x, y, w, h])).toEqual([
      [0, 0, 120, 25],
      [120, 0, 120, 25],
      [240, 0, 80, 25],
      [0, 25, 80, 25],
      [80, 25, 120, 25],
      [200, 25, 120, 25],
    ]);
    // Same stage, same colour in both rows; three distinct colours.
    expect(bars.slice(0, 3).map((b) => b.fill)).toEqual(bars.slice(3).map((b) => b.fill));
    expect(new Set(bars.map((b) => b.fill)).size).toBe(3);

    const [images] = markGroups(svg['timeline-1'], 'image');
    expect(images.length).toBe(8);
    const xs = images.map((el) => Number(/translate\(([-\d.]+),/.exec(el)![1]));
    expect(xs).toEqual([0, 40, 80, 120, 160, 200, 240, 280]);
    // Frame 5's thumbnail decodes to its colour, upscaled to 40 x 40.
    const uri = /href="data:image\/png;base64,([^"]+)"/.exec(images[5])![1];
    const { data: px, info } = await sharp(Buffer.from(uri, 'base64'))
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([40, 40]);
    expect([...px.subarray(0, 3)]).toEqual([50, 150, 7]);

    const [rects2] = markGroups(svg['timeline-2'], 'rect');
    expect(rects2.map(rectOf).map((r) => [r.x, r.w])).toEqual([
      [0, 40],
      [40, 240],
      [280, 40],
      [0, 160],
      [160, 40],
      [200, 120],
    ]);
    expect(svg['timeline-1']).toContain('clip-3 (mcore): predicted score 41.00, true 36.00');
  });

  it('PNGs decode with sharp at twice the SVG size', async () => {
    for (const [name, s] of Object.entries(svg)) {
      const meta = await sharp(path.join(dir, 'charts', `${name}.png`)).metadata();
      const { width, height } = svgSize(s);
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 2 * width, 2 * height]);
    }
    expect((await stat(path.join(dir, 'report.html'))).size).toBeLessThan(500_000);
  });
});

describe('report helpers', () => {
  it('stageSegments splits T frames at the transitions and rejects bad ones', () => {
    expect(stageSegments([3, 6], 8)).toEqual([
      { stage: 0, start: 0, end: 3 },
      { stage: 1, start: 3, end: 6 },
      { stage: 2, start: 6, end: 8 },
    ]);
    expect(() => stageSegments([6, 3], 8)).toThrow(/strictly increasing/);
    expect(() => stageSegments([3, 8], 8)).toThrow(/strictly increasing/);
    expect(() => stageSegments([0, 3], 8)).toThrow(/strictly increasing/);
  });

  it('timelineLayout keeps thumbnails >= 32 px by showing every stride-th frame', () => {
    expect(timelineLayout(8)).toEqual({ width: 320, cell: 40, stride: 1, thumb: 40 });
    expect(timelineLayout(16)).toEqual({ width: 640, cell: 40, stride: 1, thumb: 40 });
    expect(timelineLayout(96)).toEqual({ width: 576, cell: 6, stride: 6, thumb: 36 });
  });

  it('curveSeries drops all-zero terms and terms equal to total; log y only for wide positive ranges', () => {
    const h = history((e) => ({ total: 10 / 10 ** e, aqa: 10 / 10 ** e, tas: 1, cont: 0 }));
    const series = curveSeries(h);
    expect(series.map((s) => s.term)).toEqual(['total', 'tas']);
    expect(series[0].values).toEqual([10, 1, 0.1]);
    expect(useLogScale(series)).toBe(true);
    expect(useLogScale([{ values: [2, 19.9] }])).toBe(false);
    expect(useLogScale([{ values: [-1, 100] }])).toBe(false);
  });

  it('metricCells prints SRCC, R-l2 x100, AIoU in percent as stored, then SRCC dn / no-dn / within type; NaN as -', () => {
    expect(metricCells({ srcc: 0.927014, rl2: 0.0032757, aiou50: 96.662, aiou75: Number.NaN })).toEqual([
      '0.9270',
      '0.3276',
      '96.66',
      '-',
      '-',
      '-',
      '-',
    ]);
    expect(
      metricCells({
        srcc: 0.5,
        rl2: 0.01,
        aiou50: 100,
        aiou75: 50,
        srccDn: 0.8,
        srccNoDn: 0.5,
        withinTypeSrcc: 0.12345,
      }).slice(2),
    ).toEqual(['100.00', '50.00', '0.8000', '0.5000', '0.1235']);
  });

  it('flattenConfig gives dotted keys', () => {
    expect(flattenConfig({ a: 1, b: { c: 'x', d: { e: true } }, f: [1, 2] })).toEqual([
      ['a', '1'],
      ['b.c', 'x'],
      ['b.d.e', 'true'],
      ['f', '[1, 2]'],
    ]);
  });

  it('pickTimelineKeys spreads the picks over the true scores', () => {
    const ps = predictions(10, 1, true).reverse();
    expect(pickTimelineKeys(ps, 4)).toEqual(['clip-0', 'clip-3', 'clip-6', 'clip-9']);
    expect(pickTimelineKeys(ps.slice(0, 2), 4)).toEqual(['clip-8', 'clip-9']);
  });

  it('reportFromDemo joins results, predictions and the timeline clips', () => {
    const results: DemoResults = {
      methods: {},
      seed: 3,
      config: { variant: 'mcore-tiny' },
      details: {
        mcore: {
          metrics: { ...data.methods.mcore.metrics, mse: 1, srccDn: 0.9, srccNoDn: 0.5, withinTypeSrcc: 0.3 },
          history: [],
          seconds: 5,
        },
        regression: {
          metrics: {
            ...data.methods.regression.metrics,
            mse: 2,
            srccDn: 0.5,
            srccNoDn: 0.5,
            withinTypeSrcc: 0.1,
          },
          history: [],
          seconds: 4,
        },
      },
      seconds: 99,
    };
    const preds = { mcore: predictions(20, 2, true), regression: predictions(20, 1, false) };
    const r = reportFromDemo(results, preds, [{ key: 'clip-4', frames: frames(8) }], {
      stageNames,
      machine: 'm',
    });
    expect(Object.keys(r.methods)).toEqual(['mcore', 'regression']);
    expect(r.methods.regression.predictions).toBe(preds.regression);
    expect(r.timelines.map((t) => [t.key, t.method, t.T, t.predicted, t.truth, t.score])).toEqual([
      ['clip-4', 'mcore', 8, [3, 6], [2, 5], { pred: 39, truth: 38 }],
    ]);
    expect([r.seed, r.seconds, r.machine]).toEqual([3, 99, 'm']);
    expect(() =>
      reportFromDemo(results, preds, [{ key: 'nope', frames: frames(8) }], { stageNames, machine: 'm' }),
    ).toThrow(/no prediction/);
    expect(() =>
      reportFromDemo(results, preds, [{ key: 'clip-4', frames: frames(8) }], {
        stageNames,
        timelineMethod: 'regression',
      }),
    ).toThrow(/no segmenting/);
  });
});
