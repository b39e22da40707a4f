/**
 * `mapLimit(items, limit, fn)`: `fn` over every item with at most `limit` calls in flight; the
 * results in item order. Used wherever many files are decoded or statted (frame folders, manifests).
 *
 * @example
 * const images = await mapLimit(files, 4, (f) => readImage(f));
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
