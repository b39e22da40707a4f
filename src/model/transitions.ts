/**
 * Decoding the segmenter's transition logits into stage boundaries: plain arrays, no tensors, so the
 * runtime-neutral scoring core (src/score/core.ts) and training share it.
 */
import { McoreError } from '../errors.ts';

/**
 * Transition frames from segmenter logits, per video (test-time decoding of the reference).
 * `logits` is [V][T][K-1] or a row-major Float32Array of V*T*(K-1) values.
 *
 * General rule for K stages: split the T frames into K-1 windows of w = floor(T / (K-1)) frames;
 * transition k lies in window k: t_k = w*k + argmax_{t in [0, w)} L[w*k + t, k] (first maximum on
 * ties). A predicted 0 becomes 1 so that the first stage is never empty; the windows keep the
 * transitions strictly increasing and below T. For T = 96, K = 3: w = 48, t_0 in [1, 48), t_1 in [48, 96).
 * Returns V x (K-1) frame indices.
 */
export function decodeTransitions(logits: number[][][] | Float32Array, T: number, K: number): number[][] {
  const C = K - 1;
  const w = Math.floor(T / C);
  if (C < 1 || w < 2) {
    throw new McoreError('E_INPUT', `decodeTransitions: need K >= 2 and T >= 2(K-1), got T=${T}, K=${K}`);
  }
  const at: (v: number, t: number, k: number) => number =
    logits instanceof Float32Array ? (v, t, k) => logits[(v * T + t) * C + k] : (v, t, k) => logits[v][t][k];
  const V = logits instanceof Float32Array ? logits.length / (T * C) : logits.length;
  if (!Number.isInteger(V)) {
    throw new McoreError('E_SHAPE', `decodeTransitions: ${logits.length} values are not V x ${T} x ${C}`);
  }
  const out: number[][] = [];
  for (let v = 0; v < V; v++) {
    const row: number[] = [];
    for (let k = 0; k < C; k++) {
      let best = 0;
      for (let t = 1; t < w; t++) if (at(v, w * k + t, k) > at(v, w * k + best, k)) best = t;
      row.push(Math.max(1, w * k + best));
    }
    out.push(row);
  }
  return out;
}
