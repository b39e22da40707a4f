/**
 * The run record: what a run stores besides its weights (dataset, config, method, backbone weights,
 * feature cache), enough to rebuild model and data. Kept in every checkpoint's checkpoint.json.
 */
import path from 'node:path';
import type { RunConfig } from '../config.ts';
import { absoluteDatasetSpec } from '../data/open.ts';
import { DEFAULT_FEATURE_CACHE } from './feature-cache.ts';
import type { MethodName } from './method.ts';

/** What a run records besides the weights: enough to rebuild model and data. */
export interface RunRecord {
  dataset: string;
  config: RunConfig;
  /**
   * Backbone weights: the head-only features come from them; an end-to-end run starts its backbone
   * from them (initRunParams).
   */
  backboneWeights?: string;
  /** The method trained (default 'mcore'; src/methods/registry.ts builds it). */
  method?: MethodName;
  /** The feature cache folder of a head-only run (absolute), where `evalRun` looks by default. */
  featureCache?: string;
}

/**
 * The record as a run stores it: dataset, backbone weights and (head-only) the feature cache as
 * absolute paths resolved against the current directory.
 */
export function absoluteRunRecord(record: RunRecord, featureCache?: string): RunRecord {
  const headOnly = record.config.train.mode === 'head-only';
  return {
    ...record,
    dataset: absoluteDatasetSpec(record.dataset),
    ...(record.backboneWeights ? { backboneWeights: path.resolve(record.backboneWeights) } : {}),
    ...(headOnly
      ? { featureCache: path.resolve(featureCache ?? record.featureCache ?? DEFAULT_FEATURE_CACHE) }
      : {}),
  };
}
