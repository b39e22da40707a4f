/**
 * ONNX Runtime for Node (CPU execution provider): opens the exported graphs (./export.ts) as sessions
 * that ./session.ts runs. Callers pass and get plain Float32Arrays with their dims, and free a
 * session with `dispose`.
 *
 * @example
 * const s = await createSession(exportBackbone(params, cfg.backbone, { frames: 96 }), { threads: 2 });
 * const { data, dims } = await runBackbone(s, { data: frames, dims: [96, 3, 112, 112] }); // dims [1, 96, 368]
 * await dispose(s);
 */
import * as ort from 'onnxruntime-node';
import { McoreError } from '../errors.ts';
import { type OnnxSession, wrapSession } from './session.ts';

export {
  dispose,
  type OnnxArray,
  type OnnxSession,
  run,
  runBackbone,
  runScorer,
  runSegmenter,
} from './session.ts';

export interface SessionOptions {
  /** Intra-op threads (default 2); inter-op is 1 (sequential execution). */
  threads?: number;
}

/**
 * Loads a model (bytes or a file path) into an ONNX Runtime CPU session: `threads` intra-op threads,
 * one inter-op thread, all graph optimisations. Throws E_INPUT if ONNX Runtime rejects the model.
 */
export async function createSession(
  model: Uint8Array | string,
  opts: SessionOptions = {},
): Promise<OnnxSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads ?? 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  let session: ort.InferenceSession;
  try {
    session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
  } catch (err) {
    const what = typeof model === 'string' ? model : `<${model.length} bytes>`;
    throw new McoreError('E_INPUT', `onnx: cannot load the model ${what}: ${(err as Error).message}`);
  }
  return wrapSession(session, ort.Tensor);
}
