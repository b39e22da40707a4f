/**
 * The run folder of `mcore train --out RUN`, guarded: it is a folder (not a file), one process at a time
 * holds it (RUN/.mcore-lock, src/io/lock.ts), a folder that already holds anything is refused unless the
 * run is resumed (`resume`) or replaced (`overwrite`, which removes only what a run writes: its
 * checkpoint folders, checkpoint.json, log.jsonl, eval*.json), and the log is rebuilt from the
 * checkpoint's history on resume, so a kill between a checkpoint and its log line never leaves a gap
 * or a repeated epoch. A write that fails for a reason the user can fix (full disk, permissions) is
 * McoreError('E_IO') naming the path and the last good checkpoint, which stays usable.
 */
import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { resolveConfig } from '../config.ts';
import { McoreError } from '../errors.ts';
import { appendText, writeFileAtomic } from '../io/atomic.ts';
import { crashPoint } from '../io/faults.ts';
import { fsErrorMessage } from '../io/fs-errors.ts';
import { acquireLock, type Lock } from '../io/lock.ts';
import { replaceFolder } from '../io/replace-folder.ts';
import type { ParamSpecs, Params } from '../model/params.ts';
import {
  CHECKPOINT_FILE,
  CHECKPOINT_FOLDER,
  type CheckpointInfo,
  checkpointFolderName,
  readCheckpointInfo,
  saveCheckpoint,
} from './checkpoint.ts';
import type { RunRecord } from './run-record.ts';
import type { TrainState } from './trainer.ts';
import type { BestRecord } from './validation.ts';

/** The lock file of a run folder. */
export const RUN_LOCK = '.mcore-lock';
export const RUN_LOG = 'log.jsonl';

const OWNED_FILES = new Set([
  CHECKPOINT_FILE,
  RUN_LOG,
  'eval.json',
  'eval-dn.json',
  'eval-no-dn.json',
  'eval-best-dn.json',
  'eval-best-no-dn.json',
]);

/** The best checkpoint by validation SRCC (train.validation > 0): a copy of its ckpt folder plus best.json. */
export const BEST_FOLDER = 'best';
export const BEST_FILE = 'best.json';

/** Whether `name` (an entry of a run folder) is written by mcore train/eval, so --overwrite may remove it. */
export function ownedByRun(name: string): boolean {
  const base = name.replace(/\.tmp-\d+-[0-9a-f]{8}$/, '');
  return (
    OWNED_FILES.has(base) ||
    CHECKPOINT_FOLDER.test(base) ||
    base === BEST_FOLDER ||
    /^\.best\.(partial|old)-\d+-[0-9a-f]{8}$/.test(base)
  );
}

/**
 * The run record of a checkpoint (RunRecord): dataset spec, config (resolved again on read), backbone
 * weights, method, feature cache. Loose: fields a later mcore adds are kept, not stripped.
 */
const runRecordSchema = z.looseObject({
  dataset: z.string().min(1, 'the dataset spec is empty'),
  config: z.record(z.string(), z.unknown()),
  backboneWeights: z.string().optional(),
  method: z.string().optional(),
  featureCache: z.string().optional(),
});

/** RUN/checkpoint.json with its run record validated (the config's values are checked by resolveConfig). */
export function readRunCheckpoint(runDir: string): Promise<CheckpointInfo<RunRecord>> {
  return readCheckpointInfo(runDir, runRecordSchema as unknown as z.ZodType<RunRecord>);
}

export interface OpenRunFolderOptions {
  /** Continue the run in the folder (it must hold a checkpoint). */
  resume: boolean;
  /** Replace the run in the folder: remove its checkpoints and log first (other files are kept). */
  overwrite?: boolean;
}

/** A run folder held by this process until `release()`. */
export class RunFolder {
  readonly dir: string;
  private readonly lock: Lock;
  /** The checkpoint that checkpoint.json names, once read or written. */
  private lastGood?: { folder: string; epoch: number };

  private constructor(dir: string, lock: Lock) {
    this.dir = dir;
    this.lock = lock;
  }

  /**
   * Opens (creating it if needed) and locks `dir` for training. A file at `dir`: E_INPUT. Held by another
   * live process: E_BUSY. Not empty and neither `resume` nor `overwrite`: E_INPUT listing what is there.
   */
  static async open(dir: string, opts: OpenRunFolderOptions): Promise<RunFolder> {
    if (opts.resume && opts.overwrite) {
      throw new McoreError('E_INPUT', `${dir}: --resume and --overwrite exclude each other; choose one`);
    }
    const isFolder = await stat(dir).then(
      (s) => s.isDirectory(),
      () => undefined,
    );
    if (isFolder === false) {
      throw new McoreError('E_INPUT', `${dir}: is a file, not a folder; give --out a folder for the run`);
    }
    await mkdir(dir, { recursive: true });
    const lock = await acquireLock(path.join(dir, RUN_LOCK), `the run folder ${dir}`);
    const folder = new RunFolder(dir, lock);
    try {
      const entries = (await readdir(dir)).filter((n) => n !== RUN_LOCK).sort();
      if (!opts.resume && entries.length > 0) {
        if (!opts.overwrite) {
          const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? ', ...' : '');
          throw new McoreError(
            'E_INPUT',
            `${dir}: the run folder is not empty (${shown}); continue its run with --resume, ` +
              'train into a new folder, or pass --overwrite to replace its run',
          );
        }
        for (const name of entries.filter(ownedByRun)) {
          await rm(path.join(dir, name), { recursive: true, force: true });
        }
      }
      if (opts.resume) {
        const info = await readRunCheckpoint(dir);
        folder.lastGood = { folder: info.folder, epoch: info.epoch };
      }
    } catch (err) {
      await lock.release();
      throw err;
    }
    return folder;
  }

  /** Writes RUN/log.jsonl afresh from `history` (the checkpoint's: one JSON line per epoch). */
  async startLog(history: TrainState['history']): Promise<void> {
    await this.guard(() =>
      writeFileAtomic(path.join(this.dir, RUN_LOG), history.map((r) => `${JSON.stringify(r)}\n`).join('')),
    );
  }

  /** The checkpoint of `state` (see src/train/checkpoint.ts), then its line in log.jsonl. */
  async saveEpoch(params: Params, specs: ParamSpecs, state: TrainState, record: RunRecord): Promise<string> {
    const file = await this.guard(() => saveCheckpoint(this.dir, params, specs, state, record));
    this.lastGood = { folder: checkpointFolderName(state.epoch), epoch: state.epoch };
    const last = state.history[state.history.length - 1];
    await this.guard(() => appendText(path.join(this.dir, RUN_LOG), `${JSON.stringify(last)}\n`));
    crashPoint('epoch:logged');
    return file;
  }

  /**
   * Makes the checkpoint folder `ckptDir` the run's best (RUN/best: a copy of its files and best.json),
   * replacing the previous best as a whole (src/io/replace-folder.ts): a kill leaves the old best or the new.
   */
  async saveBest(ckptDir: string, best: BestRecord): Promise<void> {
    await this.guard(() =>
      replaceFolder(
        path.join(this.dir, BEST_FOLDER),
        async (staging) => {
          for (const name of await readdir(ckptDir)) {
            await copyFile(path.join(ckptDir, name), path.join(staging, name));
          }
          await writeFileAtomic(path.join(staging, BEST_FILE), `${JSON.stringify(best, null, 2)}\n`);
        },
        { owns: () => true, what: 'best checkpoint' },
      ),
    );
  }

  async release(): Promise<void> {
    await this.lock.release();
  }

  /** Runs a write; a user-fixable file-system error becomes E_IO naming the path and the last good checkpoint. */
  private async guard<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      const message = fsErrorMessage(err);
      if (message === undefined) throw err;
      const good = this.lastGood
        ? `the last good checkpoint, ${path.join(this.dir, this.lastGood.folder)} (epoch ${this.lastGood.epoch}), ` +
          `is intact: once fixed, continue with 'mcore train ... --out ${this.dir} --resume'`
        : 'no checkpoint was written yet';
      throw new McoreError('E_IO', `${message}; ${good}`);
    }
  }
}

/**
 * The latest checkpoint's info and the run record, its config resolved again so that a run written
 * before a config field existed gets that field's default.
 */
export async function readRunRecord(
  runDir: string,
  checkpoint: 'latest' | 'best' = 'latest',
): Promise<{ info: CheckpointInfo<RunRecord>; record: RunRecord }> {
  const info = checkpoint === 'best' ? await readBestCheckpoint(runDir) : await readRunCheckpoint(runDir);
  return { info, record: { ...info.config, config: resolveConfig(info.config.config) } };
}

/** The best checkpoint's info (its `folder` is 'best'); E_INPUT when the run kept none. */
export async function readBestCheckpoint(runDir: string): Promise<CheckpointInfo<RunRecord>> {
  const dir = path.join(runDir, BEST_FOLDER);
  if (
    !(await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    throw new McoreError(
      'E_INPUT',
      `${runDir}: no best checkpoint (${BEST_FOLDER}/); only a run trained with --set train.validation=0.1 (or another share) keeps one`,
    );
  }
  const info = await readCheckpointInfo(dir, runRecordSchema as unknown as z.ZodType<RunRecord>);
  return { ...info, folder: BEST_FOLDER };
}

/** RUN/best/best.json, or undefined when the run has no best checkpoint yet. */
export async function readBestRecord(runDir: string): Promise<BestRecord | undefined> {
  try {
    return JSON.parse(await readFile(path.join(runDir, BEST_FOLDER, BEST_FILE), 'utf8')) as BestRecord;
  } catch {
    return undefined;
  }
}
