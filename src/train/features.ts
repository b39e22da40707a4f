/**
 * Per-frame backbone features of clips, computed once in test mode (no augmentation): the input of
 * head-only training and of the evaluator's shared encodings.
 */
import * as tf from '@tensorflow/tfjs-core';
import { featureDim, type ModelConfig } from '../model/config.ts';
import type { Params } from '../model/params.ts';
import { backboneForward } from '../model/regnet.ts';

/** Encodes `keys` in batches of `batch` videos: key -> features [T * D] (row-major [T, D]). */
export async function extractFeatures(
  params: Params,
  cfg: ModelConfig,
  keys: readonly string[],
  load: (keys: string[]) => Promise<tf.Tensor>,
  opts: { batch: number; onProgress?: (done: number, total: number) => void },
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const per = cfg.frames * featureDim(cfg);
  for (let i = 0; i < keys.length; i += opts.batch) {
    const chunk = keys.slice(i, i + opts.batch);
    const input = await load(chunk);
    const f = tf.tidy(() => backboneForward(params, cfg.backbone, input as tf.Tensor5D, 'backbone'));
    const data = (await f.data()) as Float32Array;
    tf.dispose([input, f]);
    for (let j = 0; j < chunk.length; j++) out.set(chunk[j], data.slice(j * per, (j + 1) * per));
    opts.onProgress?.(Math.min(i + opts.batch, keys.length), keys.length);
  }
  return out;
}
