/**
 * The `mcore` command: a thin shell that parses arguments and calls the library. Each subcommand lives
 * in its own file in src/cli/ and exports `register(program)`; add new ones to COMMANDS.
 * Exit codes: 0 success, 2 usage or input error (one line on stderr), 1 internal error (stack).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import * as data from './data.ts';
import * as demo from './demo.ts';
import { reportError } from './errors.ts';
import * as features from './features.ts';
import * as importCmd from './import.ts';
import * as merge from './merge.ts';
import * as metrics from './metrics.ts';
import * as model from './model.ts';
import * as score from './score.ts';
import * as serve from './serve.ts';
import * as train from './train.ts';

/** The subcommands, in help order. */
const COMMANDS: readonly { register(program: Command): void }[] = [
  demo,
  train,
  features,
  score,
  merge,
  serve,
  importCmd,
  data,
  metrics,
  model,
];

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Builds the program; commander errors are thrown (exitOverride) so that `main` picks the exit code. */
export function buildProgram(): Command {
  const program = new Command('mcore')
    .description('Multi-stage contrastive regression (MCoRe) for action quality assessment')
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError('(run mcore --help for usage)');
  for (const command of COMMANDS) command.register(program);
  return program;
}

/** Runs the CLI on `argv` (node-style: argv[0] node, argv[1] script) and returns the exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    // A command that found problems (e.g. `data check`) sets process.exitCode itself.
    return Number(process.exitCode ?? 0);
  } catch (err) {
    return reportError(err);
  }
}

process.exitCode = await main();
