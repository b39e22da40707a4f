/**
 * The instances of a FineDiving-scale rehearsal: all of them, or a small subset for a dry run that
 * still works end to end (test clips whose action types have training clips, so that the exemplar
 * protocol with the action type finds exemplars).
 */
import type { FineDivingAnnotations } from '../../src/data/finediving-annotations.ts';

/**
 * Keys of the rehearsal: every train then test key when `limit` is undefined; else about a quarter
 * test keys (first in the split's order) and the rest training keys of the same action types, taken
 * round-robin over the types in the split's order.
 */
export function rehearsalKeys(ann: FineDivingAnnotations, limit?: number): string[] {
  if (limit === undefined || limit >= ann.trainKeys.length + ann.testKeys.length) {
    return [...ann.trainKeys, ...ann.testKeys];
  }
  const nTest = Math.max(1, Math.ceil(limit / 4));
  const test = ann.testKeys.slice(0, nTest);
  const types = [...new Set(test.map((k) => ann.records.get(k)!.actionType))];
  const byType = new Map<string, string[]>(types.map((t) => [t, []]));
  for (const k of ann.trainKeys) byType.get(ann.records.get(k)!.actionType)?.push(k);
  const train: string[] = [];
  for (let round = 0; train.length < limit - test.length; round++) {
    let any = false;
    for (const t of types) {
      const k = byType.get(t)![round];
      if (k !== undefined && train.length < limit - test.length) {
        train.push(k);
        any = true;
      }
    }
    if (!any) break;
  }
  const order = new Map(ann.trainKeys.map((k, i) => [k, i]));
  train.sort((a, b) => order.get(a)! - order.get(b)!);
  return [...train, ...test];
}
