/**
 * Exemplar sampling (spec section 4). "With dive number" (dn = true): exemplars share the query's
 * action type; "without" (dn = false): any training clip. A query is never its own exemplar unless
 * it is alone in its class. Test exemplars always come from the training split.
 */
import { McoreError } from '../errors.ts';
import { type Rng, shuffled } from '../rng.ts';

export interface SampleClip {
  key: string;
  actionType: string;
}

/**
 * The exemplar choice of evaluation and of scoring (one rule for both): a seeded shuffle of the pool,
 * cut to `m` (fewer when the pool is smaller).
 */
export function pickExemplars<T>(pool: readonly T[], m: number, rng: Rng): T[] {
  return shuffled(pool, rng).slice(0, Math.min(m, pool.length));
}

/** Index of training clips by action type. */
export class ExemplarIndex {
  readonly byType = new Map<string, string[]>();
  readonly all: string[];

  constructor(train: readonly SampleClip[]) {
    if (train.length === 0)
      throw new McoreError('E_INPUT', 'the training split is empty: no exemplars to compare with');
    for (const c of train) {
      const list = this.byType.get(c.actionType) ?? [];
      list.push(c.key);
      this.byType.set(c.actionType, list);
    }
    this.all = train.map((c) => c.key);
  }

  private pool(actionType: string, dn: boolean): string[] {
    if (!dn) return this.all;
    const pool = this.byType.get(actionType);
    if (!pool) {
      const known = [...this.byType.keys()].sort().join(', ');
      throw new McoreError(
        'E_INPUT',
        `action type '${actionType}' has no training clips to use as exemplars (known: ${known}); use the "without dive number" protocol (--no-dn)`,
      );
    }
    return pool;
  }

  /** One training exemplar for a training query: never the query itself unless it is alone. */
  trainExemplar(query: SampleClip, dn: boolean, rng: Rng): string {
    const pool = this.pool(query.actionType, dn);
    const others = pool.filter((k) => k !== query.key);
    const from = others.length > 0 ? others : pool;
    return from[rng.int(from.length)];
  }

  /** M distinct test exemplars (fewer when the pool is smaller), excluding the query's own key. */
  testExemplars(query: SampleClip, m: number, dn: boolean, rng: Rng): string[] {
    const pool = this.pool(query.actionType, dn).filter((k) => k !== query.key);
    return pickExemplars(pool, m, rng);
  }
}
