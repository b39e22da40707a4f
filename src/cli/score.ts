/**
 * `mcore export --run RUN --out BUNDLE [--batch N] [--threads N]`
 * `mcore score INPUT --model BUNDLE [--action-type T] [--exemplars 10] [--seed N] [--json] [--report FILE]`
 */
import type { Command } from 'commander';
import { useBackend } from '../backend.ts';
import { McoreError } from '../errors.ts';
import { exportRunBundle } from '../score/export.ts';
import { writeReport } from '../score/report.ts';
import { loadBundle, type ScoreResult } from '../score/scorer.ts';
import { table } from './format.ts';
import { DEFAULT_PROTOCOL_HELP } from './options.ts';
import { type Bar, createBar } from './progress.ts';

function intOption(flag: string, min: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new McoreError('E_INPUT', `${flag} must be an integer >= ${min}, got '${v}'`);
    }
    return n;
  };
}

function signed(x: number, digits = 3): string {
  return `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(digits)}`;
}

/** The human-readable result: score, stages, per-stage deltas against each exemplar. */
export function formatScore(r: ScoreResult): string {
  const type = r.protocol.actionType;
  const lines = [
    `score ${r.score.toFixed(2)}  (mean over ${r.exemplars.length} exemplar(s) ${
      type === undefined ? 'from the whole bank' : `of type ${type}`
    }; mean delta ${signed(r.delta)})`,
    '',
    table(
      ['stage', 'sampled', 'source frames', 'seconds', 'mean delta'],
      r.stages.map((s, i) => [
        s.name,
        `${s.start}-${s.end - 1}`,
        `${s.sourceStart}-${s.sourceEnd - 1}`,
        s.startSec !== undefined && s.endSec !== undefined
          ? `${s.startSec.toFixed(2)}-${s.endSec.toFixed(2)}`
          : '-',
        signed(r.perStage[i].mean),
      ]),
    ),
    '',
    table(
      ['exemplar', 'type', 'score', 'delta', 'score+delta', ...r.perStage.map((s) => s.stage)],
      r.exemplars.map((e, i) => [
        e.key,
        e.actionType,
        e.score.toFixed(2),
        signed(e.delta),
        e.predicted.toFixed(2),
        ...r.perStage.map((s) => signed(s.deltas[i].delta)),
      ]),
    ),
  ];
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('export')
    .description('write a scoring bundle (ONNX graphs + exemplar bank) from the latest checkpoint of a run')
    .requiredOption('--run <dir>', 'run folder written by mcore train')
    .requiredOption('--out <dir>', 'bundle folder to write')
    .option('--batch <n>', 'videos per backbone run while encoding the exemplars', intOption('--batch', 1), 4)
    .option('--threads <n>', 'ONNX Runtime threads', intOption('--threads', 1), 2)
    .action(async (o: { run: string; out: string; batch: number; threads: number }) => {
      await useBackend('wasm');
      let bar: Bar | undefined;
      const manifest = await exportRunBundle(o.run, o.out, {
        batch: o.batch,
        threads: o.threads,
        onProgress: (e) => {
          if (e.kind !== 'exemplars') return;
          bar ??= createBar('exemplars', e.total);
          bar.update(e.done);
          if (e.done === e.total) bar.done();
        },
      });
      process.stdout.write(
        `wrote ${o.out}: ${manifest.stages} stages (${manifest.stageNames.join(', ')}), T ${manifest.frames}, ` +
          `${manifest.transform.crop}x${manifest.transform.crop} frames\n`,
      );
    });

  program
    .command('score')
    .description('score one video file or frame folder with a bundle written by mcore export')
    .argument('<input>', 'a video file, or a folder of JPEG/PNG frames in name order')
    .requiredOption('--model <dir>', 'scoring bundle folder (mcore export)')
    .option('--action-type <type>', 'compare with exemplars of this action type (dive number)')
    .option('--exemplars <n>', 'exemplars to compare with', intOption('--exemplars', 1), 10)
    .option('--seed <n>', 'seed of the exemplar choice', intOption('--seed', 0), 0)
    .option('--allow-damaged', 'score a truncated or damaged video from its readable frames')
    .option('--fast-decode', "skip the video decoder's deblocking filter (~20% faster decoding)")
    .option('--json', 'print the result as one JSON object')
    .option('--report <file>', 'write a self-contained HTML report')
    .option('--threads <n>', 'ONNX Runtime threads', intOption('--threads', 1), 2)
    .addHelpText('after', `\n${DEFAULT_PROTOCOL_HELP}.`)
    .action(
      async (
        input: string,
        o: {
          model: string;
          actionType?: string;
          exemplars: number;
          seed: number;
          json?: boolean;
          allowDamaged?: boolean;
          fastDecode?: boolean;
          report?: string;
          threads: number;
        },
      ) => {
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
          if (o.report !== undefined) await writeReport(o.report, result);
          const { frames: _frames, ...plain } = result;
          if (o.json) process.stdout.write(`${JSON.stringify(plain)}\n`);
          else process.stdout.write(`${formatScore(plain)}\n`);
          if (o.report !== undefined && !o.json) process.stdout.write(`wrote ${o.report}\n`);
        } finally {
          await bundle.dispose();
        }
      },
    );
}
