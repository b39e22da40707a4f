/**
 * Running the exported graphs (./export.ts) in any ONNX Runtime: onnxruntime-node (./runtime.ts) or
 * onnxruntime-web in a browser. This file knows only onnxruntime-common's session interface and plain
 * Float32Arrays: callers pass and get arrays with their dims. The runtime that opened a session hands
 * in its Tensor class (each runtime package bundles its own), so nothing here imports a runtime.
 *
 * @example
 * const s = wrapSession(await ort.InferenceSession.create(bytes), ort.Tensor);   // any ONNX Runtime
 * const { dims } = await runBackbone(s, { data: frames, dims: [96, 3, 112, 112] }); // dims [1, 96, 368]
 * await dispose(s);
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { McoreError } from '../errors.ts';

/** A dense float32 array with its shape (row-major). */
export interface OnnxArray {
  data: Float32Array;
  dims: number[];
}

/** A runtime's Tensor constructor (onnxruntime-node's or onnxruntime-web's). */
export type TensorConstructor = new (type: 'float32', data: Float32Array, dims: readonly number[]) => Tensor;

/** An ONNX Runtime session over one exported graph. */
export interface OnnxSession {
  readonly session: InferenceSession;
  /** The Tensor class of the runtime that created `session`. */
  readonly Tensor: TensorConstructor;
  /** Input names and their declared shapes (numbers fixed, strings symbolic). */
  readonly inputs: ReadonlyArray<{ name: string; shape: ReadonlyArray<number | string> }>;
  readonly outputs: ReadonlyArray<{ name: string; shape: ReadonlyArray<number | string> }>;
}

function describe(meta: readonly InferenceSession.ValueMetadata[]) {
  return meta.map((m) => ({ name: m.name, shape: m.isTensor ? m.shape : [] }));
}

/** Wraps a session created by any ONNX Runtime, with that runtime's Tensor class. */
export function wrapSession(session: InferenceSession, TensorClass: TensorConstructor): OnnxSession {
  return {
    session,
    Tensor: TensorClass,
    inputs: describe(session.inputMetadata),
    outputs: describe(session.outputMetadata),
  };
}

/** Frees the session's resources. */
export async function dispose(s: OnnxSession): Promise<void> {
  await s.session.release();
}

function checkFeed(s: OnnxSession, name: string, a: OnnxArray): void {
  const input = s.inputs.find((i) => i.name === name);
  if (input === undefined) {
    throw new McoreError(
      'E_INPUT',
      `onnx: the model has no input '${name}' (inputs: ${s.inputs.map((i) => i.name).join(', ')}); ` +
        'is this the right graph?',
    );
  }
  const n = a.dims.reduce((p, d) => p * d, 1);
  const ok =
    a.dims.length === input.shape.length &&
    input.shape.every((d, i) => typeof d !== 'number' || d === a.dims[i]) &&
    n === a.data.length;
  if (!ok) {
    throw new McoreError(
      'E_SHAPE',
      `onnx input '${name}': expected shape [${input.shape.join(', ')}], found [${a.dims.join(', ')}] ` +
        `with ${a.data.length} values`,
    );
  }
}

/** Runs the session on named float32 inputs; returns every output as an OnnxArray. */
export async function run(
  s: OnnxSession,
  feeds: Record<string, OnnxArray>,
): Promise<Record<string, OnnxArray>> {
  const tensors: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(feeds)) {
    checkFeed(s, name, a);
    tensors[name] = new s.Tensor('float32', a.data, a.dims);
  }
  const results = await s.session.run(tensors);
  const out: Record<string, OnnxArray> = {};
  for (const [name, t] of Object.entries(results)) {
    out[name] = { data: t.data as Float32Array, dims: t.dims.map(Number) };
  }
  return out;
}

/** The static size of axis `axis` of output `name` (e.g. the backbone's T). */
function outputDim(s: OnnxSession, name: string, axis: number): number | undefined {
  const d = s.outputs.find((o) => o.name === name)?.shape[axis];
  return typeof d === 'number' ? d : undefined;
}

/**
 * Backbone graph: frames [N = V*T, 3, H, W] (NCHW, each video's T frames consecutive) -> features
 * [V, T, D]. Throws E_SHAPE if N is not a multiple of the graph's T.
 */
export async function runBackbone(s: OnnxSession, frames: OnnxArray): Promise<OnnxArray> {
  const T = outputDim(s, 'features', 1);
  if (T !== undefined && frames.dims[0] % T !== 0) {
    throw new McoreError(
      'E_SHAPE',
      `onnx backbone: ${frames.dims[0]} frames are not whole videos of T = ${T} (the graph's frame count)`,
    );
  }
  return (await run(s, { frames })).features;
}

/** Segmenter graph: features [V, T, D] -> logits [V, T, K-1]. */
export async function runSegmenter(s: OnnxSession, features: OnnxArray): Promise<OnnxArray> {
  return (await run(s, { features })).logits;
}

/** Scorer graph: q, e tokens [N, K*L, D] -> delta(q, e) [N]. */
export async function runScorer(s: OnnxSession, qTokens: OnnxArray, eTokens: OnnxArray): Promise<OnnxArray> {
  return (await run(s, { q_tokens: qTokens, e_tokens: eTokens })).delta;
}
