/**
 * Frame sampling as the reference does it (spec section 4): T indices `linspace(start, end, T)`
 * truncated to integers, and the stage transitions recomputed on the sampled frames.
 */

/** T frame indices from `start` to `end` inclusive, numpy.linspace then truncation. Repeats when the clip is short. */
export function sampleIndices(start: number, end: number, count: number): number[] {
  if (count === 1) return [Math.trunc(start)];
  const out: number[] = [];
  const step = (end - start) / (count - 1);
  for (let i = 0; i < count; i++) out.push(Math.trunc(i === count - 1 ? end : start + i * step));
  return out;
}

/**
 * Transitions on the sampled frames: t_k = first sampled position whose frame is at or after the
 * absolute transition frame k (the first frame of stage k+1). Kept within [1, T-1] and non-decreasing,
 * so no stage is empty at the start.
 *   indices: the sampled absolute frame numbers (length T); transitions: K-1 absolute frames.
 */
export function sampledTransitions(indices: readonly number[], transitions: readonly number[]): number[] {
  const T = indices.length;
  const out: number[] = [];
  for (const frame of transitions) {
    let t = indices.findIndex((f) => f >= frame);
    if (t < 0) t = T - 1;
    t = Math.min(Math.max(t, 1), T - 1);
    out.push(Math.max(t, out.length > 0 ? out[out.length - 1] : 1));
  }
  return out;
}

/**
 * FineDiving's rule from per-frame step labels (one per frame from start to end): t0 = first sampled
 * frame of the instance's 2nd distinct label (by first appearance), t_last = first sampled frame of the
 * last distinct label (Entry). For K stages the K-1 boundaries are the first appearances of the 2nd ..
 * (K-1)th distinct labels and of the last label.
 */
export function transitionsFromLabels(
  indices: readonly number[],
  start: number,
  labels: ArrayLike<number>,
  stages: number,
): number[] {
  const distinct: number[] = [];
  for (let i = 0; i < labels.length; i++) if (!distinct.includes(labels[i])) distinct.push(labels[i]);
  const wanted = [...distinct.slice(1, stages - 1), distinct[distinct.length - 1]];
  const sampledLabels = indices.map((f) => labels[Math.min(Math.max(f - start, 0), labels.length - 1)]);
  return wanted.map((label) => {
    const t = sampledLabels.indexOf(label);
    return t < 0 ? indices.length - 1 : Math.max(t, 1);
  });
}
