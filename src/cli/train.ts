/**
 * `mcore train --dataset SPEC --out RUN [--config FILE] [--set key=value ...] [--resume] [--backbone FILE]`
 * `mcore eval --run RUN [--exemplars N] [--dn | --no-dn] [--json]`
 */
import type { Command } from 'commander';
import { type BackendName, useBackend } from '../backend.ts';
import { evalRun, type RunRecord, trainRun } from '../train/run.ts';
import { metricsTable } from './format.ts';
import { backendOption, collect, frameCacheOption, intOption, runConfigFor } from './options.ts';
import { type Bar, createBar } from './progress.ts';

export function register(program: Command): void {
  program
    .command('train')
    .description('train MCoRe on a dataset; one checkpoint per epoch in --out')
    .requiredOption(
      '--dataset <spec>',
      "'synthdive[:seed=N,clips=N,size=N]', 'finediving:root=DIR,annotations=DIR' or a manifest (.json/.csv)",
    )
    .requiredOption('--out <dir>', 'run folder (checkpoints, log.jsonl)')
    .option('--config <file>', 'JSON config (every field has a default)')
    .option('--set <key=value>', 'override one config field, e.g. train.epochs=5 (repeatable)', collect, [])
    .option('--backbone <file>', 'backbone weights (safetensors) for train.mode=head-only')
    .option('--cache <dir>', 'feature cache of head-only training (default .cache/mcore/features)')
    .option('--resume', 'continue the run in --out exactly where its last checkpoint ended (may add epochs)')
    .addOption(frameCacheOption())
    .addOption(backendOption())
    .action(
      async (o: {
        dataset: string;
        out: string;
        config?: string;
        set: string[];
        backbone?: string;
        resume?: boolean;
        cache?: string;
        frameCache?: number;
        backend: BackendName;
      }) => {
        await useBackend(o.backend);
        const config = await runConfigFor(o.dataset, o);
        const record: RunRecord = {
          dataset: o.dataset,
          config,
          ...(o.backbone ? { backboneWeights: o.backbone } : {}),
        };
        let bar: Bar | undefined;
        const state = await trainRun(record, {
          out: o.out,
          resume: Boolean(o.resume),
          featureCache: o.cache,
          frameCacheBytes: o.frameCache,
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
    .option('--no-dn', 'exemplars from the whole training split')
    .option('--json', 'print the metrics as JSON')
    .addOption(frameCacheOption())
    .addOption(backendOption())
    .action(
      async (o: {
        run: string;
        exemplars?: number;
        dn?: boolean;
        json?: boolean;
        frameCache?: number;
        backend: BackendName;
      }) => {
        await useBackend(o.backend);
        let bar: Bar | undefined;
        const result = await evalRun(o.run, {
          exemplars: o.exemplars,
          dn: o.dn,
          frameCacheBytes: o.frameCache,
          onProgress: (done, total) => {
            bar ??= createBar('encoding videos', total);
            bar.update(done);
            if (done === total) bar.done();
          },
        });
        if (o.json) process.stdout.write(`${JSON.stringify(result.metrics)}\n`);
        else process.stdout.write(`${metricsTable({ mcore: result.metrics })}\nwrote ${o.run}/eval.json\n`);
      },
    );
}
