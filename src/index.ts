/**
 * mcore's library API: a few verbs with options objects; the `mcore` command is a thin shell over them.
 *
 * @example
 *   import { useBackend, loadBundle } from 'mcore';
 *   await useBackend('wasm');
 *   const bundle = await loadBundle('mcore-demo/bundle');
 *   const result = await bundle.score('dive.mp4', { actionType: '407c' });
 *   console.log(result.score, result.stages);
 *   await bundle.dispose();
 */
export { type BackendName, useBackend } from './backend.ts';
export { type LossConfig, type RunConfig, resolveConfig } from './config.ts';
export { openDataset, parseDatasetSpec } from './data/open.ts';
export { createSynthDive, type SynthDive, type SynthDiveOptions } from './data/synthdive/index.ts';
export type { ClipInfo, Frame, StagedDataset } from './data/types.ts';
export { McoreError, type McoreErrorCode } from './errors.ts';
export { type EvalResult, evaluate } from './eval/evaluate.ts';
export { aiou, mse, rl2, srcc, tiou, withinTypeSrcc } from './eval/metrics.ts';
export { honestyWarnings, type ReferencePoints, referencePoints } from './eval/reference.ts';
export { flattenStateDicts, readTorchCheckpoint } from './io/torch.ts';
export { METHOD_NAMES, type MethodName } from './methods/registry.ts';
export { MODEL_VARIANTS, type ModelConfig, modelConfig } from './model/config.ts';
export { importParams } from './model/import-map.ts';
export { mcoreForward, mcoreSpecs } from './model/mcore.ts';
export { initParams, type ParamSpecs, type Params } from './model/params.ts';
export { modelSummary } from './model/summary.ts';
export { loadWeights, saveWeights } from './model/weights.ts';
export { type BatchOptions, type BatchSummary, scoreBatch } from './score/batch.ts';
export { listBatchInputs } from './score/batch-inputs.ts';
export { exportBundle } from './score/export.ts';
export { mergeResults } from './score/merge.ts';
export type { BatchLine } from './score/results-file.ts';
export { loadBundle, score } from './score/scorer.ts';
export { resolveShard, type Shard } from './score/shard.ts';
export { type DemoOptions, type DemoResults, runDemo } from './verbs/demo.ts';
export { exportRunBundle } from './verbs/export.ts';
export { exportRunPth } from './verbs/export-pth.ts';
export {
  type ImportCheckpointOptions,
  type ImportSummary,
  importCheckpoint,
  referenceBundleTransform,
} from './verbs/import.ts';
export { type EvalRunResult, evalRun, type RunRecord, trainRun } from './verbs/run.ts';
export { VERSION } from './version.ts';
