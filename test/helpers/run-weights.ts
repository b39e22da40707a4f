import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { readCheckpointInfo } from '../../src/train/checkpoint.ts';

/** The weights of a run's latest checkpoint, as plain arrays by name (for toEqual). */
export async function weightsOf(run: string): Promise<Record<string, number[]>> {
  const info = await readCheckpointInfo(run);
  const { tensors } = await readSafetensors(path.join(run, info.folder, 'weights.safetensors'));
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
}
