import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readInto, useBackend } from '../src/backend.ts';

describe('readInto', () => {
  afterAll(async () => {
    await useBackend('wasm');
  });

  for (const backend of ['wasm', 'cpu'] as const) {
    it(`copies a tensor's values into a buffer at an offset (${backend})`, async () => {
      await useBackend(backend);
      const t = tf.tidy(() => tf.add(tf.range(0, 10, 1, 'float32'), 0.5)); // a computed tensor, not an upload
      const target = new Float32Array(14).fill(-1);
      const dataSync = vi.spyOn(t, 'dataSync');
      readInto(t, target, 3);
      // wasm: straight from the heap, not through the dataSync fallback
      expect(dataSync).toHaveBeenCalledTimes(backend === 'wasm' ? 0 : 1);
      dataSync.mockRestore();
      expect(Array.from(target)).toEqual([-1, -1, -1, ...Array.from(t.dataSync()), -1]);
      t.dispose();
    });
  }
});
