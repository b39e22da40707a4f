/**
 * Safetensors files on disk: the codec of ./safetensors-codec.ts plus reading and (atomic) writing.
 *
 * @example
 * await writeSafetensors('w.safetensors', { 'fc.weight': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors } = await readSafetensors('w.safetensors'); // tensors['fc.weight'].data -> Float32Array [1, 2]
 */
import { readFile } from 'node:fs/promises';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import {
  encodeSafetensors,
  parseSafetensors,
  type SafeTensor,
  type SafetensorsFile,
} from './safetensors-codec.ts';

export * from './safetensors-codec.ts';

/** Writes a safetensors file atomically (temporary file in the same folder, then rename). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata, path);
  try {
    await writeFileAtomic(path, bytes);
  } catch (err) {
    throw new McoreError('E_WEIGHTS', `${path}: could not write (${(err as Error).message})`);
  }
}

/** Reads a safetensors file (a path, or its bytes with `name` for messages). */
export async function readSafetensors(source: string | Uint8Array, name?: string): Promise<SafetensorsFile> {
  if (typeof source !== 'string') return parseSafetensors(source, name ?? '<memory>');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source);
  } catch (err) {
    throw new McoreError('E_WEIGHTS', `${source}: cannot read (${(err as Error).message})`);
  }
  return parseSafetensors(bytes, name ?? source);
}
