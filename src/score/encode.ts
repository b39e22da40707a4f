/**
 * Encoding videos in ONNX Runtime, the front half of scoring (spec section 2): frames -> backbone
 * features -> segmenter logits -> decoded transitions -> stage tokens. Used for the query in `score`
 * and for every training clip when a bundle's exemplar bank is built, so both go through the same
 * graphs. Stage pooling is the [K*L, T] interpolation matrix of src/model/stage-pool.ts applied in
 * TypeScript (at most two non-zero weights per row).
 *
 * Runtime-neutral (part of the scoring core, ./core.ts): sessions come from the caller's ONNX Runtime;
 * ./sessions.ts opens them in Node.
 *
 * @example
 * const enc = videoEncoder({ backbone, segmenter }, dims);     // open OnnxSessions
 * const input = toModelInput(frames, manifest.transform);       // [T, 3, S, S]
 * const { transitions, tokens } = await enc.encode(input, 1);   // [[t0, t1]], [1, K*L, D]
 * await enc.dispose();
 */
import type { Frame } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { interpolationMatrix } from '../model/interpolation.ts';
import { decodeTransitions } from '../model/transitions.ts';
import { dispose, type OnnxSession, runBackbone, runSegmenter } from '../onnx/session.ts';
import type { BundleTransform } from './bundle.ts';

/**
 * T frames, each `resize.width` x `resize.height` RGB -> model input [T, 3, crop, crop] (NCHW): the
 * centre crop, scaled to [0, 1], minus mean, over std per channel (the same arithmetic as
 * transformClip of src/data/transforms.ts at test time, in the ONNX layout). Writes into `out` at
 * `offset` (values) when given. Throws E_SHAPE for a frame of another size.
 */
export function toModelInput(
  frames: readonly Frame[],
  t: BundleTransform,
  out?: Float32Array,
  offset = 0,
): Float32Array {
  const { width: w, height: h } = t.resize;
  const S = t.crop;
  const dest = out ?? new Float32Array(frames.length * 3 * S * S);
  const ox = Math.floor((w - S) / 2);
  const oy = Math.floor((h - S) / 2);
  frames.forEach((f, i) => {
    if (f.width !== w || f.height !== h || f.data.length !== w * h * 3) {
      throw new McoreError(
        'E_SHAPE',
        `model input: frame ${i} is ${f.width}x${f.height}, the bundle's transform expects ${w}x${h}`,
      );
    }
    for (let c = 0; c < 3; c++) {
      const mean = t.mean[c];
      const std = t.std[c];
      const plane = offset + (i * 3 + c) * S * S;
      for (let y = 0; y < S; y++) {
        const row = ((oy + y) * w + ox) * 3 + c;
        const to = plane + y * S;
        for (let x = 0; x < S; x++) dest[to + x] = (f.data[row + 3 * x] / 255 - mean) / std;
      }
    }
  });
  return dest;
}

/**
 * Stage pooling: features [V, T, D] row-major, transitions V x (K-1) -> tokens [V, K*L, D] (stage s at
 * rows s*L .. s*L+L-1), each token the interpolationMatrix row applied to the video's features.
 */
export function poolStages(
  features: Float32Array,
  dims: { V: number; T: number; D: number },
  transitions: readonly (readonly number[])[],
  L: number,
): Float32Array {
  const { V, T, D } = dims;
  if (features.length !== V * T * D || transitions.length !== V) {
    throw new McoreError(
      'E_SHAPE',
      `stage pooling: ${features.length} feature values and ${transitions.length} transition rows for [${V}, ${T}, ${D}]`,
    );
  }
  const rows = (transitions[0]?.length ?? 0) + 1;
  const out = new Float32Array(V * rows * L * D);
  for (let v = 0; v < V; v++) {
    const m = interpolationMatrix(transitions[v], T, L);
    for (let r = 0; r < rows * L; r++) {
      const dest = (v * rows * L + r) * D;
      for (let t = 0; t < T; t++) {
        const wgt = m[r * T + t];
        if (wgt === 0) continue;
        const src = (v * T + t) * D;
        for (let d = 0; d < D; d++) out[dest + d] += wgt * features[src + d];
      }
    }
  }
  return out;
}

export interface EncoderDims {
  /** Frames per video T. */
  frames: number;
  /** Stages K and tokens per stage L. */
  stages: number;
  tokensPerStage: number;
  /** Feature width D. */
  featureDim: number;
  /** Input side S (the transform's crop). */
  crop: number;
}

export interface EncodedVideos {
  /** [V, T, D] */
  features: Float32Array;
  /** V x (K-1) */
  transitions: number[][];
  /** [V, K*L, D] */
  tokens: Float32Array;
  timings: { backboneMs: number; segmenterMs: number; poolMs: number };
}

export interface VideoEncoder {
  /** input [V*T, 3, S, S] (each video's T frames consecutive) -> features, transitions, tokens. */
  encode(input: Float32Array, V: number): Promise<EncodedVideos>;
  dispose(): Promise<void>;
}

/**
 * What follows the backbone: features [V, T, D] -> the segmenter's transitions (V x (K-1)) and the
 * stage tokens [V, K*L, D] pooled on them. The video encoder runs it after its backbone run; a bank
 * built from cached features (./export.ts) runs it alone.
 */
export async function encodeFeatures(
  segmenter: OnnxSession,
  features: Float32Array,
  V: number,
  dims: Pick<EncoderDims, 'frames' | 'featureDim' | 'stages' | 'tokensPerStage'>,
): Promise<{
  transitions: number[][];
  tokens: Float32Array;
  timings: { segmenterMs: number; poolMs: number };
}> {
  const { frames: T, featureDim: D, stages: K, tokensPerStage: L } = dims;
  const t0 = performance.now();
  const logits = await runSegmenter(segmenter, { data: features, dims: [V, T, D] });
  const transitions = decodeTransitions(logits.data, T, K);
  const t1 = performance.now();
  const tokens = poolStages(features, { V, T, D }, transitions, L);
  return { transitions, tokens, timings: { segmenterMs: t1 - t0, poolMs: performance.now() - t1 } };
}

/**
 * A video encoder over open backbone and segmenter sessions (any ONNX Runtime; see ../onnx/session.ts).
 * `dispose` releases both sessions.
 */
export function videoEncoder(
  sessions: { backbone: OnnxSession; segmenter: OnnxSession },
  dims: EncoderDims,
): VideoEncoder {
  const { backbone, segmenter } = sessions;
  const { frames: T, crop: S } = dims;
  return {
    async encode(input: Float32Array, V: number): Promise<EncodedVideos> {
      const n = V * T;
      const t0 = performance.now();
      const features = await runBackbone(backbone, { data: input, dims: [n, 3, S, S] });
      const t1 = performance.now();
      const { transitions, tokens, timings } = await encodeFeatures(segmenter, features.data, V, dims);
      return { features: features.data, transitions, tokens, timings: { backboneMs: t1 - t0, ...timings } };
    },
    async dispose() {
      await dispose(backbone);
      await dispose(segmenter);
    },
  };
}
