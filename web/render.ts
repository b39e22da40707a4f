/**
 * The result view: what `mcore score --report` shows, as DOM — the predicted score, the stage timeline
 * over a strip of the sampled frames, the per-stage comparison with each exemplar, the exemplar table
 * and the timings. The two charts are the report's vega-lite specs (src/charts/specs.ts), compiled by
 * vega-lite and drawn by vega's View as SVG into their section (hover: vega's tooltips). Text goes in
 * through textContent only.
 */
import { parse, type Spec, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import {
  resultDeltaSpec,
  resultTimelineLayout,
  resultTimelineSpec,
  thumbnailFrames,
} from '../src/charts/specs.ts';
import { exemplarTable, type Frame, type ScoreResult, signed, stageTable } from '../src/score/core.ts';

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

/** A frame as a JPEG data URL `width` px wide. */
function thumbnail(f: Frame, width: number): string {
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
  const c = el('canvas', { width: String(width), height: String(Math.round((width * f.height) / f.width)) });
  c.getContext('2d')!.drawImage(src, 0, 0, c.width, c.height);
  return c.toDataURL('image/jpeg', 0.8);
}

/** The views on the page now; finalized (their listeners and timers gone) when the next result replaces them. */
let views: View[] = [];

/** Draws a vega-lite spec as SVG into `container`. */
async function drawChart(container: HTMLElement, spec: TopLevelSpec): Promise<void> {
  const view = new View(parse(compile(spec).spec as Spec), { renderer: 'svg', container, hover: true });
  views.push(view);
  await view.runAsync();
}

/** The stages over the sampled frames, above thumbnails of every stride-th frame; then the stage table. */
async function timeline(r: ScoreResult): Promise<HTMLElement> {
  const box = el('section', { class: 'timeline' });
  box.append(el('h2', {}, 'Stages'));
  const T = r.input.sampled.length;
  const layout = resultTimelineLayout(T);
  const frames = r.frames && r.frames.length === T ? r.frames : undefined;
  const urls = frames ? thumbnailFrames(T, layout).map((t) => thumbnail(frames[t], 2 * layout.thumb)) : [];
  const aspect = frames ? frames[0].height / frames[0].width : 0.75;
  const chart = el('div', { class: 'chart stagebar' });
  box.append(chart);
  await drawChart(chart, resultTimelineSpec(r, urls, aspect, layout));
  box.append(table(stageTable(r).head, stageTable(r).rows));
  return box;
}

/** Per stage, one bar per exemplar (what the stage adds to or takes off against it) and their mean. */
async function stageChart(r: ScoreResult): Promise<HTMLElement> {
  const box = el('section', { class: 'per-stage' });
  box.append(el('h2', {}, 'Per-stage comparison with each exemplar'));
  const chart = el('div', { class: 'chart stagechart' });
  box.append(chart);
  await drawChart(chart, resultDeltaSpec(r));
  return box;
}

export interface RunInfo {
  threads: number;
  crossOriginIsolated: boolean;
}

/** Replaces `root`'s content with the result (and finalizes the charts of the last one). */
export async function renderResult(root: HTMLElement, r: ScoreResult, info: RunInfo): Promise<void> {
  for (const v of views) v.finalize();
  views = [];
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
  root.append(await timeline(r));
  root.append(await stageChart(r));
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
