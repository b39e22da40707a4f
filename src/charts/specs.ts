/**
 * The stage charts as vega-lite specs, runtime-neutral: no Node built-in, no renderer, only vega-lite's
 * types (test/charts/specs.test.ts bundles this file for a browser and checks). The same spec is drawn
 * by Node (./svg.ts: vega headless to an SVG string, PNG through sharp) for `mcore score --report` and
 * the eval report, and by vega's View in the browser for the page of `mcore serve` (web/render.ts).
 *   - stageTimelineSpec: stage bars (one row per labelled segmentation, e.g. predicted above true) over
 *     the T sampled frames, above a strip of frame thumbnails placed on the same frame axis;
 *   - stageDeltaSpec: per stage, one bar per exemplar (its per-stage delta) and a dashed rule at the
 *     mean over the exemplars.
 * resultTimelineSpec and resultDeltaSpec build them from a score result (what the report and the page show).
 *
 * @example
 * const svg = await renderSvg(resultDeltaSpec(result));                // Node (./svg.ts)
 * await renderChart(element, resultTimelineSpec(result, thumbnails));  // browser (web/render.ts)
 */
import type { TopLevelSpec } from 'vega-lite';
import { McoreError } from '../errors.ts';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Stage colours (tableau10), in stage order; tables beside the charts use the same. */
export const STAGE_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948'];
/** Exemplar colours (category10), in exemplar order. */
export const EXEMPLAR_COLOURS = [
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

/** Colour `i` of a palette, cycling (as vega's ordinal scales do). */
export function colourOf(palette: readonly string[], i: number): string {
  return palette[i % palette.length];
}

/** x with its sign: '+0.12' / '-1.50'; what rounds to zero is '+0.00'. */
function signed(x: number, digits: number): string {
  const text = Math.abs(x).toFixed(digits);
  return `${x >= 0 || Number(text) === 0 ? '+' : '-'}${text}`;
}

/** One contiguous stage on the sampled frames: frames [start, end) belong to stage `stage`. */
export interface StageSegment {
  stage: number;
  start: number;
  end: number;
}

/** K-1 transitions on T frames -> K segments [0, t0), [t0, t1), ..., [t_{K-2}, T). */
export function stageSegments(transitions: readonly number[], T: number): StageSegment[] {
  const bounds = [0, ...transitions, T];
  for (let i = 1; i < bounds.length; i++) {
    if (!(bounds[i] > bounds[i - 1]) || !Number.isInteger(bounds[i]))
      throw new McoreError(
        'E_INPUT',
        `stage transitions [${transitions.join(', ')}] must be strictly increasing integers in [1, ${T})`,
      );
  }
  return bounds.slice(1).map((end, k) => ({ stage: k, start: bounds[k], end }));
}

/** Pixels per frame (`cell`), frame-axis width, and every `stride`-th frame's thumbnail `thumb` px wide. */
export interface TimelineLayout {
  width: number;
  cell: number;
  stride: number;
  thumb: number;
}

/**
 * Layout of a timeline of T frames about `width` px wide (default 640): 4-40 px per frame, thumbnails at
 * least `minThumb` px wide (default 32) and, given `thumbnails`, at most that many.
 */
export function timelineLayout(
  T: number,
  o: { width?: number; minThumb?: number; thumbnails?: number } = {},
): TimelineLayout {
  const cell = Math.max(4, Math.min(40, Math.floor((o.width ?? 640) / T)));
  const n = Math.max(1, Math.min(o.thumbnails ?? T, T));
  const stride = Math.max(Math.ceil((o.minThumb ?? 32) / cell), Math.ceil(T / n));
  return { width: cell * T, cell, stride, thumb: cell * stride };
}

/** The frames whose thumbnails a layout shows: 0, stride, 2 stride, ... < T. */
export function thumbnailFrames(T: number, layout: TimelineLayout): number[] {
  const frames: number[] = [];
  for (let i = 0; i < T; i += layout.stride) frames.push(i);
  return frames;
}

/** A segment to draw: its stage, frames [start, end) and the text of its tooltip. */
export interface TimelineSegment extends StageSegment {
  tooltip?: string;
}

export interface StageTimeline {
  title?: string;
  stageNames: readonly string[];
  T: number;
  /** Rows from top to bottom, each a segmentation of the T frames (e.g. 'predicted', 'true'). */
  rows: readonly { label: string; segments: readonly TimelineSegment[] }[];
  layout: TimelineLayout;
  /** Thumbnails (image URLs), each drawn from its frame over `layout.thumb` px; none: no strip. */
  thumbnails: readonly { frame: number; url: string; tooltip?: string }[];
  /** Thumbnail height / width. */
  aspect: number;
}

/** Pixel height of one stage row. */
const ROW = 25;

/**
 * Stage bars, one row per entry of `rows` (named on the y axis when there are several), over frames
 * 0..T; each bar carries its stage's name when it fits and its tooltip. Below, the thumbnails on the
 * same frame axis.
 */
export function stageTimelineSpec(t: StageTimeline): TopLevelSpec {
  const K = t.stageNames.length;
  const { width, cell, thumb } = t.layout;
  const bars = t.rows.flatMap((row) =>
    row.segments.map((s) => {
      if (!(s.stage >= 0 && s.stage < K && s.start >= 0 && s.end > s.start && s.end <= t.T))
        throw new McoreError(
          'E_INPUT',
          `timeline row '${row.label}': segment of stage ${s.stage} over [${s.start}, ${s.end}) is outside ${K} stages x ${t.T} frames`,
        );
      const name = t.stageNames[s.stage];
      return {
        row: row.label,
        stage: name,
        start: s.start,
        end: s.end,
        mid: (s.start + s.end) / 2,
        // About 7 px per character at font size 11: the name only where it fits inside the bar.
        label: (s.end - s.start) * cell >= 7 * name.length + 6 ? name : '',
        tooltip: s.tooltip ?? `${name}: sampled frames ${s.start}-${s.end - 1}`,
      };
    }),
  );
  const x = { type: 'quantitative' as const, scale: { domain: [0, t.T], nice: false, zero: false } };
  const y = {
    field: 'row',
    type: 'nominal' as const,
    sort: t.rows.map((r) => r.label),
    title: null,
    ...(t.rows.length > 1 ? {} : { axis: null }),
  };
  const stagesView = {
    width,
    height: ROW * t.rows.length,
    data: { values: bars },
    layer: [
      {
        name: 'stageBars',
        mark: { type: 'rect' as const, stroke: 'white', strokeWidth: 1 },
        encoding: {
          x: { ...x, field: 'start', title: 'sampled frame', axis: { tickMinStep: 1, format: 'd' } },
          x2: { field: 'end' },
          y,
          color: {
            field: 'stage',
            type: 'nominal' as const,
            sort: [...t.stageNames],
            scale: { domain: [...t.stageNames], range: STAGE_COLOURS },
            title: 'stage',
          },
          tooltip: { field: 'tooltip', type: 'nominal' as const },
          description: { field: 'tooltip', type: 'nominal' as const },
        },
      },
      {
        name: 'stageLabels',
        mark: { type: 'text' as const, color: 'white', fontSize: 11, aria: false },
        encoding: { x: { ...x, field: 'mid' }, y, text: { field: 'label' } },
      },
    ],
  };
  const views: object[] = [stagesView];
  if (t.thumbnails.length > 0) {
    const h = Math.round(thumb * t.aspect);
    views.push({
      name: 'thumbnails',
      width,
      height: h,
      data: {
        values: t.thumbnails.map((th) => ({
          frame: th.frame,
          url: th.url,
          tooltip: th.tooltip ?? `sampled frame ${th.frame}`,
        })),
      },
      mark: { type: 'image' as const, width: thumb, height: h, align: 'left', baseline: 'top' },
      encoding: {
        x: { ...x, field: 'frame', axis: null },
        y: { value: 0 },
        url: { field: 'url', type: 'nominal' as const },
        tooltip: { field: 'tooltip', type: 'nominal' as const },
        description: { field: 'tooltip', type: 'nominal' as const },
      },
    });
  }
  return {
    $schema: SCHEMA,
    ...(t.title ? { title: { text: t.title, fontSize: 12 } } : {}),
    spacing: 4,
    vconcat: views,
    resolve: { scale: { x: 'shared' } },
    config: { view: { stroke: null } },
  } as TopLevelSpec;
}

/** One stage's comparison: each exemplar's delta and their mean (a StageComparison of the score result). */
export interface StageDeltas {
  stage: string;
  deltas: readonly { exemplar: string; delta: number }[];
  mean: number;
}

/**
 * Per stage (x, labelled with its mean), one bar per exemplar (its delta, coloured by exemplar in the
 * order of the first stage) and a dashed rule at the mean; a solid rule at 0. Tooltips: 'flight vs
 * ex-3: +0.123', 'flight: mean +0.045'.
 */
export function stageDeltaSpec(perStage: readonly StageDeltas[]): TopLevelSpec {
  const exemplars = (perStage[0]?.deltas ?? []).map((d) => d.exemplar);
  for (const s of perStage) {
    if (s.deltas.length !== exemplars.length || s.deltas.some((d, e) => d.exemplar !== exemplars[e]))
      throw new McoreError(
        'E_INPUT',
        `stage '${s.stage}' compares with [${s.deltas.map((d) => d.exemplar).join(', ')}], the first stage with [${exemplars.join(', ')}]`,
      );
  }
  const group = (s: StageDeltas) => `${s.stage} (${signed(s.mean, 2)})`;
  const groups = perStage.map(group);
  const bars = perStage.flatMap((s) =>
    s.deltas.map((d) => ({
      group: group(s),
      stage: s.stage,
      exemplar: d.exemplar,
      delta: d.delta,
      tooltip: `${s.stage} vs ${d.exemplar}: ${signed(d.delta, 3)}`,
    })),
  );
  const means = perStage.map((s) => ({
    group: group(s),
    mean: s.mean,
    tooltip: `${s.stage}: mean ${signed(s.mean, 3)}`,
  }));
  const x = {
    field: 'group',
    type: 'nominal' as const,
    sort: groups,
    scale: { domain: groups, paddingInner: 0.2 },
    title: null,
    axis: { labelAngle: 0, labelFontWeight: 'bold' as const },
  };
  const y = { type: 'quantitative' as const, title: 'Δ (score units)' };
  return {
    $schema: SCHEMA,
    width: 640,
    height: 240,
    layer: [
      {
        name: 'zero',
        data: { values: [{ zero: 0 }] },
        mark: { type: 'rule' as const, color: '#333', aria: false },
        encoding: { y: { ...y, field: 'zero' } },
      },
      {
        name: 'deltaBars',
        data: { values: bars },
        mark: { type: 'bar' as const },
        encoding: {
          x,
          xOffset: {
            field: 'exemplar',
            type: 'nominal' as const,
            sort: exemplars,
            scale: { domain: exemplars },
          },
          y: { ...y, field: 'delta' },
          color: {
            field: 'exemplar',
            type: 'nominal' as const,
            sort: exemplars,
            scale: { domain: exemplars, range: EXEMPLAR_COLOURS },
            title: 'exemplar',
          },
          tooltip: { field: 'tooltip', type: 'nominal' as const },
          description: { field: 'tooltip', type: 'nominal' as const },
        },
      },
      {
        name: 'deltaMeans',
        data: { values: means },
        mark: { type: 'rule' as const, color: '#000', strokeWidth: 2, strokeDash: [5, 3] },
        encoding: {
          x: { ...x, bandPosition: 0 },
          x2: { field: 'group', bandPosition: 1 },
          y: { ...y, field: 'mean' },
          tooltip: { field: 'tooltip', type: 'nominal' as const },
          description: { field: 'tooltip', type: 'nominal' as const },
        },
      },
    ],
    config: { view: { stroke: null } },
  } as TopLevelSpec;
}

/** What the result charts read of a score result (a structural part of ScoreResult). */
export interface ChartedResult {
  input: { sampled: readonly number[] };
  stages: readonly {
    name: string;
    start: number;
    end: number;
    sourceStart: number;
    sourceEnd: number;
    startSec?: number;
    endSec?: number;
  }[];
  perStage: readonly StageDeltas[];
}

/** Layout of a score result's timeline: about 800 px of frame axis, at most `thumbnails` (default 16). */
export function resultTimelineLayout(T: number, thumbnails = 16): TimelineLayout {
  return timelineLayout(T, { width: 800, minThumb: 40, thumbnails });
}

/**
 * A score result's stages over its T sampled frames (tooltip: sampled and source frames, seconds), above
 * `thumbnails` (URLs of the frames thumbnailFrames(T, layout) lists, or none) of height/width `aspect`.
 */
export function resultTimelineSpec(
  r: ChartedResult,
  thumbnails: readonly string[] = [],
  aspect = 0.75,
  layout: TimelineLayout = resultTimelineLayout(r.input.sampled.length),
): TopLevelSpec {
  const T = r.input.sampled.length;
  const frames = thumbnailFrames(T, layout);
  if (thumbnails.length !== 0 && thumbnails.length !== frames.length)
    throw new McoreError(
      'E_INPUT',
      `timeline: ${thumbnails.length} thumbnails for the ${frames.length} frames [${frames.join(', ')}] (need those or none)`,
    );
  const segments = r.stages.map((st, k) => {
    const sec =
      st.startSec !== undefined && st.endSec !== undefined
        ? `, ${st.startSec.toFixed(2)}-${st.endSec.toFixed(2)} s`
        : '';
    return {
      stage: k,
      start: st.start,
      end: st.end,
      tooltip: `${st.name}: sampled ${st.start}-${st.end - 1}, source frames ${st.sourceStart}-${st.sourceEnd - 1}${sec}`,
    };
  });
  return stageTimelineSpec({
    stageNames: r.stages.map((s) => s.name),
    T,
    rows: [{ label: 'stages', segments }],
    layout,
    thumbnails: thumbnails.map((url, i) => ({
      frame: frames[i],
      url,
      tooltip: `sampled frame ${frames[i]} (source frame ${r.input.sampled[frames[i]]})`,
    })),
    aspect,
  });
}

/** A score result's per-stage comparison with each exemplar. */
export function resultDeltaSpec(r: ChartedResult): TopLevelSpec {
  return stageDeltaSpec(r.perStage);
}
