/**
 * Checkpoints that rebuild a run. Each epoch writes a folder `RUN/ckpt-EEEE/` holding
 * `weights.safetensors` (every parameter in torch layout under its PyTorch-style name, loadable by
 * `loadWeights` and by `safetensors.torch`) and `optimizer.safetensors` (Adam moments), then replaces
 * `RUN/checkpoint.json` atomically (write + rename): it names the folder, the epoch, the run config,
 * the history and the mcore version. A crash at any point leaves the previous checkpoint intact.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
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

export async function saveCheckpoint<C>(
  runDir: string,
  params: Params,
  specs: ParamSpecs,
  state: TrainState,
  config: C,
): Promise<string> {
  const folder = `ckpt-${String(state.epoch).padStart(4, '0')}`;
  const dir = path.join(runDir, folder);
  await mkdir(dir, { recursive: true });
  await saveWeights(path.join(dir, 'weights.safetensors'), params, specs, { epoch: String(state.epoch) });
  const moments: Record<string, SafeTensor> = {};
  for (const [kind, table] of [
    ['m', state.adam.m],
    ['v', state.adam.v],
  ] as const) {
    for (const [name, t] of Object.entries(table)) {
      moments[`${kind}.${name}`] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
    }
  }
  await writeSafetensors(path.join(dir, 'optimizer.safetensors'), moments, { step: String(state.adam.step) });
  const previous = await readCheckpointInfo(runDir).catch(() => undefined);
  const info: CheckpointInfo<C> = {
    version: VERSION,
    epoch: state.epoch,
    folder,
    adamStep: state.adam.step,
    history: state.history,
    config,
  };
  await writeFileAtomic(path.join(runDir, 'checkpoint.json'), `${JSON.stringify(info, null, 2)}\n`);
  if (previous && previous.folder !== folder)
    await rm(path.join(runDir, previous.folder), { recursive: true, force: true });
  return path.join(runDir, 'checkpoint.json');
}

export async function readCheckpointInfo<C = unknown>(runDir: string): Promise<CheckpointInfo<C>> {
  const file = path.join(runDir, 'checkpoint.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new McoreError(
      'E_INPUT',
      `${file}: no checkpoint found; train first with 'mcore train --out ${runDir}'`,
    );
  }
  try {
    return JSON.parse(text) as CheckpointInfo<C>;
  } catch (e) {
    throw new McoreError('E_INPUT', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Loads the latest checkpoint of a run: parameters (tf.Variable where trainable) and the train state. */
export async function loadCheckpoint<C = unknown>(
  runDir: string,
  specs: ParamSpecs,
): Promise<{ params: Params; state: TrainState; info: CheckpointInfo<C> }> {
  const info = await readCheckpointInfo<C>(runDir);
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
