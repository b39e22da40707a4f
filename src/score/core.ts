/**
 * The runtime-neutral scoring core: everything `score` does that is not I/O — frame sampling, model
 * input, segmentation decode, stage pooling, exemplar choice, per-stage deltas, result assembly — over
 * onnxruntime-common's session interface and plain typed arrays. No Node built-in, no tfjs, no native
 * module reaches it (test/score/core.test.ts bundles it for a browser and checks). Node opens the
 * sessions with onnxruntime-node and decodes with ffmpeg/sharp (./scorer.ts); a browser opens them with
 * onnxruntime-web and decodes with its own APIs.
 *
 * @example
 * import * as ort from 'onnxruntime-web';
 * const manifest = parseManifest(await (await fetch('bundle/manifest.json')).text(), 'manifest.json');
 * const open = async (f: string) => wrapSession(await ort.InferenceSession.create(`bundle/${f}`), ort.Tensor);
 * const core = createScoringCore({ manifest, exemplars, sessions: { backbone: await open('backbone.onnx'), ... } });
 * const indices = sampleIndices(0, frameCount - 1, manifest.frames);   // which source frames to decode
 * const result = await core.scoreQuery({ kind: 'video', path: 'dive.mp4', frames, indices, sourceFrames: frameCount, warnings: [] });
 */
export { sampleIndices } from '../data/frame-sampling.ts';
export type { Frame } from '../data/types.ts';
export { McoreError, type McoreErrorCode } from '../errors.ts';
export { decodeTransitions } from '../model/transitions.ts';
export { type OnnxArray, type OnnxSession, type TensorConstructor, wrapSession } from '../onnx/session.ts';
export { VERSION } from '../version.ts';
export {
  BUNDLE_FILES,
  type BundleManifest,
  type BundleTransform,
  type ExemplarBank,
  type ExemplarRecord,
  parseExemplarBank,
  parseManifest,
} from './bundle-format.ts';
export { poolStages, toModelInput, videoEncoder } from './encode.ts';
export { exemplarTable, signed, stageTable } from './result-text.ts';
export {
  chooseExemplars,
  createScoringCore,
  type ExemplarUse,
  type QueryInput,
  type ScoreEvent,
  type ScoreOptions,
  type ScoreResult,
  type ScoreStep,
  type ScoreTimings,
  type ScoringCore,
  type StageComparison,
  type StageResult,
} from './scoring.ts';
