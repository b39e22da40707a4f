/** Option parsing shared by the commands that take a run configuration (`train`, `features`). */

import { readFile } from 'node:fs/promises';
import { Option } from 'commander';
import type { BackendName } from '../backend.ts';
import { type RunConfig, resolveConfig } from '../config.ts';
import { parseDatasetSpec } from '../data/open.ts';
import { McoreError } from '../errors.ts';
import { refuseSpecialFile } from '../io/input-path.ts';

/** Reads a JSON config file (`--config`); none -> {}. */
export async function readConfigFile(file: string | undefined): Promise<unknown> {
  if (!file) return {};
  await refuseSpecialFile(file, 'E_CONFIG', '--config');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new McoreError('E_CONFIG', `--config ${file}: cannot read the file`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new McoreError('E_CONFIG', `--config ${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * The run configuration of a command on `dataset`: --config file, then --set overrides. Without a
 * variant, real data (FineDiving, a manifest) gets the paper's model (mcore-regnety002: 96 frames of
 * 112 px) and SynthDive the small demo model (mcore-tiny). Prints the resolved variant, frames and size
 * first (stderr), so that a run never silently uses another model than the user thinks.
 */
export async function runConfigFor(
  dataset: string,
  o: { config?: string; set: string[] },
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<RunConfig> {
  const kind = parseDatasetSpec(dataset).kind;
  const config = resolveConfig(await readConfigFile(o.config), o.set, {
    defaultVariant: kind === 'synthdive' ? 'mcore-tiny' : 'mcore-regnety002',
  });
  const { frames, imageSize } = config.model;
  log(
    `model ${config.variant}: ${frames} frames of ${imageSize}x${imageSize} px, stages from the dataset ` +
      `(${kind} data; change with --set variant=... or --set model.frames=...)`,
  );
  return config;
}

/** Commander parser of an integer option of at least `min` (`--batch 4`); `flag` names it in the error. */
export function intOption(flag: string, min = 1): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new McoreError('E_INPUT', `${flag} must be an integer >= ${min}, got '${v}'`);
    }
    return n;
  };
}

/** `--checkpoint latest|best` of eval and export. */
export function checkpointOption(): Option {
  return new Option(
    '--checkpoint <which>',
    'the latest checkpoint, or the best by validation SRCC (a run trained with --set train.validation=0.1)',
  )
    .choices(['latest', 'best'])
    .default('latest');
}

/** Commander collector for a repeatable option (`--set a=1 --set b=2`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Commander parser of `--frame-cache <GiB>`: a positive number of GiB, returned in bytes. */
export function parseFrameCache(value: string): number {
  const gib = Number(value);
  if (!(Number.isFinite(gib) && gib > 0)) {
    throw new McoreError('E_INPUT', `--frame-cache must be a positive number of GiB, got '${value}'`);
  }
  return Math.round(gib * 1024 ** 3);
}

/** `--frame-cache <GiB>` of the commands that decode training or test frames. */
export function frameCacheOption(): Option {
  return new Option(
    '--frame-cache <GiB>',
    'decoded frames kept in memory (default 2; clips beyond it are decoded again)',
  ).argParser(parseFrameCache);
}

/** `--backend <name>` of the commands that run tfjs. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'tfjs backend: wasm or cpu').argParser(parseBackend).default('wasm');
}

/** Commander parser of `--backend`: wasm (default) or cpu; anything else is refused with the choices. */
export function parseBackend(value: string): BackendName {
  if (value !== 'wasm' && value !== 'cpu') {
    throw new McoreError('E_INPUT', `--backend must be wasm or cpu, got '${value}'`);
  }
  return value;
}

/** The default exemplar protocol in words: `mcore eval --help` and `mcore score --help` both state it. */
export const DEFAULT_PROTOCOL_HELP =
  'default protocol: exemplars from the whole training split, the action type unused (mcore eval --no-dn, ' +
  'mcore score without --action-type); --dn / --action-type T: exemplars of the same action type';
