/**
 * The bundle's graphs as onnxruntime-node sessions: the Node side of the scoring core (./core.ts runs
 * them; a browser opens the same graphs with onnxruntime-web).
 *
 * @example
 * const enc = await createVideoEncoder({ backbone: 'b/backbone.onnx', segmenter: 'b/segmenter.onnx' }, dims);
 * const { transitions, tokens } = await enc.encode(input, 1);   // [[t0, t1]], [1, K*L, D]
 * await enc.dispose();
 */
import { createSession, dispose, type OnnxSession } from '../onnx/runtime.ts';
import { type EncoderDims, type VideoEncoder, videoEncoder } from './encode.ts';

type Graph = Uint8Array | string;

/** Opens graphs (bytes or file paths) as sessions of `threads` threads each; all or none. */
export async function openSessions<K extends string>(
  graphs: Record<K, Graph>,
  opts: { threads?: number } = {},
): Promise<Record<K, OnnxSession>> {
  const open: Partial<Record<K, OnnxSession>> = {};
  try {
    for (const name of Object.keys(graphs) as K[]) {
      open[name] = await createSession(graphs[name], { threads: opts.threads ?? 2 });
    }
  } catch (e) {
    for (const s of Object.values(open) as OnnxSession[]) await dispose(s);
    throw e;
  }
  return open as Record<K, OnnxSession>;
}

/** A video encoder over onnxruntime-node sessions of a backbone and a segmenter graph. */
export async function createVideoEncoder(
  graphs: { backbone: Graph; segmenter: Graph },
  dims: EncoderDims,
  opts: { threads?: number } = {},
): Promise<VideoEncoder> {
  return videoEncoder(await openSessions(graphs, opts), dims);
}
