/**
 * A self-contained HTML report of one scored video (no external files, scripts or fonts): the
 * predicted score, the stage timeline over a strip of thumbnails of the sampled frames (small JPEG data
 * URIs through sharp), the per-stage comparison with each exemplar, and the stage and exemplar tables.
 * The two charts are the vega-lite specs the browser page draws too (src/charts/specs.ts), rendered
 * here to inline SVG with hover titles (src/charts/svg.ts).
 *
 * @example
 * const r = await bundle.score('dive.mp4', { keepFrames: true });
 * await writeScoreReport('dive.html', r, { title: 'dive.mp4' });
 */
import path from 'node:path';
import sharp from 'sharp';
import {
  colourOf,
  EXEMPLAR_COLOURS,
  resultDeltaSpec,
  resultTimelineLayout,
  resultTimelineSpec,
  STAGE_COLOURS,
  thumbnailFrames,
} from '../charts/specs.ts';
import { renderSvg } from '../charts/svg.ts';
import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { escapeHtml } from '../io/html.ts';
import { VERSION } from '../version.ts';
import type { ScoreResult } from './scorer.ts';

export interface ReportOptions {
  /** Page title (default: the input's file name). */
  title?: string;
  /** Thumbnails under the stage timeline (default 16; at most T). */
  thumbnails?: number;
}

function signed(x: number, digits = 2): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}`;
}

/** A frame as a JPEG data URI `width` px wide. */
async function thumbnail(frame: Frame, width: number): Promise<string> {
  const height = Math.max(1, Math.round((frame.height * width) / frame.width));
  const jpeg = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .resize(width, height, { fit: 'fill' })
    .jpeg({ quality: 75 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

/**
 * The stage timeline as inline SVG: the stages over the T sampled frames and, when the result kept its
 * frames, thumbnails of every stride-th frame below them (encoded at twice their drawn width).
 */
export async function timelineSvg(r: ScoreResult, thumbnails = 16): Promise<string> {
  const T = r.input.sampled.length;
  const layout = resultTimelineLayout(T, thumbnails);
  const frames = r.frames && r.frames.length === T ? r.frames : undefined;
  const uris = frames
    ? await Promise.all(thumbnailFrames(T, layout).map((t) => thumbnail(frames[t], 2 * layout.thumb)))
    : [];
  const aspect = frames ? frames[0].height / frames[0].width : 0.75;
  return renderSvg(resultTimelineSpec(r, uris, aspect, layout), { titles: true });
}

/** The per-stage comparison as inline SVG: per stage, one bar per exemplar and a dashed rule at the mean. */
export function stageChartSvg(r: ScoreResult): Promise<string> {
  return renderSvg(resultDeltaSpec(r), { titles: true });
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
.chart svg{display:block;max-width:100%;height:auto;margin:8px 0}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left} .dot{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
.warn{background:#fff4e5;border-left:4px solid #f28e2b;padding:6px 10px;font-size:13px}
`;

/** The report as one HTML string (thumbnails need `result.frames`, i.e. score with keepFrames). */
export async function renderReport(result: ScoreResult, opts: ReportOptions = {}): Promise<string> {
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
<div class="chart timeline">${await timelineSvg(result, opts.thumbnails)}</div>
<h2>Per-stage Δ against each exemplar</h2>
<div class="muted">Bars: the stage's relative score against one exemplar (mean regressor output over the stage's tokens, in score units); dashed line: mean over exemplars. The ${result.perStage.length} stage means average to the overall Δ.</div>
<div class="chart per-stage">${await stageChartSvg(result)}</div>
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
