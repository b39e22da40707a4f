/**
 * A self-contained HTML report of one scored video (no external files, scripts or fonts): the
 * predicted score, a stage timeline over a strip of thumbnails of the sampled frames (small JPEG data
 * URIs through sharp), the per-stage comparison with each exemplar as an inline SVG bar chart, and the
 * stage and exemplar tables.
 *
 * @example
 * const r = await bundle.score('dive.mp4', { keepFrames: true });
 * await writeScoreReport('dive.html', r, { title: 'dive.mp4' });
 */
import path from 'node:path';
import sharp from 'sharp';
import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { escapeHtml } from '../io/html.ts';
import { VERSION } from '../version.ts';
import type { ScoreResult } from './scorer.ts';

export interface ReportOptions {
  /** Page title (default: the input's file name). */
  title?: string;
  /** Thumbnails in the strip (default 16; at most T). */
  thumbnails?: number;
  /** Thumbnail height in pixels (default 72). */
  thumbHeight?: number;
}

/** Stage colours (and exemplar colours in the chart): a qualitative palette readable on white. */
const STAGE_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948'];
const EXEMPLAR_COLOURS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

function signed(x: number, digits = 2): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}`;
}

function colourOf(palette: readonly string[], i: number): string {
  return palette[i % palette.length];
}

async function thumbnail(frame: Frame, height: number): Promise<string> {
  const width = Math.max(1, Math.round((frame.width * height) / frame.height));
  const jpeg = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .jpeg({ quality: 75 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

/** Index of the stage holding sampled frame `t`. */
function stageOf(r: ScoreResult, t: number): number {
  const s = r.stages.findIndex((st) => t >= st.start && t < st.end);
  return s < 0 ? r.stages.length - 1 : s;
}

function rangeText(r: ScoreResult, s: number): string {
  const st = r.stages[s];
  const sec =
    st.startSec !== undefined && st.endSec !== undefined
      ? `, ${st.startSec.toFixed(2)}–${st.endSec.toFixed(2)} s`
      : '';
  return `sampled ${st.start}–${st.end - 1}, source frames ${st.sourceStart}–${st.sourceEnd - 1}${sec}`;
}

async function timeline(r: ScoreResult, o: Required<Omit<ReportOptions, 'title'>>): Promise<string> {
  const T = r.input.sampled.length;
  const bands = r.stages
    .map((st, s) => {
      const left = (100 * st.start) / T;
      const width = (100 * (st.end - st.start)) / T;
      return (
        `<div class="band" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%;` +
        `background:${colourOf(STAGE_COLOURS, s)}" title="${escapeHtml(rangeText(r, s))}">` +
        `${escapeHtml(st.name)}</div>`
      );
    })
    .join('');
  let strip = '';
  if (r.frames && r.frames.length === T) {
    const n = Math.max(1, Math.min(o.thumbnails, T));
    const picks = Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) * T) / n));
    const uris = await Promise.all(picks.map((t) => thumbnail(r.frames![t], o.thumbHeight)));
    strip = `<div class="strip">${picks
      .map((t, i) => {
        const s = stageOf(r, t);
        const src = r.input.sampled[t];
        return (
          `<figure style="border-bottom-color:${colourOf(STAGE_COLOURS, s)}">` +
          `<img src="${uris[i]}" alt="sampled frame ${t}" height="${o.thumbHeight}">` +
          `<figcaption>${t} · src ${src}</figcaption></figure>`
        );
      })
      .join('')}</div>`;
  }
  return `<div class="timeline"><div class="bands">${bands}</div>${strip}</div>`;
}

/** The per-stage comparison as a grouped bar chart: one group per stage, one bar per exemplar. */
export function stageChart(r: ScoreResult): string {
  const K = r.perStage.length;
  const M = r.exemplars.length;
  const width = 760;
  const height = 300;
  const pad = { left: 56, right: 16, top: 16, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const all = r.perStage.flatMap((s) => s.deltas.map((d) => d.delta));
  const maxAbs = Math.max(1e-9, ...all.map(Math.abs));
  const y = (v: number) => pad.top + plotH / 2 - (v / maxAbs) * (plotH / 2);
  const groupW = plotW / K;
  const barW = (groupW * 0.8) / Math.max(1, M);
  const parts: string[] = [];
  for (const v of [-maxAbs, -maxAbs / 2, 0, maxAbs / 2, maxAbs]) {
    const yy = y(v).toFixed(1);
    parts.push(
      `<line x1="${pad.left}" x2="${width - pad.right}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#333' : '#ddd'}"/>`,
      `<text x="${pad.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${signed(v)}</text>`,
    );
  }
  r.perStage.forEach((st, s) => {
    const gx = pad.left + s * groupW + groupW * 0.1;
    st.deltas.forEach((d, e) => {
      const top = Math.min(y(d.delta), y(0));
      const h = Math.max(0.5, Math.abs(y(d.delta) - y(0)));
      parts.push(
        `<rect x="${(gx + e * barW).toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(1, barW - 1).toFixed(1)}" ` +
          `height="${h.toFixed(1)}" fill="${colourOf(EXEMPLAR_COLOURS, e)}">` +
          `<title>${escapeHtml(`${st.stage} vs ${d.exemplar}: ${signed(d.delta, 3)}`)}</title></rect>`,
      );
    });
    const my = y(st.mean).toFixed(1);
    parts.push(
      `<line x1="${gx.toFixed(1)}" x2="${(gx + groupW * 0.8).toFixed(1)}" y1="${my}" y2="${my}" stroke="#000" stroke-width="2" stroke-dasharray="5 3"><title>${escapeHtml(`${st.stage}: mean ${signed(st.mean, 3)}`)}</title></line>`,
      `<text x="${(gx + groupW * 0.4).toFixed(1)}" y="${height - pad.bottom + 18}" text-anchor="middle" fill="${colourOf(STAGE_COLOURS, s)}" font-weight="bold">${escapeHtml(st.stage)} (${signed(st.mean)})</text>`,
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="12" role="img" aria-label="per-stage delta against each exemplar">` +
    `${parts.join('')}</svg>`
  );
}

function tables(r: ScoreResult): string {
  const stageRows = r.stages
    .map(
      (st, s) =>
        `<tr><td><span class="dot" style="background:${colourOf(STAGE_COLOURS, s)}"></span>${escapeHtml(st.name)}</td>` +
        `<td>${st.start}–${st.end - 1}</td><td>${st.sourceStart}–${st.sourceEnd - 1}</td>` +
        `<td>${st.startSec !== undefined && st.endSec !== undefined ? `${st.startSec.toFixed(2)}–${st.endSec.toFixed(2)}` : '–'}</td>` +
        `<td>${signed(r.perStage[s].mean, 3)}</td></tr>`,
    )
    .join('');
  const exRows = r.exemplars
    .map(
      (e, i) =>
        `<tr><td><span class="dot" style="background:${colourOf(EXEMPLAR_COLOURS, i)}"></span>${escapeHtml(e.key)}</td>` +
        `<td>${escapeHtml(e.actionType)}</td><td>${e.score.toFixed(2)}</td><td>${signed(e.delta, 3)}</td>` +
        `<td>${e.predicted.toFixed(2)}</td>` +
        r.perStage.map((st) => `<td>${signed(st.deltas[i].delta, 3)}</td>`).join('') +
        '</tr>',
    )
    .join('');
  const stageHeads = r.perStage.map((st) => `<th>Δ ${escapeHtml(st.stage)}</th>`).join('');
  return (
    `<h2>Stages</h2><table><tr><th>stage</th><th>sampled frames</th><th>source frames</th><th>seconds</th><th>mean Δ</th></tr>${stageRows}</table>` +
    `<h2>Exemplars</h2><table><tr><th>exemplar</th><th>type</th><th>score</th><th>Δ</th><th>score + Δ</th>${stageHeads}</tr>${exRows}</table>`
  );
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.score{font-size:40px;font-weight:bold;margin:8px 0} .muted{color:#666;font-size:13px}
.timeline{position:relative;margin:8px 0} .bands{position:relative;height:24px;margin-bottom:4px}
.band{position:absolute;top:0;height:24px;color:#fff;font-size:12px;line-height:24px;text-align:center;overflow:hidden;white-space:nowrap;box-sizing:border-box;border-right:1px solid #fff}
.strip{display:flex;gap:2px;overflow-x:auto} figure{margin:0;border-bottom:4px solid;text-align:center}
figure img{display:block} figcaption{font-size:10px;color:#666}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left} .dot{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
.warn{background:#fff4e5;border-left:4px solid #f28e2b;padding:6px 10px;font-size:13px}
`;

/** The report as one HTML string (thumbnails need `result.frames`, i.e. score with keepFrames). */
export async function renderReport(result: ScoreResult, opts: ReportOptions = {}): Promise<string> {
  const o = { thumbnails: opts.thumbnails ?? 16, thumbHeight: opts.thumbHeight ?? 72 };
  const title = opts.title ?? path.basename(result.input.path);
  const type = result.protocol.actionType;
  const protocol =
    `${result.exemplars.length} exemplar(s) ${type === undefined ? 'from the whole bank (without action type)' : `of action type ${escapeHtml(type)}`}` +
    ` out of ${result.protocol.pool}, seed ${result.protocol.seed}`;
  const fps = result.input.fps !== undefined ? `, ${result.input.fps.toFixed(2)} fps` : '';
  const warnings = result.warnings.map((w) => `<div class="warn">${escapeHtml(w)}</div>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mcore score: ${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<div class="muted">${escapeHtml(result.input.path)} (${result.input.kind}, ${result.input.sourceFrames} frames${fps}; ${result.input.sampled.length} sampled)</div>
<div class="score">${result.score.toFixed(2)}</div>
<div class="muted">mean over ${protocol}: exemplar score + Δ; mean Δ ${signed(result.delta, 3)}</div>
${warnings}
<h2>Stage timeline</h2>
${await timeline(result, o)}
<h2>Per-stage Δ against each exemplar</h2>
<div class="muted">Bars: the stage's relative score against one exemplar (mean regressor output over the stage's tokens, in score units); dashed line: mean over exemplars. The ${result.perStage.length} stage means average to the overall Δ.</div>
${stageChart(result)}
${tables(result)}
<p class="muted">mcore ${VERSION} · decode ${result.timings.decodeMs.toFixed(0)} ms, backbone ${result.timings.backboneMs.toFixed(0)} ms, segmenter ${result.timings.segmenterMs.toFixed(0)} ms, scorer ${result.timings.scorerMs.toFixed(0)} ms</p>
</body></html>
`;
}

/** Writes the report to `file`. A write failure: E_INPUT naming the file. */
export async function writeScoreReport(
  file: string,
  result: ScoreResult,
  opts: ReportOptions = {},
): Promise<void> {
  const html = await renderReport(result, opts);
  try {
    await writeFileAtomic(file, html);
  } catch (e) {
    throw new McoreError('E_INPUT', `--report ${file}: cannot write the report (${(e as Error).message})`);
  }
}
