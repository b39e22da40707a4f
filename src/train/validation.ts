/**
 * Validation inside the training split (train.validation): a seeded share of each action type's
 * training clips is held out; after every epoch the model's SRCC on them (exemplars from the clips still
 * trained on, whole-split protocol) decides which checkpoint is the best (RUN/best, src/train/run-folder.ts).
 * The test split is never looked at.
 */
import type { ClipRecord } from '../data/clips.ts';
import { McoreError } from '../errors.ts';
import { createRng, shuffled } from '../rng.ts';

/**
 * Splits training clips into those trained on (`fit`) and those held out (`val`): per action type,
 * round(share x n) clips chosen by a seeded shuffle, always leaving at least one to train on (a type
 * with a single clip keeps it). No clip held out: E_CONFIG saying how to fix it.
 */
export function holdOutValidation<T extends Pick<ClipRecord, 'key' | 'actionType'>>(
  clips: readonly T[],
  share: number,
  seed: number,
): { fit: T[]; val: T[] } {
  const byType = new Map<string, T[]>();
  for (const c of clips) byType.set(c.actionType, [...(byType.get(c.actionType) ?? []), c]);
  const held = new Set<string>();
  const rng = createRng(seed);
  for (const type of [...byType.keys()].sort()) {
    const members = byType.get(type)!;
    const n = Math.min(Math.round(share * members.length), members.length - 1);
    for (const c of shuffled(members, rng).slice(0, Math.max(0, n))) held.add(c.key);
  }
  if (held.size < 2) {
    throw new McoreError(
      'E_CONFIG',
      `train.validation=${share} holds out ${held.size} of ${clips.length} training clips; SRCC needs at least 2: ` +
        'raise the share, or set train.validation=0',
    );
  }
  return { fit: clips.filter((c) => !held.has(c.key)), val: clips.filter((c) => held.has(c.key)) };
}

/** RUN/best/best.json: the best epoch by validation SRCC, and the SRCC of every epoch so far. */
export interface BestRecord {
  epoch: number;
  srcc: number;
  /** Validation SRCC per epoch (index = epoch - 1). */
  history: number[];
  /** Clips held out. */
  clips: number;
}
