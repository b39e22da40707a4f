/**
 * The FineDiving annotation pickles (`/work/shared/docs/finediving-format.md`) as typed records.
 *
 * Sources: `FineDiving_coarse_annotation.pkl` (frame range, judge scores), the fine-grained file
 * (action type, score, difficulty, step transitions, per-frame labels), `train_split.pkl` and
 * `test_split.pkl`. When `fine-grained_annotation_aqa.pkl` (what the reference AQA code reads) is
 * present, its action type, score, difficulty, transitions and labels are used and must agree with
 * the fine-grained file. Difficulty comes from the fine-grained files as in the reference; where the
 * coarse file disagrees (one instance: 17/164, 2.0 vs 3.4) a warning is returned.
 *
 * Transitions are kept as annotated (`steps_transit_frames`: frame indices relative to the instance
 * start; a few entries are -1 or not ascending in the original data).
 *
 * @example
 * const ann = await loadFineDivingAnnotations('../shared/data/finediving');
 * ann.records.get('01/1'); // { videoName: '01', instance: 1, actionType: '407c', diveScore: 88, ... }
 * ann.trainKeys.length; // 2251
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { McoreError } from '../errors.ts';
import { toInt32 } from '../io/npy.ts';
import { describe, isTuple, loadPickle, PickledNdArray, PyDict, type PyValue } from '../io/pickle.ts';
import { MAX_SCORE } from './types.ts';

export interface FineDivingRecord {
  /** `${videoName}/${instance}` */
  key: string;
  videoName: string;
  instance: number;
  /** Dive number, lower case, e.g. '407c'. */
  actionType: string;
  /** Absolute frame numbers of the instance, inclusive. */
  startFrame: number;
  endFrame: number;
  diveScore: number;
  difficulty: number;
  /** 3, 5 or 7 judge scores. */
  judgeScores: number[];
  /** Per step change, the index (relative to startFrame) of the last frame before it; 2-4 values. */
  stepsTransitFrames: number[];
  /** One sub-action label per frame, length endFrame - startFrame + 1. */
  framesLabels: Int32Array;
}

export interface FineDivingAnnotations {
  records: Map<string, FineDivingRecord>;
  trainKeys: string[];
  testKeys: string[];
  /** Whether fine-grained_annotation_aqa.pkl was found and used. */
  usedAqaFile: boolean;
  /** Disagreements between files that were resolved (see module doc). */
  warnings: string[];
}

export const FINEDIVING_FILES = {
  coarse: 'FineDiving_coarse_annotation.pkl',
  fine: 'FineDiving_fine-grained_annotation.pkl',
  aqa: 'fine-grained_annotation_aqa.pkl',
  train: 'train_split.pkl',
  test: 'test_split.pkl',
} as const;

function bad(file: string, key: string, message: string): never {
  throw new McoreError('E_DATA_LAYOUT', `${file}: entry ${key}: ${message}`);
}

function keyOf(
  file: string,
  k: PyValue,
  where: string,
): { key: string; videoName: string; instance: number } {
  if (!isTuple(k) || k.length !== 2 || typeof k[0] !== 'string' || !Number.isInteger(k[1])) {
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${file}: ${where}: expected a key (video_name: str, instance: int), found ${describe(k)}`,
    );
  }
  const videoName = k[0] as string;
  const instance = k[1] as number;
  return { key: `${videoName}/${instance}`, videoName, instance };
}

function num(file: string, key: string, field: string, v: PyValue | undefined): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    bad(file, key, `'${field}' should be a number, found ${describe(v)}`);
  return v as number;
}

/** A score, judge score or difficulty: a number within +-MAX_SCORE (./types.ts). */
function scoreNum(file: string, key: string, field: string, v: PyValue | undefined): number {
  const n = num(file, key, field, v);
  if (Math.abs(n) > MAX_SCORE) bad(file, key, `'${field}' is ${n}, outside [-${MAX_SCORE}, ${MAX_SCORE}]`);
  return n;
}

function int(file: string, key: string, field: string, v: PyValue | undefined): number {
  const n = num(file, key, field, v);
  if (!Number.isInteger(n)) bad(file, key, `'${field}' should be an integer, found ${n}`);
  return n;
}

function str(file: string, key: string, field: string, v: PyValue | undefined): string {
  if (typeof v !== 'string') bad(file, key, `'${field}' should be a string, found ${describe(v)}`);
  return v as string;
}

function ints(file: string, key: string, field: string, v: PyValue | undefined): Int32Array {
  if (!(v instanceof PickledNdArray) || !v.built || v.shape.length !== 1) {
    bad(file, key, `'${field}' should be a 1-D numpy int array, found ${describe(v)}`);
  }
  return toInt32(v as PickledNdArray, `${file}: entry ${key}: '${field}'`);
}

function dictOf(file: string, v: PyValue, what: string): PyDict {
  if (!(v instanceof PyDict))
    throw new McoreError('E_DATA_LAYOUT', `${file}: ${what} should be a dict, found ${describe(v)}`);
  return v;
}

async function load(dir: string, name: string): Promise<{ file: string; value: PyValue }> {
  const file = path.join(dir, name);
  try {
    await access(file);
  } catch {
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${file} not found: the FineDiving annotation folder must hold ${Object.values(FINEDIVING_FILES)
        .filter((f) => f !== FINEDIVING_FILES.aqa)
        .join(', ')} (the 'Annotations' folder of https://github.com/xujinglin/FineDiving); pass that folder`,
    );
  }
  return { file, value: await loadPickle(file) };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

function splitKeys(file: string, v: PyValue, records: Map<string, FineDivingRecord>): string[] {
  if (!Array.isArray(v))
    throw new McoreError('E_DATA_LAYOUT', `${file}: expected a list of keys, found ${describe(v)}`);
  const keys = (v as PyValue[]).map((k, i) => keyOf(file, k, `item ${i}`).key);
  for (const k of keys) {
    if (!records.has(k)) bad(file, k, 'is not in the annotation files');
  }
  if (new Set(keys).size !== keys.length)
    throw new McoreError('E_DATA_LAYOUT', `${file}: the split repeats keys`);
  return keys;
}

/**
 * Reads the FineDiving annotation pickles in `dir` and checks them: every fine-grained key has a coarse
 * entry and vice versa, `frames_labels` has endFrame - startFrame + 1 labels, transitions lie in
 * [-1, length), split keys exist and train/test are disjoint. Errors (E_DATA_LAYOUT, E_PICKLE) name the
 * file and key.
 */
export async function loadFineDivingAnnotations(dir: string): Promise<FineDivingAnnotations> {
  const coarse = await load(dir, FINEDIVING_FILES.coarse);
  const fine = await load(dir, FINEDIVING_FILES.fine);
  const aqaPath = path.join(dir, FINEDIVING_FILES.aqa);
  const aqa = (await exists(aqaPath)) ? { file: aqaPath, value: await loadPickle(aqaPath) } : undefined;
  const coarseDict = dictOf(coarse.file, coarse.value, 'the annotation');
  const fineDict = dictOf(fine.file, fine.value, 'the annotation');
  const aqaDict = aqa === undefined ? undefined : dictOf(aqa.file, aqa.value, 'the annotation');
  const warnings: string[] = [];
  const records = new Map<string, FineDivingRecord>();

  for (const [k, v] of fineDict) {
    const { key, videoName, instance } = keyOf(fine.file, k, 'a key');
    const f = dictOf(fine.file, v, `entry ${key}`);
    const c = coarseDict.lookup(k);
    if (c === undefined) bad(coarse.file, key, `is missing (it is in ${FINEDIVING_FILES.fine})`);
    const cd = dictOf(coarse.file, c as PyValue, `entry ${key}`);
    let actionType = str(fine.file, key, 'action_type', f.get('action_type'));
    let diveScore = scoreNum(fine.file, key, 'dive_score', f.get('dive_score'));
    let difficulty = scoreNum(fine.file, key, 'difficulty', f.get('difficulty'));
    let transits = ints(fine.file, key, 'steps_transit_frames', f.get('steps_transit_frames'));
    let labels = ints(fine.file, key, 'frames_labels', f.get('frames_labels'));
    if (aqaDict !== undefined && aqa !== undefined) {
      const a = aqaDict.lookup(k);
      if (!Array.isArray(a) || a.length !== 5) {
        bad(
          aqa.file,
          key,
          `expected [action_type, dive_score, difficulty, transits, labels], found ${describe(a)}`,
        );
      }
      const row = a as PyValue[];
      const aType = str(aqa.file, key, 'action_type', row[0]);
      const aScore = scoreNum(aqa.file, key, 'dive_score', row[1]);
      const aDiff = scoreNum(aqa.file, key, 'difficulty', row[2]);
      const aTransits = ints(aqa.file, key, 'steps_transit_frames', row[3]);
      const aLabels = ints(aqa.file, key, 'frames_labels', row[4]);
      const same = (x: Int32Array, y: Int32Array) => x.length === y.length && x.every((e, i) => e === y[i]);
      if (
        aType !== actionType ||
        aScore !== diveScore ||
        aDiff !== difficulty ||
        !same(aTransits, transits) ||
        !same(aLabels, labels)
      ) {
        bad(aqa.file, key, `disagrees with ${FINEDIVING_FILES.fine}; use matching files from one release`);
      }
      [actionType, diveScore, difficulty, transits, labels] = [aType, aScore, aDiff, aTransits, aLabels];
    }
    const startFrame = int(coarse.file, key, 'start_frame', cd.get('start_frame'));
    const endFrame = int(coarse.file, key, 'end_frame', cd.get('end_frame'));
    const judges = cd.get('judge_scores');
    if (!Array.isArray(judges) || judges.length === 0) {
      bad(coarse.file, key, `'judge_scores' should be a non-empty list, found ${describe(judges)}`);
    }
    const judgeScores = (judges as PyValue[]).map((j, i) =>
      scoreNum(coarse.file, key, `judge_scores[${i}]`, j),
    );
    const coarseDifficulty = scoreNum(coarse.file, key, 'difficulty', cd.get('difficulty'));
    if (coarseDifficulty !== difficulty) {
      warnings.push(`${key}: difficulty ${difficulty} (fine-grained, used) vs ${coarseDifficulty} (coarse)`);
    }
    if (labels.length !== endFrame - startFrame + 1) {
      bad(
        fine.file,
        key,
        `'frames_labels' has ${labels.length} labels but the instance spans frames ${startFrame}-${endFrame} (${endFrame - startFrame + 1})`,
      );
    }
    if (transits.length === 0 || transits.some((t) => t < -1 || t >= labels.length)) {
      bad(
        fine.file,
        key,
        `'steps_transit_frames' [${transits.join(', ')}] should be 1+ frame indices in [-1, ${labels.length})`,
      );
    }
    records.set(key, {
      key,
      videoName,
      instance,
      actionType,
      startFrame,
      endFrame,
      diveScore,
      difficulty,
      judgeScores,
      stepsTransitFrames: Array.from(transits),
      framesLabels: labels,
    });
  }
  for (const k of coarseDict.keys()) {
    const { key } = keyOf(coarse.file, k, 'a key');
    if (!records.has(key)) bad(fine.file, key, `is missing (it is in ${FINEDIVING_FILES.coarse})`);
  }

  const train = await load(dir, FINEDIVING_FILES.train);
  const test = await load(dir, FINEDIVING_FILES.test);
  const trainKeys = splitKeys(train.file, train.value, records);
  const testKeys = splitKeys(test.file, test.value, records);
  const trainSet = new Set(trainKeys);
  const overlap = testKeys.filter((k) => trainSet.has(k));
  if (overlap.length > 0) {
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${test.file}: ${overlap.length} test keys are also in ${FINEDIVING_FILES.train} (e.g. ${overlap[0]}); the splits must be disjoint`,
    );
  }
  return { records, trainKeys, testKeys, usedAqaFile: aqa !== undefined, warnings };
}
