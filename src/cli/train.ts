/**
 * `mcore train --dataset SPEC --out RUN [--method mcore|core|regression] [--config FILE] [--set key=value ...]
 *   [--resume | --overwrite] [--backbone FILE] [--cache DIR]`
 * `mcore eval --run RUN [--exemplars N] [--dn | --no-dn] [--cache DIR] [--json]`
 */
import type { Command } from 'commander';
import { type BackendName, useBackend } from '../backend.ts';
import { McoreError } from '../errors.ts';
import { isMethodName, METHOD_NAMES, type MethodName } from '../methods/registry.ts';
import { setsKey } from '../train/stages.ts';
import { type EvalRunResult, evalRun, type RunRecord, trainRun } from '../verbs/run.ts';
import { metricsTable } from './format.ts';
import {
  backendOption,
  checkpointOption,
  collect,
  DEFAULT_PROTOCOL_HELP,
  frameCacheOption,
  intOption,
  readConfigFile,
  runConfigFor,
} from './options.ts';
import { type Bar, createBar } from './progress.ts';

/** Commander parser of `--method`. */
export function parseMethod(value: string): MethodName {
  if (!isMethodName(value)) {
    throw new McoreError('E_INPUT', `--method must be one of ${METHOD_NAMES.join(', ')}, got '${value}'`);
  }
  return value;
}

/** The text `mcore eval` prints: the metrics table with the reference rows, then the warnings. */
export function formatEval(r: EvalRunResult): string {
  const protocol = r.dn
    ? `protocol: dn (${r.exemplars} exemplars of the query's action type)`
    : `protocol: no-dn (${r.exemplars} exemplars from the whole training split)`;
  const lines = [protocol, metricsTable({ [r.method]: r.metrics }, r.references)];
  lines.push(
    `reference points on this split: (type-mean) = training mean score of the clip's action type; ` +
      `(ridge) = ridge regression on the ${r.references.ridge.input} (${r.references.ridge.dims} values a clip, lambda by 5-fold CV on the training split)`,
  );
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(`wrote ${r.file}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train MCoRe on a dataset; one checkpoint per epoch in --out')
    .requiredOption(
      '--dataset <spec>',
      "'synthdive[:seed=N,clips=N,size=N]', 'finediving:root=DIR,annotations=DIR' or a manifest (.json/.csv)",
    )
    .requiredOption('--out <dir>', 'run folder (checkpoints, log.jsonl)')
    .option(
      '--method <name>',
      `what to train: ${METHOD_NAMES.join(', ')} (the demo's baselines: same trainer and evaluation)`,
      parseMethod,
      'mcore',
    )
    .option('--config <file>', 'JSON config (every field has a default)')
    .option('--set <key=value>', 'override one config field, e.g. train.epochs=5 (repeatable)', collect, [])
    .option(
      '--backbone <file>',
      'backbone weights (safetensors): the features of train.mode=head-only, the starting backbone of end-to-end training',
    )
    .option('--cache <dir>', 'feature cache of head-only training (default .cache/mcore/features)')
    .option('--resume', 'continue the run in --out exactly where its last checkpoint ended (may add epochs)')
    .option('--overwrite', 'replace the run in --out (its checkpoints and log; other files are kept)')
    .addOption(frameCacheOption())
    .addOption(backendOption())
    .action(
      async (o: {
        dataset: string;
        out: string;
        method: MethodName;
        config?: string;
        set: string[];
        backbone?: string;
        resume?: boolean;
        overwrite?: boolean;
        cache?: string;
        frameCache?: number;
        backend: BackendName;
      }) => {
        await useBackend(o.backend);
        const config = await runConfigFor(o.dataset, o);
        // The config file as written, to tell the settings the user gave from the defaults.
        const raw = await readConfigFile(o.config);
        const record: RunRecord = {
          dataset: o.dataset,
          config,
          ...(o.method !== 'mcore' ? { method: o.method } : {}),
          ...(o.backbone ? { backboneWeights: o.backbone } : {}),
        };
        let bar: Bar | undefined;
        const state = await trainRun(record, {
          out: o.out,
          resume: Boolean(o.resume),
          overwrite: Boolean(o.overwrite),
          featureCache: o.cache,
          frameCacheBytes: o.frameCache,
          explicitStages: {
            stages: setsKey(raw, o.set, 'model.stages'),
            tasWeights: setsKey(raw, o.set, 'loss.tasWeights'),
          },
          onProgress: (e) => {
            if (e.kind === 'features') {
              bar ??= createBar('features', e.total);
              bar.update(e.done);
              if (e.done === e.total) {
                bar.done();
                bar = undefined;
              }
            } else if (e.kind === 'step') {
              bar ??= createBar(`epoch ${e.epoch + 1}/${config.train.epochs}`, e.steps);
              bar.update(e.step, `loss ${e.loss.toFixed(3)}`);
            } else if (e.kind === 'epoch') {
              bar?.done(`loss ${e.loss.toFixed(3)} (${e.seconds.toFixed(1)} s)`);
              bar = undefined;
            } else if (e.kind === 'validation') {
              process.stderr.write(
                `  validation SRCC ${e.srcc.toFixed(4)}; best ${e.bestSrcc.toFixed(4)} at epoch ${e.bestEpoch} (${o.out}/best)\n`,
              );
            }
          },
        });
        process.stdout.write(`trained ${state.epoch} epochs; checkpoint in ${o.out}/checkpoint.json\n`);
      },
    );

  program
    .command('eval')
    .description('evaluate the latest checkpoint of a run on its test split (exemplar protocol)')
    .requiredOption('--run <dir>', 'run folder written by mcore train')
    .option('--exemplars <n>', 'exemplars per query (default: the run config, 10)', intOption('--exemplars'))
    .option('--dn', 'exemplars of the same action type ("with dive number")')
    .option('--no-dn', 'exemplars from the whole training split (the default)')
    .option('--cache <dir>', "feature cache of a head-only run (default: the run's recorded cache folder)")
    .option('--json', 'print the metrics, reference points and warnings as JSON')
    .addOption(checkpointOption())
    .addHelpText(
      'after',
      `\n${DEFAULT_PROTOCOL_HELP}; the other protocol's SRCC is reported too.\nWrites RUN/eval-no-dn.json or RUN/eval-dn.json (one file per protocol).`,
    )
    .addOption(frameCacheOption())
    .addOption(backendOption())
    .action(
      async (o: {
        run: string;
        exemplars?: number;
        dn?: boolean;
        cache?: string;
        json?: boolean;
        checkpoint: 'latest' | 'best';
        frameCache?: number;
        backend: BackendName;
      }) => {
        await useBackend(o.backend);
        let bar: Bar | undefined;
        const progress = (label: string) => (done: number, total: number) => {
          bar ??= createBar(label, total);
          bar.update(done);
          if (done === total) {
            bar.done();
            bar = undefined;
          }
        };
        const result = await evalRun(o.run, {
          checkpoint: o.checkpoint,
          exemplars: o.exemplars,
          dn: o.dn,
          featureCache: o.cache,
          frameCacheBytes: o.frameCache,
          onFeatures: progress('features'),
          onProgress: progress('encoding videos'),
          onCompare: progress('comparing with exemplars'),
        });
        if (o.json) {
          for (const w of result.warnings) process.stderr.write(`mcore: warning: ${w}\n`);
          const { metrics, references, warnings, dn, exemplars, file } = result;
          process.stdout.write(`${JSON.stringify({ metrics, references, warnings, dn, exemplars, file })}\n`);
        } else process.stdout.write(`${formatEval(result)}\n`);
      },
    );
}
