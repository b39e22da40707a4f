/**
 * The scoring methods `mcore train --method NAME` trains, all with the same trainer and evaluated with
 * the same exemplar protocol (the demo's baselines on any dataset):
 *   - `mcore`: MCoRe (src/methods/mcore-method.ts);
 *   - `core`: CoRe-style whole-video contrastive regression, no stages (src/methods/baselines.ts);
 *   - `regression`: plain regression of the score from time-pooled features, no exemplars.
 */
import type { LossConfig } from '../config.ts';
import type { ModelConfig } from '../model/config.ts';
import { METHOD_NAMES, type Method, type MethodName } from '../train/method.ts';

export { METHOD_NAMES, type MethodName };

import { coreMethod, regressionMethod } from './baselines.ts';
import { mcoreMethod } from './mcore-method.ts';

export interface MethodOptions {
  /** Train the backbone too (frames in) or only the head (features in). */
  backbone: boolean;
  /** MCoRe's losses (the baselines have one loss each). */
  loss: LossConfig;
  scoreScale: number;
}

/** Whether `name` is one of METHOD_NAMES. */
export function isMethodName(name: string): name is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(name);
}

/** The method `name` on the model `cfg`. */
export function createMethod(name: MethodName, cfg: ModelConfig, opts: MethodOptions): Method {
  if (name === 'core') return coreMethod(cfg, { backbone: opts.backbone, scoreScale: opts.scoreScale });
  if (name === 'regression')
    return regressionMethod(cfg, { backbone: opts.backbone, scoreScale: opts.scoreScale });
  return mcoreMethod(cfg, opts);
}
