/**
 * `mcore data check MANIFEST.json|MANIFEST.csv|synthdive[:...]`: every problem of a manifest, one a line
 * naming its clip (all of them, not the first 20 of a training error), or when there are none a summary of
 * the dataset: clips per split, stage names (K, as training takes it), action types, scores, difficulty,
 * frames and stage lengths. Exit codes: 0 clean, 1 problems found, 2 bad arguments.
 *
 * @example
 * mcore data check vaults.csv
 * // dataset      vaults (manifest /data/vaults.csv)
 * // clips        400 (train 300, test 100)
 * // stages       4: run-up, flight, landing, finish (model.stages = 4)
 * // ...
 * // problems     none
 */
import { checkManifest } from '../data/manifest.ts';
import { openDataset, parseDatasetSpec } from '../data/open.ts';
import type { StagedDataset } from '../data/types.ts';
import {
  type Distribution,
  distribution,
  fmt,
  fmtDist,
  formatHistogram,
  type HistogramBin,
  histogram,
} from './stats.ts';

export interface DatasetSummary {
  name: string;
  clips: { total: number; train: number; test: number };
  /** The K stage names; K becomes model.stages of a run on this dataset. */
  stages: string[];
  actionTypes: { total: number; train: number; test: number; testOnly: string[]; top: [string, number][] };
  score: { all: Distribution; train: Distribution; test: Distribution; histogram: HistogramBin[] };
  difficulty: Distribution;
  numFrames: Distribution;
  /** Per stage, its length in clip frames. */
  stageLengths: ({ stage: string } & Distribution)[];
  /** Things that work but limit what can be done (e.g. test-only action types: no dn protocol). */
  warnings: string[];
}

export function summarizeDataset(ds: StagedDataset): DatasetSummary {
  const train = ds.clips.filter((c) => c.split === 'train');
  const test = ds.clips.filter((c) => c.split === 'test');
  const trainTypes = new Set(train.map((c) => c.actionType));
  const testTypes = new Set(test.map((c) => c.actionType));
  const counts = new Map<string, number>();
  for (const c of ds.clips) counts.set(c.actionType, (counts.get(c.actionType) ?? 0) + 1);
  const testOnly = [...testTypes].filter((t) => !trainTypes.has(t)).sort();
  const warnings: string[] = [];
  if (train.length === 0) warnings.push('no clip has split "train": nothing to train on or compare with');
  if (test.length === 0) warnings.push('no clip has split "test": nothing to evaluate');
  if (testOnly.length > 0) {
    warnings.push(
      `test action types without a training clip (${testOnly.join(', ')}): evaluation with --dn is impossible; the default protocol (no-dn) works`,
    );
  }
  const scores = ds.clips.map((c) => c.score);
  return {
    name: ds.name,
    clips: { total: ds.clips.length, train: train.length, test: test.length },
    stages: [...ds.stageNames],
    actionTypes: {
      total: counts.size,
      train: trainTypes.size,
      test: testTypes.size,
      testOnly,
      top: [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5),
    },
    score: {
      all: distribution(scores),
      train: distribution(train.map((c) => c.score)),
      test: distribution(test.map((c) => c.score)),
      histogram: histogram(scores, 10),
    },
    difficulty: distribution(ds.clips.map((c) => c.difficulty)),
    numFrames: distribution(ds.clips.map((c) => c.numFrames)),
    stageLengths: ds.stageNames.map((stage, k) => ({
      stage,
      ...distribution(
        ds.clips.map((c) => (c.transitions[k] ?? c.numFrames) - (k === 0 ? 0 : c.transitions[k - 1])),
      ),
    })),
    warnings,
  };
}

/** The text report: the summary (when the dataset opened), then every problem, one a line. */
export function formatDatasetReport(
  source: string,
  summary: DatasetSummary | undefined,
  problems: readonly string[],
): string {
  const row = (k: string, v: string) => `${k.padEnd(13)}${v}`;
  const lines = [row('dataset', source)];
  if (summary) {
    const s = summary;
    const t = s.actionTypes;
    lines.push(
      row('clips', `${s.clips.total} (train ${s.clips.train}, test ${s.clips.test})`),
      row('stages', `${s.stages.length}: ${s.stages.join(', ')} (model.stages = ${s.stages.length})`),
      row(
        'action types',
        `${t.total} (train ${t.train}, test ${t.test}); most common ${t.top.map(([a, n]) => `${a} x${n}`).join(', ')}`,
      ),
      row('score', fmtDist(s.score.all)),
      row('  train', fmtDist(s.score.train)),
      row('  test', fmtDist(s.score.test)),
      ...formatHistogram(s.score.histogram, 1),
      row('difficulty', fmtDist(s.difficulty)),
      row('frames', `${fmtDist(s.numFrames, 1)} per clip`),
      ...s.stageLengths.map((st, k) =>
        row(
          k === 0 ? 'stage frames' : '',
          `${st.stage.padEnd(16)}min ${st.min}  mean ${fmt(st.mean, 1)}  max ${st.max}`,
        ),
      ),
      ...s.warnings.map((w) => row('warning', w)),
    );
  }
  if (problems.length === 0) lines.push(row('problems', 'none'));
  else {
    lines.push(row('problems', String(problems.length)));
    for (const p of problems) lines.push(`  ✖ ${p}`);
  }
  return lines.join('\n');
}

/** Nulls for the NaNs of empty distributions, so that the JSON stays valid. */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/**
 * Checks a manifest or a SynthDive spec (module doc) and writes the report; returns the exit code (0
 * clean, 1 problems). Problems that stop the file from being read at all (missing file, invalid JSON)
 * are thrown as E_DATA_LAYOUT (exit 2).
 */
export async function checkDataset(
  spec: string,
  opts: { json?: boolean },
  write: (text: string) => void,
): Promise<number> {
  const kind = parseDatasetSpec(spec).kind;
  let dataset: StagedDataset | undefined;
  let problems: string[] = [];
  let source = spec;
  if (kind === 'manifest') {
    // Frames are not decoded: videos are probed and frame folders listed, as training does first.
    const check = await checkManifest(spec, { width: 32, height: 32 });
    dataset = check.dataset;
    problems = check.problems;
    source = `${dataset?.name ?? '-'} (manifest ${check.manifestPath})`;
  } else {
    dataset = await openDataset(spec, { width: 32, height: 32 });
    source = `${dataset.name} (${spec})`;
  }
  const summary = dataset ? summarizeDataset(dataset) : undefined;
  if (opts.json) {
    write(`${JSON.stringify(jsonSafe({ dataset: source, summary: summary ?? null, problems }))}\n`);
  } else {
    write(`${formatDatasetReport(source, summary, problems)}\n`);
  }
  return problems.length > 0 ? 1 : 0;
}
