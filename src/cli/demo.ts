/**
 * `mcore demo [--out DIR] [--seed N] [--quick]`: SynthDive -> MCoRe and baselines -> table + results.json.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { useBackend } from '../backend.ts';
import { DEMO_METHODS, type DemoResults, runDemo } from '../verbs/demo.ts';
import { metricsTable } from './format.ts';
import { intOption } from './options.ts';
import { type Bar, createBar } from './progress.ts';

/** One `warning: METHOD: ...` line per honesty warning (src/eval/reference.ts), or nothing. */
export function warningLines(results: Pick<DemoResults, 'details'>): string {
  const lines = Object.entries(results.details).flatMap(([name, d]) =>
    (d.warnings ?? []).map((w) => `warning: ${name}: ${w}\n`),
  );
  return lines.join('');
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('train and evaluate MCoRe and its baselines on the embedded SynthDive data (no download)')
    .option('--out <dir>', 'where results.json and the report go', 'mcore-demo')
    .option('--seed <n>', 'seed of data, initialisation and sampling', intOption('--seed', 0), 0)
    .option('--quick', 'a small smoke run (about 30 s)')
    .option('--backbone <file>', 'start from these backbone weights instead of the shipped demo backbone')
    .option('--methods <list>', `comma-separated subset of ${DEMO_METHODS.join(',')} (mcore included)`)
    .action(
      async (o: { out: string; seed: number; quick?: boolean; backbone?: string; methods?: string }) => {
        await useBackend('wasm');
        const err = process.stderr;
        let bar: Bar | undefined;
        const results = await runDemo({
          out: o.out,
          seed: o.seed,
          quick: Boolean(o.quick),
          ...(o.backbone ? { backbone: o.backbone } : {}),
          ...(o.methods ? { methods: o.methods.split(',').map((m) => m.trim()) } : {}),
          onProgress: (e) => {
            if (e.kind === 'phase') err.write(`\n== ${e.detail}\n`);
            else if (e.kind === 'features') {
              bar ??= createBar('features', e.total);
              bar.update(e.done);
              if (e.done === e.total) {
                bar.done();
                bar = undefined;
              }
            } else if (e.kind === 'train' && e.event.kind === 'step') {
              bar ??= createBar(`${e.method} epoch ${e.event.epoch + 1}`, e.event.steps);
              bar.update(e.event.step, `loss ${e.event.loss.toFixed(2)}`);
            } else if (e.kind === 'train' && e.event.kind === 'epoch') {
              bar?.done(`loss ${e.event.loss.toFixed(2)}`);
              bar = undefined;
            } else if (e.kind === 'result') {
              err.write(`${e.method}: SRCC ${e.metrics.srcc.toFixed(4)} (${e.seconds.toFixed(0)} s)\n`);
            } else if (e.kind === 'references') {
              const { typeMean, ridge } = e.references;
              err.write(
                `reference points: type-mean SRCC ${typeMean.srcc.toFixed(4)}, ridge on ${ridge.input} SRCC ${ridge.srcc.toFixed(4)}\n`,
              );
            }
          },
        });
        const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
        process.stdout.write(
          `\n${metricsTable(results.methods, results.references)}\n${warningLines(results)}\n${results.seconds.toFixed(0)} s on ${os.cpus().length} x ${cpu}; wrote ${o.out}/results.json\n`,
        );
      },
    );
}
