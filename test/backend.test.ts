import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
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
      readInto(t, target, 3);
      expect(Array.from(target)).toEqual([-1, -1, -1, ...Array.from(t.dataSync()), -1]);
      if (backend === 'wasm') {
        // The heap path is taken (tfjs-backend-wasm's fields are there), not the dataSync fallback.
        const b = tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } };
        expect(typeof b.dataIdMap.get(t.dataId).memoryOffset).toBe('number');
      }
      t.dispose();
    });
  }
});
