/**
 * The result view: what `mcore score --report` shows, as DOM — the predicted score, the stage timeline
 * over a strip of the sampled frames, the per-stage comparison with each exemplar as an inline SVG
 * chart, the exemplar table and the timings. Text goes in through textContent only.
 */
import { exemplarTable, type Frame, type ScoreResult, signed, stageTable } from '../src/score/core.ts';

const STAGE_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const SVG = 'http://www.w3.org/2000/svg';

const colour = (s: number) => STAGE_COLOURS[s % STAGE_COLOURS.length];

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function table(head: string[], rows: string[][]): HTMLTableElement {
  const t = el('table');
  const tr = el('tr');
  for (const h of head) tr.append(el('th', {}, h));
  t.append(tr);
  for (const r of rows) {
    const row = el('tr');
    for (const c of r) row.append(el('td', {}, c));
    t.append(row);
  }
  return t;
}

function thumb(f: Frame, size: number): HTMLCanvasElement {
  const src = document.createElement('canvas');
  src.width = f.width;
  src.height = f.height;
  const img = new ImageData(f.width, f.height);
  for (let p = 0; p < f.width * f.height; p++) {
    img.data[p * 4] = f.data[p * 3];
    img.data[p * 4 + 1] = f.data[p * 3 + 1];
    img.data[p * 4 + 2] = f.data[p * 3 + 2];
    img.data[p * 4 + 3] = 255;
  }
  src.getContext('2d')!.putImageData(img, 0, 0);
  const c = el('canvas', { width: String(size), height: String(Math.round((size * f.height) / f.width)) });
  c.getContext('2d')!.drawImage(src, 0, 0, c.width, c.height);
  return c;
}

/** Sampled frames as a strip, each framed in its stage's colour, over the stage timeline. */
function timeline(r: ScoreResult): HTMLElement {
  const box = el('section', { class: 'timeline' });
  box.append(el('h2', {}, 'Stages'));
  const T = r.input.sampled.length;
  const stageOf = (i: number) => r.stages.findIndex((s) => i >= s.start && i < s.end);
  if (r.frames) {
    const strip = el('div', { class: 'strip' });
    const shown = Math.min(T, 16);
    for (let k = 0; k < shown; k++) {
      const i = Math.round((k * (T - 1)) / Math.max(1, shown - 1));
      const c = thumb(r.frames[i], 56);
      c.style.borderColor = colour(stageOf(i));
      c.title = `sampled frame ${i} (source frame ${r.input.sampled[i]})`;
      strip.append(c);
    }
    box.append(strip);
  }
  const W = 900;
  const bar = svg('svg', { viewBox: `0 0 ${W} 46`, width: '100%', role: 'img', class: 'stagebar' });
  r.stages.forEach((s, k) => {
    const x = (s.start / T) * W;
    const w = ((s.end - s.start) / T) * W;
    bar.append(svg('rect', { x, y: 0, width: w, height: 26, fill: colour(k) }));
    bar.append(svg('text', { x: x + 4, y: 18, fill: '#fff', 'font-size': 13 }, s.name));
    const secs = s.startSec !== undefined ? ` ${s.startSec.toFixed(2)}s` : '';
    bar.append(svg('text', { x: x + 2, y: 42, 'font-size': 11, fill: '#444' }, `${s.sourceStart}${secs}`));
  });
  box.append(bar);
  box.append(table(stageTable(r).head, stageTable(r).rows));
  return box;
}

/** Grouped bars: per exemplar, the scaled delta of each stage (what the stage adds to or takes off). */
function stageChart(r: ScoreResult): HTMLElement {
  const box = el('section', { class: 'chart' });
  box.append(el('h2', {}, 'Per-stage comparison with each exemplar'));
  const K = r.perStage.length;
  const M = r.exemplars.length;
  const values = r.perStage.flatMap((s) => s.deltas.map((d) => d.delta));
  const hi = Math.max(0, ...values);
  const lo = Math.min(0, ...values);
  const span = Math.max(1e-6, hi - lo);
  const W = 900;
  const H = 240;
  const pad = { l: 50, r: 10, t: 10, b: 60 };
  const gw = (W - pad.l - pad.r) / M;
  const bw = Math.max(2, (gw * 0.8) / K);
  const y = (v: number) => pad.t + ((hi - v) / span) * (H - pad.t - pad.b);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', class: 'stagechart' });
  chart.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), stroke: '#888' }));
  for (const v of hi === lo ? [hi] : [hi, lo]) {
    chart.append(
      svg('text', { x: pad.l - 4, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11 }, signed(v, 2)),
    );
  }
  r.exemplars.forEach((e, m) => {
    const gx = pad.l + m * gw + gw * 0.1;
    for (let s = 0; s < K; s++) {
      const v = r.perStage[s].deltas[m].delta;
      const rect = svg('rect', {
        x: gx + s * bw,
        y: Math.min(y(v), y(0)),
        width: bw - 1,
        height: Math.max(1, Math.abs(y(v) - y(0))),
        fill: colour(s),
      });
      rect.append(svg('title', {}, `${e.key} ${r.perStage[s].stage}: ${signed(v)}`));
      chart.append(rect);
    }
    chart.append(
      svg(
        'text',
        {
          x: gx + (K * bw) / 2,
          y: H - pad.b + 14,
          'font-size': 10,
          'text-anchor': 'end',
          transform: `rotate(-35 ${gx + (K * bw) / 2} ${H - pad.b + 14})`,
        },
        e.key,
      ),
    );
  });
  box.append(chart);
  const legend = el('div', { class: 'legend' });
  r.perStage.forEach((s, k) => {
    const item = el('span', {}, s.stage);
    item.style.borderLeft = `14px solid ${colour(k)}`;
    legend.append(item);
  });
  box.append(legend);
  return box;
}

export interface RunInfo {
  threads: number;
  crossOriginIsolated: boolean;
}

/** Replaces `root`'s content with the result. */
export function renderResult(root: HTMLElement, r: ScoreResult, info: RunInfo): void {
  root.replaceChildren();
  const head = el('section', { class: 'score' });
  head.append(el('div', { class: 'big', id: 'score-value' }, r.score.toFixed(2)));
  const type = r.protocol.actionType;
  head.append(
    el(
      'p',
      {},
      `predicted score of ${r.input.path}: mean over ${r.exemplars.length} exemplar(s) ${
        type === undefined ? 'from the whole bank' : `of type ${type}`
      }; mean delta ${signed(r.delta)}; ${r.input.sourceFrames} source frames${
        r.input.fps ? ` at ${r.input.fps.toFixed(2)} fps` : ''
      }, ${r.input.sampled.length} sampled`,
    ),
  );
  root.append(head);
  if (r.warnings.length > 0) {
    const w = el('ul', { class: 'warnings' });
    for (const line of r.warnings) w.append(el('li', {}, line));
    root.append(w);
  }
  root.append(timeline(r));
  root.append(stageChart(r));
  const ex = el('section', { class: 'exemplars' });
  ex.append(el('h2', {}, 'Exemplars'));
  ex.append(table(exemplarTable(r).head, exemplarTable(r).rows));
  root.append(ex);
  const t = r.timings;
  const tm = el('section', { class: 'timings' });
  tm.append(el('h2', {}, 'Timings'));
  tm.append(
    table(
      ['decode', 'backbone', 'segmenter', 'pool', 'scorer', 'total', 'runtime'],
      [
        [
          ...[t.decodeMs, t.backboneMs, t.segmenterMs, t.poolMs, t.scorerMs, t.totalMs].map(
            (ms) => `${ms.toFixed(0)} ms`,
          ),
          `onnxruntime-web wasm, ${info.threads} thread(s)${info.crossOriginIsolated ? '' : ' (not isolated)'}`,
        ],
      ],
    ),
  );
  root.append(tm);
}
