/**
 * `mapLimit(items, limit, fn)`: `fn` over every item with at most `limit` calls in flight; the
 * results in item order. After the first rejection no new item is started and that rejection is
 * returned. Used wherever many files are decoded or statted (frame folders, manifests).
 *
 * @example
 * const images = await mapLimit(files, 4, (f) => readImage(f));
 */
import { McoreError } from './errors.ts';

export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new McoreError('E_CONFIG', `concurrency must be an integer >= 1, got ${limit}`);
  }
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
