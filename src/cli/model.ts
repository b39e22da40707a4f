/** `mcore model summary [--size full|tiny] [--json]`: parameter counts per module. */
import type { Command } from 'commander';
import { McoreError } from '../errors.ts';
import { modelConfig } from '../model/config.ts';
import { modelSummary } from '../model/summary.ts';
import { table } from './format.ts';

const SIZES = { full: 'mcore-regnety002', tiny: 'mcore-tiny' } as const;

export function register(program: Command): void {
  const model = program.command('model').description('inspect the model');
  model
    .command('summary')
    .description('parameter count per module (trainable values; BN statistics excluded)')
    .option('--size <size>', 'full (RegNetY-200MF, the paper) or tiny (tests, CPU demo)', 'full')
    .option('--json', 'print the rows as JSON')
    .action((o: { size: string; json?: boolean }) => {
      if (!(o.size in SIZES)) throw new McoreError('E_INPUT', `--size must be full or tiny, got '${o.size}'`);
      const variant = SIZES[o.size as keyof typeof SIZES];
      const rows = modelSummary(modelConfig(variant));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return;
      }
      const body = table(
        ['module', 'parameters', 'tensors'],
        rows.map((r) => [r.module, r.params.toLocaleString('en-US'), r.tensors]),
      );
      process.stdout.write(`${variant}\n${body}\n`);
    });
}
