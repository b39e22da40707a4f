/**
 * `mcore data check MANIFEST|synthdive[:...]` (src/cli/dataset-check.ts), and
 * `mcore data check finediving --root DIR --annotations DIR [--keys K1,K2] [--images] [--json] [--limit N]`:
 * a summary of the FineDiving annotations (clips per split, action types, score and difficulty
 * distributions, stage lengths, step changes) and every layout problem of the frame folder (see
 * validateFineDivingLayout), grouped by kind. Exit codes: 0 clean, 1 problems found, 2 bad arguments.
 *
 * @example
 * mcore data check finediving --root FINADiving_MTL_256s --annotations Annotations
 * // clips        3000 (train 2251, test 749)
 * // ...
 * // problems     none
 */
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { type ExportProgress, exportFrameFolders, exportMp4 } from '../data/export.ts';
import {
  type FineDivingDataset,
  LAYOUT_PROBLEM_KINDS,
  type LayoutProblem,
  openFineDiving,
  validateFineDivingLayout,
} from '../data/finediving.ts';
import { openDataset } from '../data/open.ts';
import { McoreError } from '../errors.ts';
import { checkDataset } from './dataset-check.ts';
import { type Bar, createBar } from './progress.ts';
import {
  type Distribution,
  distribution,
  fmt,
  fmtDist,
  formatHistogram,
  type HistogramBin,
  histogram,
} from './stats.ts';

export interface FineDivingSummary {
  clips: { total: number; train: number; test: number };
  actionTypes: { total: number; train: number; test: number; testOnly: string[]; top: [string, number][] };
  score: { all: Distribution; train: Distribution; test: Distribution; histogram: HistogramBin[] };
  difficulty: Distribution & { histogram: HistogramBin[] };
  numFrames: Distribution;
  /** Per stage, its length in clip frames. */
  stageLengths: ({ stage: string } & Distribution)[];
  /** Number of clips per number of annotated step changes (len(steps_transit_frames)). */
  stepChanges: Record<string, number>;
  warnings: string[];
}

export function summarizeFineDiving(ds: FineDivingDataset): FineDivingSummary {
  const train = ds.clips.filter((c) => c.split === 'train');
  const test = ds.clips.filter((c) => c.split === 'test');
  const types = (cs: typeof ds.clips) => new Set(cs.map((c) => c.actionType));
  const trainTypes = types(train);
  const counts = new Map<string, number>();
  for (const c of ds.clips) counts.set(c.actionType, (counts.get(c.actionType) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
  const stepChanges: Record<string, number> = {};
  for (const c of ds.clips) {
    const k = String(ds.record(c.key).stepsTransitFrames.length);
    stepChanges[k] = (stepChanges[k] ?? 0) + 1;
  }
  const scores = ds.clips.map((c) => c.score);
  const difficulties = ds.clips.map((c) => c.difficulty);
  return {
    clips: { total: ds.clips.length, train: train.length, test: test.length },
    actionTypes: {
      total: counts.size,
      train: trainTypes.size,
      test: types(test).size,
      testOnly: [...types(test)].filter((t) => !trainTypes.has(t)).sort(),
      top,
    },
    score: {
      all: distribution(scores),
      train: distribution(train.map((c) => c.score)),
      test: distribution(test.map((c) => c.score)),
      histogram: histogram(scores, 10),
    },
    difficulty: { ...distribution(difficulties), histogram: histogram(difficulties, 8) },
    numFrames: distribution(ds.clips.map((c) => c.numFrames)),
    stageLengths: ds.stageNames.map((stage, k) => ({
      stage,
      ...distribution(
        ds.clips.map((c) => (c.transitions[k] ?? c.numFrames) - (k === 0 ? 0 : c.transitions[k - 1])),
      ),
    })),
    stepChanges,
    warnings: ds.annotations.warnings,
  };
}

/** The text report: summary, then problems grouped by kind (first `limit` of each with the count). */
export function formatReport(
  s: FineDivingSummary,
  problems: readonly LayoutProblem[],
  limit: number,
): string {
  const row = (k: string, v: string) => `${k.padEnd(13)}${v}`;
  const lines = [
    row('clips', `${s.clips.total} (train ${s.clips.train}, test ${s.clips.test})`),
    row(
      'action types',
      `${s.actionTypes.total} (train ${s.actionTypes.train}, test ${s.actionTypes.test}${s.actionTypes.testOnly.length > 0 ? `; test-only: ${s.actionTypes.testOnly.join(' ')}` : ''}); most common ${s.actionTypes.top.map(([t, n]) => `${t} x${n}`).join(', ')}`,
    ),
    row('score', fmtDist(s.score.all)),
    row('  train', fmtDist(s.score.train)),
    row('  test', fmtDist(s.score.test)),
    ...formatHistogram(s.score.histogram, 1),
    row('difficulty', fmtDist(s.difficulty)),
    ...formatHistogram(s.difficulty.histogram, 2),
    row('frames', `${fmtDist(s.numFrames, 1)} per clip`),
    ...s.stageLengths.map((st, k) =>
      row(
        k === 0 ? 'stage frames' : '',
        `${st.stage.padEnd(16)}min ${st.min}  mean ${fmt(st.mean, 1)}  max ${st.max}`,
      ),
    ),
    row(
      'step changes',
      Object.entries(s.stepChanges)
        .map(([k, n]) => `${k}: ${n} clips`)
        .join(', '),
    ),
    ...s.warnings.map((w) => row('warning', w)),
  ];
  if (problems.length === 0) {
    lines.push(row('problems', 'none'));
    return lines.join('\n');
  }
  const clips = new Set(problems.map((p) => p.key)).size;
  lines.push(row('problems', `${problems.length} in ${clips} clips`));
  for (const kind of LAYOUT_PROBLEM_KINDS) {
    const of = problems.filter((p) => p.kind === kind);
    if (of.length === 0) continue;
    lines.push(`${kind}: ${of.length}`);
    for (const p of of.slice(0, limit)) lines.push(`  ${p.key}  ${p.path}: ${p.message}`);
    if (of.length > limit) lines.push(`  ... and ${of.length - limit} more (--limit N shows more)`);
  }
  return lines.join('\n');
}

/** Nulls for the NaNs of empty distributions, so that the JSON stays valid. */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)),
  );
}

async function assertFolder(option: string, dir: string, what: string): Promise<void> {
  const s = await stat(dir).catch(() => undefined);
  if (s === undefined || !s.isDirectory())
    throw new McoreError('E_INPUT', `${option} ${dir}: no such folder; ${what}`);
}

interface CheckOptions {
  root: string;
  annotations: string;
  keys?: string;
  images?: boolean;
  json?: boolean;
  limit: string;
}

/** Runs the check; returns the exit code (0 clean, 1 problems). */
export async function checkFineDiving(opts: CheckOptions, write: (text: string) => void): Promise<number> {
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new McoreError('E_INPUT', `--limit ${opts.limit}: expected a whole number >= 0`);
  }
  await assertFolder(
    '--annotations',
    opts.annotations,
    "pass the FineDiving 'Annotations' folder (FineDiving_coarse_annotation.pkl, FineDiving_fine-grained_annotation.pkl, train_split.pkl, test_split.pkl)",
  );
  await assertFolder(
    '--root',
    opts.root,
    'pass the frame folder holding <video_name>/<instance>/<frame:05d>.jpg',
  );
  const keys = opts.keys
    ?.split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  const ds = await openFineDiving({ root: opts.root, annotations: opts.annotations, keys });
  const bar = createBar(
    opts.images ? 'decoding frames: clips' : 'checking the layout: clips',
    ds.clips.length,
  );
  const problems = await validateFineDivingLayout(ds, {
    checkImages: opts.images === true,
    onProgress: (done) => bar.update(done),
  });
  bar.done();
  const summary = summarizeFineDiving(ds);
  if (opts.json) {
    const byKind = Object.fromEntries(
      LAYOUT_PROBLEM_KINDS.map((k) => [k, problems.filter((p) => p.kind === k).length]).filter(([, n]) => n),
    );
    write(
      `${JSON.stringify(jsonSafe({ ...summary, problems: { total: problems.length, byKind, list: problems } }))}\n`,
    );
  } else {
    write(`${formatReport(summary, problems, limit)}\n`);
  }
  return problems.length > 0 ? 1 : 0;
}

/**
 * Exit code 1 (problems found) without an error message: main() sets process.exitCode from its return
 * value after the command has run, so the code is set again when the process exits.
 */
function exitWith(code: number): void {
  process.exitCode = code;
}

export function register(program: Command): void {
  const data = program.command('data').description('inspect and export datasets');
  data
    .command('export')
    .description('write a dataset to disk: JPEG frame folders in FineDiving layout (+ manifest), or MP4s')
    .argument('<dataset>', "'synthdive[:seed=N,clips=N,size=N]' or another dataset spec")
    .requiredOption('--out <dir>', 'output folder')
    .option('--mp4', 'one MP4 per clip (25 fps) instead of JPEG frame folders')
    .option('--keys <list>', 'only these clips, comma-separated keys')
    .option('--split <split>', 'only the train or the test split')
    .action(async (spec: string, o: { out: string; mp4?: boolean; keys?: string; split?: string }) => {
      if (o.split !== undefined && o.split !== 'train' && o.split !== 'test') {
        throw new McoreError('E_INPUT', `--split must be train or test, got '${o.split}'`);
      }
      const size = 64;
      const dataset = await openDataset(spec, { width: size, height: size });
      const keys =
        o.keys?.split(',').filter((k) => k.length > 0) ??
        (o.split ? dataset.clips.filter((c) => c.split === o.split).map((c) => c.key) : undefined);
      let bar: Bar | undefined;
      const onProgress = (p: ExportProgress) => {
        bar ??= createBar('exporting', p.total);
        bar.update(p.done);
      };
      const result = o.mp4
        ? await exportMp4(dataset, o.out, { keys, onProgress })
        : await exportFrameFolders(dataset, o.out, { keys, onProgress });
      bar?.done();
      process.stdout.write(
        `wrote ${result.clips} clips (${result.frames} frames); manifest ${result.manifestPath}\n`,
      );
    });
  data
    .command('check')
    .description(
      'check a dataset: every problem listed, one a line (exit 1 when there are any), else a summary',
    )
    .argument(
      '<dataset>',
      "finediving (with --root and --annotations), a manifest (.json/.csv) or 'synthdive[:seed=N,clips=N]'",
    )
    .option('--root <dir>', 'finediving: frame folder <video_name>/<instance>/<frame:05d>.jpg')
    .option('--annotations <dir>', "finediving: the 'Annotations' folder (the .pkl files)")
    .option('--keys <list>', 'finediving: only these clips, comma-separated video_name/instance keys')
    .option('--images', 'finediving: also decode every frame (slow)')
    .option('--json', 'print the summary and all problems as JSON')
    .option('--limit <n>', 'finediving: problems shown per kind in the text report', '10')
    .action(async (dataset: string, opts: Partial<CheckOptions> & { limit: string }) => {
      const write = (t: string) => process.stdout.write(t);
      if (dataset === 'finediving') {
        if (!opts.root || !opts.annotations) {
          throw new McoreError(
            'E_INPUT',
            `data check finediving needs --root DIR (the frames) and --annotations DIR (the .pkl files)${opts.root ? '' : '; --root is missing'}`,
          );
        }
        exitWith(await checkFineDiving({ ...opts, root: opts.root, annotations: opts.annotations }, write));
        return;
      }
      const known = /^(synthdive|finediving)(:|$)/.test(dataset) || /\.(json|csv)$/i.test(dataset);
      if (!known) {
        throw new McoreError(
          'E_INPUT',
          `unknown dataset '${dataset}': give finediving (with --root and --annotations), a manifest file (.json/.csv) or synthdive[:seed=N,clips=N]`,
        );
      }
      exitWith(await checkDataset(dataset, { json: opts.json }, write));
    });
}
