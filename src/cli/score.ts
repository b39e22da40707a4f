/**
 * `mcore export --run RUN [--out BUNDLE] [--pth last.pth] [--batch N] [--threads N]`
 * `mcore score INPUT --model BUNDLE [--action-type T] [--exemplars 10] [--seed N] [--json] [--report FILE]`
 * `mcore score INPUT... | FOLDER | @LIST --model BUNDLE --out results.jsonl [--resume] [--shard I/N | --shards N]
 *    [--jobs 2]`: batch scoring (src/score/batch.ts), one JSON line per input.
 */

import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { useBackend } from '../backend.ts';
import { McoreError } from '../errors.ts';
import { type BatchSummary, scoreBatch } from '../score/batch.ts';
import { listBatchInputs } from '../score/batch-inputs.ts';
import { writeScoreReport } from '../score/report.ts';
import { exemplarTable, signed, stageTable } from '../score/result-text.ts';
import { type LoadedBundle, loadBundle, type ScoreResult } from '../score/scorer.ts';
import { formatShard, resolveShard } from '../score/shard.ts';
import { exportRunBundle } from '../verbs/export.ts';
import { exportRunPth } from '../verbs/export-pth.ts';
import { table } from './format.ts';
import { checkpointOption, collect, DEFAULT_PROTOCOL_HELP, intOption } from './options.ts';
import { type Bar, createBar } from './progress.ts';

/** The human-readable result: score, stages, per-stage deltas against each exemplar. */
export function formatScore(r: ScoreResult): string {
  const type = r.protocol.actionType;
  const lines = [
    `score ${r.score.toFixed(2)}  (mean over ${r.exemplars.length} exemplar(s) ${
      type === undefined ? 'from the whole bank' : `of type ${type}`
    }; mean delta ${signed(r.delta)})`,
    '',
    table(stageTable(r).head, stageTable(r).rows),
    '',
    table(exemplarTable(r).head, exemplarTable(r).rows),
  ];
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('export')
    .description(
      'write a scoring bundle (ONNX graphs + exemplar bank) and/or a PyTorch checkpoint in the reference ' +
        "code's layout (--pth) from the latest checkpoint of a run",
    )
    .requiredOption('--run <dir>', 'run folder written by mcore train')
    .option('--out <dir>', 'bundle folder to write')
    .option('--pth <file>', "PyTorch checkpoint to write, laid out as the MCoRe reference's last.pth")
    .option('--batch <n>', 'videos per backbone run while encoding the exemplars', intOption('--batch', 1), 4)
    .option('--threads <n>', 'ONNX Runtime threads', intOption('--threads', 1), 2)
    .addOption(checkpointOption())
    .action(
      async (o: {
        run: string;
        out?: string;
        pth?: string;
        batch: number;
        threads: number;
        checkpoint: 'latest' | 'best';
      }) => {
        if (o.out === undefined && o.pth === undefined) {
          throw new McoreError(
            'E_INPUT',
            `export --run ${o.run}: nothing to write; give --out BUNDLE (scoring bundle) and/or --pth FILE (PyTorch checkpoint)`,
          );
        }
        if (o.pth !== undefined) {
          const keys = await exportRunPth(o.run, o.pth, { checkpoint: o.checkpoint });
          const counts = Object.entries(keys).map(([entry, k]) => `${entry} ${k.length}`);
          process.stdout.write(`wrote ${o.pth}: reference checkpoint (${counts.join(', ')} keys)\n`);
        }
        if (o.out === undefined) return;
        const out = o.out;
        await useBackend('wasm');
        let bar: Bar | undefined;
        const manifest = await exportRunBundle(o.run, out, {
          checkpoint: o.checkpoint,
          batch: o.batch,
          threads: o.threads,
          onProgress: (e) => {
            if (e.kind === 'graphs') return;
            bar ??= createBar(e.kind, e.total);
            bar.update(e.done);
            if (e.done === e.total) {
              bar.done();
              bar = undefined;
            }
          },
        });
        process.stdout.write(
          `wrote ${out}: ${manifest.stages} stages (${manifest.stageNames.join(', ')}), T ${manifest.frames}, ` +
            `${manifest.transform.crop}x${manifest.transform.crop} frames\n`,
        );
      },
    );

  program
    .command('score')
    .description(
      'score a video file or frame folder with a bundle written by mcore export; with --out, score many ' +
        '(paths, folders of videos or frame folders, @list.txt) into one JSON line each',
    )
    .argument(
      '<inputs...>',
      'video files, frame folders (JPEG/PNG frames in name order), folders of them, @list.txt',
    )
    .requiredOption('--model <dir>', 'scoring bundle folder (mcore export)')
    .option('--action-type <type>', 'compare with exemplars of this action type (dive number)')
    .option('--exemplars <n>', 'exemplars to compare with', intOption('--exemplars', 1), 10)
    .option('--seed <n>', 'seed of the exemplar choice', intOption('--seed', 0), 0)
    .option('--allow-damaged', 'score a truncated or damaged video from its readable frames')
    .option('--fast-decode', "skip the video decoder's deblocking filter (~20% faster decoding)")
    .option('--json', 'print the result as one JSON object')
    .option('--report <file>', 'write a self-contained HTML report')
    .option('--threads <n>', 'ONNX Runtime threads', intOption('--threads', 1), 2)
    .option('--out <file>', 'batch: append one JSON line per input to this file (results.jsonl)')
    .option(
      '--list <file>',
      'batch: a file listing inputs, one a line (repeatable; same as @file)',
      collect,
      [],
    )
    .option('--resume', 'batch: skip the inputs already in --out (a torn last line is scored again)')
    .option('--shard <I/N>', 'batch: score shard I of N of the sorted inputs (positions p with p % N == I)')
    .option(
      '--shards <n>',
      'batch: N, with the shard index from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or Slurm',
      intOption('--shards', 1),
    )
    .option('--jobs <n>', 'batch: inputs in flight (decoding overlaps the model)', intOption('--jobs', 1), 2)
    .addHelpText('after', `\n${DEFAULT_PROTOCOL_HELP}.`)
    .action(async (inputs: string[], o: ScoreCliOptions) => {
      const batch =
        o.out !== undefined ||
        inputs.length > 1 ||
        o.list.length > 0 ||
        inputs.some((x) => x.startsWith('@'));
      if (!batch) {
        const many = await folderOfInputs(inputs[0]);
        if (many > 0) {
          throw new McoreError(
            'E_INPUT',
            `${inputs[0]}: a folder of ${many} videos or frame folders, not a frame folder; to score them all ` +
              'add --out results.jsonl',
          );
        }
        return scoreOne(inputs[0], o);
      }
      if (o.out === undefined) {
        throw new McoreError(
          'E_INPUT',
          `${inputs.length + o.list.length > 1 ? 'several inputs' : inputs[0]}: batch scoring writes one JSON line ` +
            'per input to a file; add --out results.jsonl',
        );
      }
      if (o.report !== undefined) {
        throw new McoreError('E_INPUT', '--report draws one video; score that video alone (without --out)');
      }
      return scoreMany(inputs, { ...o, out: o.out });
    });
}

/** The inputs a folder stands for when it is not itself a frame folder (0 otherwise, or when unreadable). */
async function folderOfInputs(input: string): Promise<number> {
  const abs = path.resolve(input);
  try {
    if (!(await stat(abs)).isDirectory()) return 0;
    const listed = await listBatchInputs([abs]);
    return listed.length === 1 && listed[0] === abs ? 0 : listed.length;
  } catch {
    return 0;
  }
}

interface ScoreCliOptions {
  model: string;
  actionType?: string;
  exemplars: number;
  seed: number;
  json?: boolean;
  allowDamaged?: boolean;
  fastDecode?: boolean;
  report?: string;
  threads: number;
  out?: string;
  list: string[];
  resume?: boolean;
  shard?: string;
  shards?: number;
  jobs: number;
}

async function scoreOne(input: string, o: ScoreCliOptions): Promise<void> {
  const bundle = await loadBundle(o.model, { threads: o.threads });
  try {
    const result = await bundle.score(input, {
      actionType: o.actionType,
      exemplars: o.exemplars,
      seed: o.seed,
      allowDamaged: Boolean(o.allowDamaged),
      fastDecode: Boolean(o.fastDecode),
      keepFrames: o.report !== undefined,
    });
    for (const w of result.warnings) process.stderr.write(`mcore: warning: ${w}\n`);
    if (o.report !== undefined) await writeScoreReport(o.report, result);
    const { frames: _frames, ...plain } = result;
    if (o.json) process.stdout.write(`${JSON.stringify(plain)}\n`);
    else process.stdout.write(`${formatScore(plain)}\n`);
    if (o.report !== undefined && !o.json) process.stdout.write(`wrote ${o.report}\n`);
  } finally {
    await bundle.dispose();
  }
}

/** The summary line of a batch. */
export function formatBatchSummary(s: BatchSummary): string {
  const perMin = s.elapsedMs > 0 ? ((s.done + s.failed) * 60_000) / s.elapsedMs : 0;
  return (
    `shard ${formatShard(s.shard)}: done ${s.done}, failed ${s.failed}, skipped ${s.skipped} of ${s.shardInputs} ` +
    `(${s.inputs} inputs in all); mean ${(s.meanMs / 1000).toFixed(2)} s/video, ${perMin.toFixed(1)} videos/min; ` +
    `results in ${s.out}`
  );
}

async function scoreMany(args: string[], o: ScoreCliOptions & { out: string }): Promise<void> {
  const shard = resolveShard({ shard: o.shard, shards: o.shards });
  const inputs = await listBatchInputs(args, o.list);
  const bundle: LoadedBundle = await loadBundle(o.model, { threads: o.threads });
  let bar: Bar | undefined;
  try {
    const summary = await scoreBatch(bundle, inputs, {
      out: o.out,
      resume: Boolean(o.resume),
      shard,
      jobs: o.jobs,
      actionType: o.actionType,
      exemplars: o.exemplars,
      seed: o.seed,
      allowDamaged: Boolean(o.allowDamaged),
      fastDecode: Boolean(o.fastDecode),
      onProgress: (e) => {
        if (e.kind === 'start') {
          const from = shard.from === 'default' ? '' : ` (from ${shard.from})`;
          process.stderr.write(
            `shard ${formatShard(shard)}${from}: ${e.shardInputs} of ${inputs.length} inputs, ` +
              `${e.skipped} already in ${o.out}, ${e.todo} to score` +
              `${e.tornLine ? '; a torn last line (a killed run) was cut off' : ''}\n`,
          );
          if (e.todo > 0) bar = createBar('score', e.todo);
          return;
        }
        if (!e.line.ok) process.stderr.write(`mcore: warning: ${e.line.error?.message}\n`);
        const n = e.done + e.failed;
        const perMin = e.elapsedMs > 0 ? (n * 60_000) / e.elapsedMs : 0;
        bar?.update(n, `${perMin.toFixed(1)} videos/min${e.failed > 0 ? `, ${e.failed} failed` : ''}`);
      },
    });
    bar?.done();
    process.stdout.write(`${formatBatchSummary(summary)}\n`);
  } finally {
    await bundle.dispose();
  }
}
