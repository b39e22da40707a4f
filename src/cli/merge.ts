/**
 * `mcore merge results-*.jsonl --out all.jsonl [--inputs PATH... | --list FILE]`
 *
 * Merges the result files of a sharded batch score (src/score/merge.ts): refuses overlapping or
 * missing inputs (naming them and their shard), else writes one line per input in input order.
 * With --inputs / --list the lines are also checked against that input list (expanded as
 * `mcore score` expands it).
 */
import type { Command } from 'commander';
import { listBatchInputs } from '../score/batch-inputs.ts';
import { mergeResults } from '../score/merge.ts';
import { collect } from './options.ts';

export function register(program: Command): void {
  program
    .command('merge')
    .description(
      'merge the results-*.jsonl of a sharded mcore score, checking no input is missing or doubled',
    )
    .argument('<files...>', 'result files written by mcore score --out')
    .requiredOption('--out <file>', 'merged results file to write')
    .option(
      '--inputs <paths...>',
      'the inputs given to mcore score (paths, folders, @list.txt), to check against',
    )
    .option('--list <file>', 'a file listing the inputs, one a line (repeatable)', collect, [])
    .action(async (files: string[], o: { out: string; inputs?: string[]; list: string[] }) => {
      const inputs =
        o.inputs !== undefined || o.list.length > 0
          ? await listBatchInputs(o.inputs ?? [], o.list)
          : undefined;
      const s = await mergeResults(files, o.out, { inputs });
      process.stdout.write(
        `merged ${s.files} file(s): ${s.inputs} inputs (${s.ok} scored, ${s.failed} failed) -> ${s.out}\n`,
      );
    });
}
