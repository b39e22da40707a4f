/** Option parsing shared by the commands that take a run configuration (`train`, `features`). */

import { readFile } from 'node:fs/promises';
import { Option } from 'commander';
import type { BackendName } from '../backend.ts';
import { McoreError } from '../errors.ts';

/** Reads a JSON config file (`--config`); none -> {}. */
export async function readConfigFile(file: string | undefined): Promise<unknown> {
  if (!file) return {};
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
