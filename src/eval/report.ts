/**
 * The HTML report of a demo or evaluation run: metrics table, predicted vs true scores, training
 * curves, and stage timelines of a few test clips above their frames. `buildReport` turns the data
 * into one self-contained HTML string (inline CSS, charts as SVG data URIs) plus the chart SVGs;
 * `writeEvalReport` writes report.html, charts/*.svg and charts/*.png.
 *
 * Example (after a demo, see reportFromDemo):
 *   const keys = pickTimelineKeys(predictions.mcore, 4);
 *   const clips = await Promise.all(keys.map(async (key) => ({ key, frames: await cache.frames(key) })));
 *   await writeEvalReport('mcore-demo', reportFromDemo(results, predictions, clips, { stageNames }));
 *   // -> mcore-demo/report.html, mcore-demo/charts/{scores,training,timeline-1..4}.{svg,png}
 */
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { timelineLayout } from '../charts/specs.ts';
import { renderSvg, svgSize, svgToPng } from '../charts/svg.ts';
import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { escapeHtml as esc } from '../io/html.ts';
import type { EpochRecord } from '../train/trainer.ts';
import { scatterSpec, timelineSpec, trainingCurvesSpec } from './charts.ts';
import type { EvalMetrics, Prediction } from './evaluate.ts';
import { type ReferencePoints, TYPE_MEAN_MARGIN, WITHIN_TYPE_MIN } from './reference.ts';
import type { DemoResults } from './results.ts';

export type ReportMetrics = Pick<EvalMetrics, 'srcc' | 'rl2' | 'aiou50' | 'aiou75'> &
  Partial<Pick<EvalMetrics, 'srccDn' | 'srccNoDn' | 'withinTypeSrcc'>>;

export interface ReportMethod {
  metrics: ReportMetrics;
  history: EpochRecord[];
  predictions: Prediction[];
  /** Training + evaluation time of this method. */
  seconds?: number;
  /** honestyWarnings of this method (src/eval/reference.ts); shown under the table. */
  warnings?: string[];
}

/** One test clip's predicted vs true stages on its T sampled frames. */
export interface ReportTimeline {
  key: string;
  /** The method whose transitions are `predicted`. */
  method: string;
  stageNames: string[];
  T: number;
  /** K-1 predicted / ground-truth transitions on the sampled frames (first frame of stages 2..K). */
  predicted: number[];
  truth: number[];
  /** The T sampled frames (or none: no thumbnail strip). */
  frames: Frame[];
  score?: { pred: number; truth: number };
}

export interface ReportData {
  title: string;
  seed: number;
  /** Wall time of the whole run. */
  seconds: number;
  /** Where it ran, e.g. machineSummary(). */
  machine: string;
  config: Record<string, unknown>;
  /** Methods in table order, keyed by the names used in results.json. */
  methods: Record<string, ReportMethod>;
  /** The type-mean and ridge reference points of the split (rows below the methods). */
  references?: ReferencePoints;
  timelines: ReportTimeline[];
}

export interface ReportChart {
  /** File stem under charts/, e.g. 'scores', 'training', 'timeline-1'. */
  name: string;
  svg: string;
}

export interface BuiltReport {
  html: string;
  charts: ReportChart[];
}

/** This machine in one line: CPU count and model, OS, Node version. */
export function machineSummary(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.platform()} ${os.arch()}, Node ${process.version}`;
}

/** A metric with fixed decimals; NaN (not applicable) as '-'. */
export function formatMetric(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/**
 * Table cells as papers print them: SRCC, R-l2 x100, AIoU@0.5 and AIoU@0.75 (both already in percent),
 * then SRCC with action types, without, and within-type SRCC ('-' when absent).
 */
export function metricCells(m: ReportMetrics): string[] {
  return [
    formatMetric(m.srcc, 4),
    formatMetric(m.rl2 * 100, 4),
    formatMetric(m.aiou50, 2),
    formatMetric(m.aiou75, 2),
    formatMetric(m.srccDn ?? Number.NaN, 4),
    formatMetric(m.srccNoDn ?? Number.NaN, 4),
    formatMetric(m.withinTypeSrcc ?? Number.NaN, 4),
  ];
}

/**
 * Test clips for the timelines: `n` keys spread evenly over the range of true scores (lowest,
 * ..., highest), so the report shows weak and strong actions. Deterministic.
 */
export function pickTimelineKeys(predictions: readonly Prediction[], n = 4): string[] {
  const sorted = [...predictions].sort((a, b) => a.truth - b.truth || (a.key < b.key ? -1 : 1));
  if (sorted.length <= n) return sorted.map((p) => p.key);
  const picks = new Set<number>();
  for (let i = 0; i < n; i++) picks.add(Math.round((i * (sorted.length - 1)) / Math.max(1, n - 1)));
  return [...picks].map((i) => sorted[i].key);
}

/**
 * ReportData from runDemo's results plus what it does not keep: each method's test predictions and
 * the sampled frames of the timeline clips. Timelines show `timelineMethod` (default 'mcore', else the
 * first method that segments).
 */
export function reportFromDemo(
  results: DemoResults,
  predictions: Record<string, Prediction[]>,
  clips: readonly { key: string; frames: Frame[] }[],
  opts: { stageNames: string[]; timelineMethod?: string; title?: string; machine?: string },
): ReportData {
  const methods: Record<string, ReportMethod> = {};
  for (const [name, d] of Object.entries(results.details)) {
    methods[name] = {
      metrics: d.metrics,
      history: d.history,
      predictions: predictions[name] ?? [],
      seconds: d.seconds,
      ...(d.warnings ? { warnings: d.warnings } : {}),
    };
  }
  const segments = (name: string) =>
    (predictions[name]?.length ?? 0) > 0 && predictions[name].every((p) => p.transitions !== undefined);
  const method =
    opts.timelineMethod ??
    (segments('mcore') ? 'mcore' : Object.keys(predictions).find((name) => segments(name)));
  const timelines: ReportTimeline[] = [];
  if (clips.length > 0) {
    if (!method || !segments(method))
      throw new McoreError(
        'E_INPUT',
        `reportFromDemo: no segmenting method's predictions for the timelines (asked: '${method ?? 'none'}')`,
      );
    const byKey = new Map(predictions[method].map((p) => [p.key, p]));
    for (const c of clips) {
      const p = byKey.get(c.key);
      if (!p)
        throw new McoreError('E_INPUT', `reportFromDemo: clip '${c.key}' has no prediction from '${method}'`);
      timelines.push({
        key: c.key,
        method,
        stageNames: opts.stageNames,
        T: c.frames.length,
        predicted: p.transitions!,
        truth: p.trueTransitions,
        frames: c.frames,
        score: { pred: p.pred, truth: p.truth },
      });
    }
  }
  return {
    title: opts.title ?? 'mcore demo on SynthDive',
    seed: results.seed,
    seconds: results.seconds,
    machine: opts.machine ?? machineSummary(),
    config: results.config,
    methods,
    ...(results.references ? { references: results.references } : {}),
    timelines,
  };
}

/** Nested config -> [dotted key, value] rows (arrays printed inline). */
export function flattenConfig(config: Record<string, unknown>, prefix = ''): [string, string][] {
  const rows: [string, string][] = [];
  for (const [k, v] of Object.entries(config)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      rows.push(...flattenConfig(v as Record<string, unknown>, key));
    else rows.push([key, Array.isArray(v) ? `[${v.join(', ')}]` : String(v)]);
  }
  return rows;
}

/** A frame as a PNG data URI, `width` px wide (nearest-neighbour, so small frames stay crisp). */
async function thumbnail(frame: Frame, width: number): Promise<string> {
  if (frame.data.length !== frame.width * frame.height * 3)
    throw new McoreError(
      'E_SHAPE',
      `frame data has ${frame.data.length} bytes, expected ${frame.width} x ${frame.height} x 3`,
    );
  const height = Math.max(1, Math.round((width * frame.height) / frame.width));
  const png = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .resize(width, height, { kernel: 'nearest', fit: 'fill' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

function timelineTitle(t: ReportTimeline): string {
  const score = t.score
    ? `: predicted score ${t.score.pred.toFixed(2)}, true ${t.score.truth.toFixed(2)}`
    : '';
  return `${t.key} (${t.method})${score}`;
}

function metricsTableHtml(methods: Record<string, ReportMethod>, refs?: ReferencePoints): string {
  const names = Object.keys(methods);
  const best = (pick: (m: ReportMetrics) => number, lower: boolean) => {
    const vals = names.map((n) => pick(methods[n].metrics)).filter(Number.isFinite);
    return vals.length === 0 ? Number.NaN : lower ? Math.min(...vals) : Math.max(...vals);
  };
  const columns: [(m: ReportMetrics) => number, boolean][] = [
    [(m) => m.srcc, false],
    [(m) => m.rl2, true],
    [(m) => m.aiou50, false],
    [(m) => m.aiou75, false],
    [(m) => m.srccDn ?? Number.NaN, false],
    [(m) => m.srccNoDn ?? Number.NaN, false],
    [(m) => m.withinTypeSrcc ?? Number.NaN, false],
  ];
  const bests = columns.map(([pick, lower]) => best(pick, lower));
  const rows = names.map((name) => {
    const m = methods[name];
    const cells = metricCells(m.metrics).map((c, i) => {
      const isBest = names.length > 1 && columns[i][0](m.metrics) === bests[i];
      return `<td>${isBest ? `<b>${c}</b>` : c}</td>`;
    });
    const secs = m.seconds === undefined ? '-' : m.seconds.toFixed(0);
    return `<tr><th>${esc(name)}</th>${cells.join('')}<td>${m.predictions.length}</td><td>${secs}</td></tr>`;
  });
  if (refs) {
    const t = refs.typeMean;
    const r = refs.ridge;
    const cells = (xs: string[]) => xs.map((x) => `<td>${x}</td>`).join('');
    const f = formatMetric;
    rows.push(
      `<tr class="ref"><th>(type-mean predictor)</th>${cells([f(t.srcc, 4), f(t.rl2 * 100, 4), '-', '-', f(t.srcc, 4), '-', f(t.withinTypeSrcc, 4)])}<td></td><td></td></tr>`,
      `<tr class="ref"><th>(ridge on ${r.input}, ${r.dims} values)</th>${cells([f(r.srcc, 4), f(r.rl2 * 100, 4), '-', '-', '-', f(r.srcc, 4), f(r.withinTypeSrcc, 4)])}<td></td><td></td></tr>`,
    );
  }
  return `<table class="metrics">
<thead><tr><th>method</th><th>SRCC</th><th>R-&#8467;2 x100</th><th>AIoU@0.5 %</th><th>AIoU@0.75 %</th><th>SRCC dn</th><th>SRCC no-dn</th><th>within-type SRCC</th><th>test clips</th><th>seconds</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

/** The warnings of every method, as a list under the table (empty string when there are none). */
function warningsHtml(methods: Record<string, ReportMethod>): string {
  const items = Object.entries(methods).flatMap(([name, m]) =>
    (m.warnings ?? []).map((w) => `<li><b>${esc(name)}</b>: ${esc(w)}</li>`),
  );
  return items.length === 0
    ? ''
    : `<div class="warnings"><p><b>Warning</b>: these models do not clearly beat the reference points on this split.</p>\n<ul>\n${items.join('\n')}\n</ul></div>`;
}

function figure(chart: ReportChart, caption: string): string {
  const { width } = svgSize(chart.svg);
  const uri = `data:image/svg+xml;base64,${Buffer.from(chart.svg).toString('base64')}`;
  return `<figure><img src="${uri}" width="${width}" alt="${esc(caption)}"><figcaption>${esc(caption)} (<a href="charts/${chart.name}.svg">svg</a>, <a href="charts/${chart.name}.png">png</a>)</figcaption></figure>`;
}

const CSS = `body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.meta{color:#555;margin:.2em 0}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right}th:first-child{text-align:left}
table.config td{text-align:left;font-family:monospace}figure{margin:1em 0}figcaption{color:#666;font-size:.85em}
img{max-width:100%;height:auto}details{margin:.5em 0}tr.ref th,tr.ref td{color:#666;font-style:italic}
.warnings{background:#fff4e5;border-left:4px solid #e69500;padding:.3em 1em;margin:1em 0}`;

/**
 * The report as one self-contained HTML string (charts embedded as SVG data URIs) plus the chart SVGs
 * (`scores`, `training`, `timeline-1`...). Methods without predictions or history are left out of
 * the corresponding chart.
 */
export async function buildReport(data: ReportData): Promise<BuiltReport> {
  const names = Object.keys(data.methods);
  if (names.length === 0) throw new McoreError('E_INPUT', 'buildReport: no methods to report');
  const charts: ReportChart[] = [];
  const sections: string[] = [];

  const predictions = Object.fromEntries(
    names.filter((n) => data.methods[n].predictions.length > 0).map((n) => [n, data.methods[n].predictions]),
  );
  if (Object.keys(predictions).length > 0) {
    const chart = { name: 'scores', svg: await renderSvg(scatterSpec(predictions)) };
    charts.push(chart);
    sections.push(`<h2>Predicted vs true score</h2>\n${figure(chart, 'Test predictions per method')}`);
  }

  const histories = Object.fromEntries(
    names.filter((n) => data.methods[n].history.length > 0).map((n) => [n, data.methods[n].history]),
  );
  if (Object.keys(histories).length > 0) {
    const chart = { name: 'training', svg: await renderSvg(trainingCurvesSpec(histories)) };
    charts.push(chart);
    sections.push(`<h2>Training curves</h2>\n${figure(chart, 'Mean training loss per epoch')}`);
  }

  if (data.timelines.length > 0) {
    const figs: string[] = [];
    for (const [i, t] of data.timelines.entries()) {
      if (t.frames.length !== 0 && t.frames.length !== t.T)
        throw new McoreError('E_INPUT', `timeline '${t.key}': ${t.frames.length} frames for T = ${t.T}`);
      const { thumb } = timelineLayout(t.T);
      const thumbnails = await Promise.all(t.frames.map((f) => thumbnail(f, thumb)));
      const aspect = t.frames.length > 0 ? t.frames[0].height / t.frames[0].width : 1;
      const spec = timelineSpec({
        title: timelineTitle(t),
        stageNames: t.stageNames,
        T: t.T,
        predicted: t.predicted,
        truth: t.truth,
        thumbnails,
        aspect,
      });
      const chart = { name: `timeline-${i + 1}`, svg: await renderSvg(spec) };
      charts.push(chart);
      figs.push(figure(chart, `Stages of ${t.key}: predicted (top) vs true, over its ${t.T} sampled frames`));
    }
    sections.push(`<h2>Stage timelines</h2>\n${figs.join('\n')}`);
  }

  const config = flattenConfig(data.config)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`)
    .join('\n');
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(data.title)}</title>
<style>
${CSS}
</style>
</head>
<body>
<h1>${esc(data.title)}</h1>
<p class="meta">seed ${data.seed} &middot; ${data.seconds.toFixed(0)} s &middot; ${esc(data.machine)}</p>
<details><summary>Configuration (${flattenConfig(data.config).length} settings)</summary>
<table class="config">
${config}
</table>
</details>
<h2>Metrics</h2>
${metricsTableHtml(data.methods, data.references)}
${warningsHtml(data.methods)}
<p class="meta">SRCC: Spearman rank correlation of predicted and true scores with the chosen exemplar protocol; SRCC dn / no-dn: with exemplars of the query's action type / from the whole training split (the action type unused); within-type SRCC: the clip-count-weighted mean, over the action types with at least 3 test clips, of the SRCC within each type (how well execution is ranked once the type is known; a constant within a type counts 0); R-&#8467;2: mean squared error relative to the range of true scores; AIoU@&tau;: percent of test clips whose predicted middle interval (first to last transition: the flight) has temporal IoU &ge; &tau; with the true one ('-': the method does not segment). Reference points on the same split: the type-mean predictor (training mean score of the clip's action type) and ridge regression on the run's input (lambda by 5-fold cross-validation on the training split). A model is warned about when its within-type SRCC is below ${WITHIN_TYPE_MIN}, its SRCC dn is not above the type-mean predictor's by ${TYPE_MEAN_MARGIN}, or its SRCC no-dn is not above the ridge's.</p>
${sections.join('\n')}
</body>
</html>
`;
  return { html, charts };
}

/**
 * Writes `dir`/report.html and every chart as `dir`/charts/NAME.svg and NAME.png (`pngScale` times
 * the SVG's pixel size). Returns the paths written.
 */
export async function writeEvalReport(
  dir: string,
  data: ReportData,
  opts: { pngScale?: number } = {},
): Promise<{ html: string; files: string[] }> {
  const built = await buildReport(data);
  const chartDir = path.join(dir, 'charts');
  await mkdir(chartDir, { recursive: true });
  const files: string[] = [];
  for (const c of built.charts) {
    const svgFile = path.join(chartDir, `${c.name}.svg`);
    const pngFile = path.join(chartDir, `${c.name}.png`);
    await writeFileAtomic(svgFile, c.svg);
    await writeFileAtomic(pngFile, await svgToPng(c.svg, opts.pngScale ?? 2));
    files.push(svgFile, pngFile);
  }
  const html = path.join(dir, 'report.html');
  await writeFileAtomic(html, built.html);
  return { html, files };
}
