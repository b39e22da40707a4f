/**
 * The stage-pooling interpolation matrix (spec section 2; see ./stage-pool.ts): plain arrays, no
 * tensors, so the runtime-neutral scoring core (src/score/core.ts) and training share it.
 */
import { McoreError } from '../errors.ts';

/**
 * The interpolation matrix of one video: [K*L, T] row-major, row s*L + i holding the weights of the
 * (at most two) frames that sample i of stage s mixes. `transitions` are the K-1 stage starts after
 * the first, strictly increasing within (0, T).
 */
export function interpolationMatrix(transitions: readonly number[], T: number, L: number): Float32Array {
  const bounds = [0, ...transitions, T];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const ok = Number.isInteger(bounds[s + 1]) && bounds[s + 1] > bounds[s];
    if (!ok) {
      throw new McoreError(
        'E_INPUT',
        `stage pooling: transitions [${transitions.join(', ')}] must be integers, strictly increasing ` +
          `within (0, ${T}) so that no stage is empty`,
      );
    }
  }
  const K = bounds.length - 1;
  const m = new Float32Array(K * L * T);
  for (let s = 0; s < K; s++) {
    const start = bounds[s];
    const n = bounds[s + 1] - start;
    for (let i = 0; i < L; i++) {
      const pos = L > 1 ? (i * (n - 1)) / (L - 1) : 0;
      const lo = Math.floor(pos);
      const hi = Math.min(lo + 1, n - 1);
      const frac = pos - lo;
      const row = (s * L + i) * T;
      m[row + start + lo] += 1 - frac;
      m[row + start + hi] += frac;
    }
  }
  return m;
}
