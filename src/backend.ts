/**
 * The compute backend: TensorFlow.js on WebAssembly in Node (single-threaded SIMD build), with the
 * pure-JS cpu backend as fallback and numerical cross-check. This is the only global state of the
 * library. Kernels that wasm lacks and the model needs get gradients in `./model/kernels.ts`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { McoreError } from './errors.ts';

export type BackendName = 'wasm' | 'cpu';

let wasmPathsSet = false;

/** Selects and initialises the backend (idempotent). Returns the backend in use. */
export async function useBackend(name: BackendName = 'wasm'): Promise<BackendName> {
  if (name === 'wasm' && !wasmPathsSet) {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    setWasmPaths(`${dir}${path.sep}`);
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(name);
  if (!ok) {
    throw new McoreError('E_BACKEND', `could not initialise the tfjs '${name}' backend; try --backend cpu`);
  }
  await tf.ready();
  return name;
}

export { tf };

/** The parts of tfjs-backend-wasm's backend that `readInto` reads (4.22: its `readSync`'s own fields). */
interface WasmHeapBackend {
  dataIdMap?: { get(id: object): { memoryOffset?: number; dtype?: string } | undefined };
  wasm?: { HEAPU8?: Uint8Array };
}

/**
 * Copies the float32 values of `t` into `target` at `offset`: on the wasm backend straight from its
 * heap (one copy, no garbage: `dataSync` slices the heap first, ~80 ms and 26 MB of garbage a step for
 * the full-size head's parameters), elsewhere through `dataSync`.
 */
export function readInto(t: tf.Tensor, target: Float32Array, offset = 0): void {
  const backend = tf.backend() as unknown as WasmHeapBackend;
  const entry = backend.dataIdMap?.get(t.dataId);
  const heap = backend.wasm?.HEAPU8;
  if (entry?.memoryOffset !== undefined && entry.dtype === 'float32' && heap) {
    target.set(new Float32Array(heap.buffer, heap.byteOffset + entry.memoryOffset, t.size), offset);
  } else {
    target.set(t.dataSync() as Float32Array, offset);
  }
}
