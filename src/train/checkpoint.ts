/**
 * Checkpoints that rebuild a run. Each epoch writes a folder `RUN/ckpt-EEEE/` holding
 * `weights.safetensors` (every parameter in torch layout under its PyTorch-style name, loadable by
 * `loadWeights` and by `safetensors.torch`), `optimizer.safetensors` (Adam moments) and a copy of its
 * record, `checkpoint.json`; then it replaces `RUN/checkpoint.json` atomically (write + rename): it names
 * the folder, the epoch, the run config, the history and the mcore version. A crash at any point
 * leaves the previous checkpoint intact. Only then are older checkpoint folders removed (the previous one,
 * and any a killed run left), and only `ckpt-NNNN` folders directly inside the run: whatever a stale or
 * foreign checkpoint.json says, nothing else is ever deleted.
 *
 * checkpoint.json is validated when read (zod): a missing config, a null history, a folder that is not
 * `ckpt-NNNN` are McoreError('E_INPUT') naming the file and the field, and saying which checkpoint
 * folder of the run is complete and could be resumed from.
 */
import { lstat, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { crashPoint } from '../io/faults.ts';
import { readSafetensors, type SafeTensor, writeSafetensors } from '../io/safetensors.ts';
import type { ParamSpecs, Params } from '../model/params.ts';
import { loadWeights, saveWeights } from '../model/weights.ts';
import { VERSION } from '../version.ts';
import type { TrainState } from './trainer.ts';

export interface CheckpointInfo<C = unknown> {
  version: string;
  epoch: number;
  folder: string;
  adamStep: number;
  history: TrainState['history'];
  config: C;
}

/** The name of a checkpoint folder: `ckpt-` and the epoch in at least 4 digits. */
export const CHECKPOINT_FOLDER = /^ckpt-\d{4,}$/;

export const CHECKPOINT_FILE = 'checkpoint.json';

export function checkpointFolderName(epoch: number): string {
  return `ckpt-${String(epoch).padStart(4, '0')}`;
}

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const epochRecordSchema = z.object({
  epoch: z.number().int().nonnegative(),
  loss: finite,
  terms: z.record(z.string(), finite),
  metrics: z.record(z.string(), z.number()).optional(),
  seconds: z.number(),
});

const checkpointSchema = z.object({
  version: z.string(),
  epoch: z.number().int().nonnegative(),
  folder: z.string().regex(CHECKPOINT_FOLDER, "expected a folder name 'ckpt-NNNN'"),
  adamStep: z.number().int().nonnegative(),
  history: z.array(epochRecordSchema),
  config: z.unknown().refine((c) => c !== undefined && c !== null, 'the run config is missing'),
});

function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** The absolute path of checkpoint folder `folder` of `runDir`, or undefined unless it is `ckpt-NNNN` directly inside. */
export function checkpointFolderPath(runDir: string, folder: unknown): string | undefined {
  if (typeof folder !== 'string' || !CHECKPOINT_FOLDER.test(folder)) return undefined;
  const run = path.resolve(runDir);
  const dir = path.resolve(run, folder);
  return path.dirname(dir) === run && path.basename(dir) === folder ? dir : undefined;
}

export async function saveCheckpoint<C>(
  runDir: string,
  params: Params,
  specs: ParamSpecs,
  state: TrainState,
  config: C,
): Promise<string> {
  const folder = checkpointFolderName(state.epoch);
  const dir = path.join(runDir, folder);
  // The folder the current checkpoint.json names, read leniently: a damaged file names nothing.
  const previous = await readFile(path.join(runDir, CHECKPOINT_FILE), 'utf8')
    .then((t) => (JSON.parse(t) as { folder?: unknown }).folder)
    .catch(() => undefined);
  // A folder of this epoch that checkpoint.json does not name was left by a killed run: start it afresh.
  if (previous !== folder) await rm(dir, { recursive: true, force: true });
  const info: CheckpointInfo<C> = {
    version: VERSION,
    epoch: state.epoch,
    folder,
    adamStep: state.adam.step,
    history: state.history,
    config,
  };
  const record = `${JSON.stringify(info, null, 2)}\n`;
  try {
    await mkdir(dir, { recursive: true });
    await saveWeights(path.join(dir, 'weights.safetensors'), params, specs, { epoch: String(state.epoch) });
    crashPoint('checkpoint:weights');
    const moments: Record<string, SafeTensor> = {};
    for (const [kind, table] of [
      ['m', state.adam.m],
      ['v', state.adam.v],
    ] as const) {
      for (const [name, t] of Object.entries(table)) {
        moments[`${kind}.${name}`] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
      }
    }
    await writeSafetensors(path.join(dir, 'optimizer.safetensors'), moments, {
      step: String(state.adam.step),
    });
    await writeFileAtomic(path.join(dir, CHECKPOINT_FILE), record);
    crashPoint('checkpoint:optimizer');
    await writeFileAtomic(path.join(runDir, CHECKPOINT_FILE), record);
  } catch (err) {
    // A folder this call created and checkpoint.json does not name is half a checkpoint: free its space.
    if (previous !== folder) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  crashPoint('checkpoint:json');
  // The run keeps its latest checkpoint only: the previous one and any left by a killed run go, and
  // only folders named ckpt-NNNN directly inside the run (checkpointFolderPath), never what
  // checkpoint.json names.
  for (const name of await readdir(runDir)) {
    const old = name === folder ? undefined : checkpointFolderPath(runDir, name);
    if (old && (await lstat(old)).isDirectory()) await rm(old, { recursive: true, force: true });
  }
  return path.join(runDir, CHECKPOINT_FILE);
}

/**
 * The newest complete checkpoint folder of a run (weights, optimizer and a valid record), or undefined.
 * For messages: which checkpoint `--resume` could use when checkpoint.json is missing or damaged.
 */
export async function newestCompleteCheckpoint(
  runDir: string,
): Promise<{ folder: string; epoch: number } | undefined> {
  const names = await readdir(runDir).catch(() => [] as string[]);
  const folders = names.filter((n) => CHECKPOINT_FOLDER.test(n)).sort((a, b) => b.localeCompare(a));
  for (const folder of folders) {
    const dir = path.join(runDir, folder);
    try {
      await stat(path.join(dir, 'weights.safetensors'));
      await stat(path.join(dir, 'optimizer.safetensors'));
      const parsed = checkpointSchema.safeParse(
        JSON.parse(await readFile(path.join(dir, CHECKPOINT_FILE), 'utf8')),
      );
      if (parsed.success && parsed.data.folder === folder) return { folder, epoch: parsed.data.epoch };
    } catch {
      // incomplete: try the one before
    }
  }
  return undefined;
}

/** What the run could resume from instead, as the end of an error message. */
async function resumeHint(runDir: string): Promise<string> {
  const file = path.join(runDir, CHECKPOINT_FILE);
  const ok = await newestCompleteCheckpoint(runDir);
  if (!ok) return '';
  const copy = path.join(runDir, ok.folder, CHECKPOINT_FILE);
  return `; the newest complete checkpoint is ${path.join(runDir, ok.folder)} (epoch ${ok.epoch}): to resume from it, copy ${copy} to ${file}`;
}

/**
 * Reads and validates RUN/checkpoint.json; `configSchema` validates the run config it records. Missing,
 * not JSON, or not a valid checkpoint record: McoreError('E_INPUT') naming the file and the field.
 */
export async function readCheckpointInfo<C = unknown>(
  runDir: string,
  configSchema?: z.ZodType<C>,
): Promise<CheckpointInfo<C>> {
  const file = path.join(runDir, CHECKPOINT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const hint = await resumeHint(runDir);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new McoreError(
        'E_INPUT',
        hint
          ? `${file}: missing${hint}`
          : `${file}: no checkpoint found; train first with 'mcore train --out ${runDir}'`,
      );
    }
    throw new McoreError('E_INPUT', `${file}: cannot read it (${(e as Error).message})${hint}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${file}: not valid JSON (${(e as Error).message})${await resumeHint(runDir)}`,
    );
  }
  const parsed = checkpointSchema.safeParse(raw);
  if (!parsed.success) {
    throw new McoreError(
      'E_INPUT',
      `${file}: not a valid checkpoint record (${issuesOf(parsed.error)})${await resumeHint(runDir)}`,
    );
  }
  let config = parsed.data.config as C;
  if (configSchema) {
    const c = configSchema.safeParse(parsed.data.config);
    if (!c.success) {
      const issues = issuesOf(c.error).replace(/(^|; )/g, '$1config.');
      throw new McoreError(
        'E_INPUT',
        `${file}: not a valid checkpoint record (${issues})${await resumeHint(runDir)}`,
      );
    }
    config = c.data;
  }
  return { ...parsed.data, config };
}

/** Loads the latest checkpoint of a run: parameters (tf.Variable where trainable) and the train state. */
export async function loadCheckpoint<C = unknown>(
  runDir: string,
  specs: ParamSpecs,
  configSchema?: z.ZodType<C>,
): Promise<{ params: Params; state: TrainState; info: CheckpointInfo<C> }> {
  const info = await readCheckpointInfo<C>(runDir, configSchema);
  const dir = path.join(runDir, info.folder);
  const { params } = await loadWeights(path.join(dir, 'weights.safetensors'), specs);
  const opt = await readSafetensors(path.join(dir, 'optimizer.safetensors'));
  const state: TrainState = {
    epoch: info.epoch,
    history: info.history,
    adam: { step: info.adamStep, m: {}, v: {} },
  };
  for (const [key, t] of Object.entries(opt.tensors)) {
    const dot = key.indexOf('.');
    const kind = key.slice(0, dot);
    const name = key.slice(dot + 1);
    if ((kind !== 'm' && kind !== 'v') || !specs[name]) continue;
    state.adam[kind][name] = tf.tensor(t.data as Float32Array, t.shape, 'float32');
  }
  return { params, state, info };
}
