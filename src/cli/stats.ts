/** Distributions and histograms of plain numbers, for the dataset summaries of `mcore data check`. */

export interface Distribution {
  n: number;
  min: number;
  mean: number;
  /** Population standard deviation. */
  sd: number;
  max: number;
}

export function distribution(values: readonly number[]): Distribution {
  const n = values.length;
  if (n === 0) return { n, min: Number.NaN, mean: Number.NaN, sd: Number.NaN, max: Number.NaN };
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
  return { n, min, mean, sd, max };
}

export interface HistogramBin {
  lo: number;
  hi: number;
  count: number;
}

/** `bins` equal bins over [min, max]; the last bin includes max. */
export function histogram(values: readonly number[], bins: number): HistogramBin[] {
  if (values.length === 0) return [];
  const { min, max } = distribution(values);
  const width = (max - min) / bins || 1;
  const out = Array.from({ length: bins }, (_, i) => ({
    lo: min + i * width,
    hi: min + (i + 1) * width,
    count: 0,
  }));
  for (const v of values) out[Math.min(bins - 1, Math.floor((v - min) / width))].count++;
  return out;
}

/** A number with `d` decimals; NaN as '-'. */
export const fmt = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');
/** min, mean, sd and max of a distribution. */
export const fmtDist = (x: Distribution, d = 2) =>
  `min ${fmt(x.min, d)}  mean ${fmt(x.mean, d)}  sd ${fmt(x.sd, d)}  max ${fmt(x.max, d)}`;

/** One text line per histogram bin: range, count and a bar. */
export function formatHistogram(h: readonly HistogramBin[], digits: number): string[] {
  const most = Math.max(1, ...h.map((b) => b.count));
  const w = Math.max(...h.map((b) => fmt(b.hi, digits).length));
  return h.map(
    (b) =>
      `  ${fmt(b.lo, digits).padStart(w)}-${fmt(b.hi, digits).padEnd(w)} ${String(b.count).padStart(5)} ${'#'.repeat(Math.round((30 * b.count) / most))}`,
  );
}
