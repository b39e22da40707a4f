/**
 * The eval report's charts as vega-lite specs (rendered by src/charts/svg.ts: headless SVG, PNG
 * through sharp). Three kinds:
 *   - predicted vs true score, one small multiple per method with the y = x line,
 *   - training curves, one small multiple per method: total loss and its terms per epoch,
 *   - a stage timeline: predicted and true stages as bars over the T sampled frames, above a strip
 *     of frame thumbnails placed on the same frame axis (the stage timeline of src/charts/specs.ts,
 *     which the score report and the browser page draw too).
 *
 * Example:
 *   const svg = await renderSvg(scatterSpec({ mcore: predictions }));
 *   const png = await svgToPng(svg, 2);   // twice the SVG's pixel size
 */
import type { TopLevelSpec } from 'vega-lite';
import { stageSegments, stageTimelineSpec, thumbnailFrames, timelineLayout } from '../charts/specs.ts';
import { McoreError } from '../errors.ts';
import type { EpochRecord } from '../train/trainer.ts';
import type { Prediction } from './evaluate.ts';

const PANEL = 200;
const COLUMNS = 3;

/** Loss terms in a fixed order so each keeps its colour across panels and reports. */
const TERM_ORDER = ['total', 'aqa', 'tas', 'cont', 'mse'];

/**
 * Predicted vs true score per method (one panel each, up to 3 per row). All panels share one domain
 * (the range of every prediction and truth, padded by 5%) so that spreads compare across methods.
 */
export function scatterSpec(predictions: Record<string, readonly Prediction[]>): TopLevelSpec {
  const values = Object.values(predictions).flatMap((ps) => ps.flatMap((p) => [p.pred, p.truth]));
  const finite = values.filter(Number.isFinite);
  const lo0 = finite.length > 0 ? Math.min(...finite) : 0;
  const hi0 = finite.length > 0 ? Math.max(...finite) : 1;
  const pad = Math.max((hi0 - lo0) * 0.05, 1e-6);
  const domain = [lo0 - pad, hi0 + pad];
  const panels = Object.entries(predictions).map(([method, ps]) => ({
    title: { text: method, fontSize: 12 },
    width: PANEL,
    height: PANEL,
    layer: [
      {
        data: { values: [{ v: domain[0] }, { v: domain[1] }] },
        mark: { type: 'line' as const, color: '#999', strokeDash: [4, 3], aria: false },
        encoding: {
          x: { field: 'v', type: 'quantitative' as const, scale: { domain }, title: 'true score' },
          y: { field: 'v', type: 'quantitative' as const, scale: { domain }, title: 'predicted score' },
        },
      },
      {
        data: { values: ps.map((p) => ({ key: p.key, truth: p.truth, pred: p.pred })) },
        mark: { type: 'point' as const, filled: true, size: 28, opacity: 0.7, color: '#4c78a8' },
        encoding: {
          x: { field: 'truth', type: 'quantitative' as const, scale: { domain } },
          y: { field: 'pred', type: 'quantitative' as const, scale: { domain } },
        },
      },
    ],
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Predicted vs true score (dashed: y = x)',
    columns: COLUMNS,
    concat: panels,
  } as TopLevelSpec;
}

/** Series of one training history: `total` plus every term that is neither all zero nor equal to total. */
export function curveSeries(history: readonly EpochRecord[]): { term: string; values: number[] }[] {
  const total = history.map((r) => r.loss);
  const series = [{ term: 'total', values: total }];
  const terms = [...new Set(history.flatMap((r) => Object.keys(r.terms)))].filter((t) => t !== 'total');
  terms.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  for (const term of terms) {
    const values = history.map((r) => r.terms[term] ?? Number.NaN);
    if (values.every((v) => v === 0)) continue;
    if (values.every((v, i) => Math.abs(v - total[i]) <= 1e-12 * Math.max(1, Math.abs(total[i])))) continue;
    series.push({ term, values });
  }
  return series;
}

function rank(term: string): number {
  const i = TERM_ORDER.indexOf(term);
  return i < 0 ? TERM_ORDER.length : i;
}

/** Log y when every plotted value is positive and they span at least a factor 10. */
export function useLogScale(series: readonly { values: number[] }[]): boolean {
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  if (all.length === 0 || all.some((v) => v <= 0)) return false;
  return Math.max(...all) / Math.min(...all) >= 10;
}

/** Per-epoch total loss and its terms, one panel per method (log y where the values span >= 10x). */
export function trainingCurvesSpec(histories: Record<string, readonly EpochRecord[]>): TopLevelSpec {
  const allTerms = new Set<string>();
  const panels = Object.entries(histories).map(([method, history]) => {
    const series = curveSeries(history);
    for (const s of series) allTerms.add(s.term);
    const log = useLogScale(series);
    const values = series.flatMap((s) =>
      s.values.map((value, i) => ({ epoch: history[i].epoch + 1, term: s.term, value })),
    );
    return {
      title: { text: log ? `${method} (log y)` : method, fontSize: 12 },
      width: PANEL,
      height: 150,
      data: { values: values.filter((v) => Number.isFinite(v.value)) },
      encoding: {
        x: {
          field: 'epoch',
          type: 'quantitative' as const,
          axis: { tickMinStep: 1, format: 'd' },
          scale: { nice: false },
        },
        y: {
          field: 'value',
          type: 'quantitative' as const,
          title: 'loss',
          scale: log ? { type: 'log' as const } : { zero: false },
        },
        color: { field: 'term', type: 'nominal' as const, title: 'term' },
      },
      layer: [
        { mark: { type: 'line' as const } },
        { mark: { type: 'point' as const, filled: true, size: 24 } },
      ],
    };
  });
  const domain = [...allTerms].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
  for (const p of panels) (p.encoding.color as Record<string, unknown>).scale = { domain };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Training loss per epoch',
    columns: COLUMNS,
    concat: panels,
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

export interface TimelineChart {
  title: string;
  stageNames: string[];
  T: number;
  /** K-1 predicted / true transitions on the T sampled frames. */
  predicted: number[];
  truth: number[];
  /** Frame thumbnails as image data URIs, one per sampled frame (empty: no strip). */
  thumbnails: string[];
  /** Thumbnail height / width ratio. */
  aspect: number;
}

/**
 * Stage bars (row 'predicted' above row 'true') over frames 0..T, and below them the thumbnails of
 * every `stride`-th sampled frame at that frame's position (see timelineLayout).
 */
export function timelineSpec(t: TimelineChart): TopLevelSpec {
  const K = t.stageNames.length;
  for (const [what, tr] of [
    ['predicted', t.predicted],
    ['truth', t.truth],
  ] as const) {
    if (tr.length !== K - 1)
      throw new McoreError(
        'E_INPUT',
        `timeline '${t.title}': ${what} has ${tr.length} transitions, expected ${K - 1} for ${K} stages`,
      );
  }
  if (t.thumbnails.length !== 0 && t.thumbnails.length !== t.T)
    throw new McoreError(
      'E_INPUT',
      `timeline '${t.title}': ${t.thumbnails.length} thumbnails for T = ${t.T} frames (need T or none)`,
    );
  const layout = timelineLayout(t.T);
  return stageTimelineSpec({
    title: t.title,
    stageNames: t.stageNames,
    T: t.T,
    rows: [
      { label: 'predicted', segments: stageSegments(t.predicted, t.T) },
      { label: 'true', segments: stageSegments(t.truth, t.T) },
    ],
    layout,
    thumbnails:
      t.thumbnails.length === 0
        ? []
        : thumbnailFrames(t.T, layout).map((frame) => ({ frame, url: t.thumbnails[frame] })),
    aspect: t.aspect,
  });
}
