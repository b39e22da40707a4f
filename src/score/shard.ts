/**
 * Sharding a batch over a scheduler's array of tasks: shard I of N takes the inputs at positions
 * p with p % N === I of the sorted input list, so N tasks over the same inputs cover each exactly once
 * whatever order they run in. The shard comes from `--shard I/N`, else from the scheduler's
 * environment:
 *
 *   Kubernetes Indexed Job   JOB_COMPLETION_INDEX = I (0-based); N is the Job's `completions`, which
 *                            the pod cannot see: it must be given (`--shards N`).
 *   Slurm job array          SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN (arrays need not start at 0),
 *                            SLURM_ARRAY_TASK_STEP (--array=1-9:2) and SLURM_ARRAY_TASK_COUNT = N:
 *                            I = (ID - MIN) / STEP.
 *
 * Without any of them the batch is one shard, 0/1.
 *
 * @example
 * parseShard('2/4');                                           // { index: 2, count: 4 }
 * shardFromEnv({ SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '3' });
 *                                                              // { index: 1, count: 3, from: 'SLURM_ARRAY_TASK_ID' }
 * selectShard(['a', 'b', 'c', 'd', 'e'], { index: 1, count: 2 }); // [{ position: 1, item: 'b' }, { position: 3, item: 'd' }]
 */
import { McoreError } from '../errors.ts';

export interface Shard {
  /** 0-based shard index I, 0 <= I < count. */
  index: number;
  /** Shards N. */
  count: number;
}

export interface ResolvedShard extends Shard {
  /** Where the shard came from: '--shard', an environment variable, or 'default' (0/1). */
  from: string;
}

/** `I/N` -> { index: I, count: N }; anything else (I outside 0..N-1): E_INPUT naming `what`. */
export function parseShard(value: string, what = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index >= count) {
    throw new McoreError(
      'E_INPUT',
      `${what} must be I/N with 0 <= I < N (e.g. 0/4 for the first of four shards), got '${value}'`,
    );
  }
  return { index, count };
}

function envInt(env: NodeJS.ProcessEnv, name: string, fix: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new McoreError('E_INPUT', `environment variable ${name}='${raw}' is not an integer >= 0; ${fix}`);
  }
  return n;
}

/**
 * The shard of this task: `shard` (`--shard I/N`) when given, else JOB_COMPLETION_INDEX with `shards`
 * (`--shards N`), else the Slurm array variables (`shards`, when given, must agree with
 * SLURM_ARRAY_TASK_COUNT), else 0/1. Inconsistent values: E_INPUT saying which flag to pass.
 */
export function resolveShard(
  opts: { shard?: string; shards?: number },
  env: NodeJS.ProcessEnv = process.env,
): ResolvedShard {
  if (opts.shard !== undefined) {
    const s = parseShard(opts.shard);
    if (opts.shards !== undefined && opts.shards !== s.count) {
      throw new McoreError('E_INPUT', `--shard ${opts.shard} and --shards ${opts.shards} disagree; give one`);
    }
    return { ...s, from: '--shard' };
  }
  const fix = 'or pass --shard I/N';
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX', fix);
  if (k8s !== undefined) {
    if (opts.shards === undefined) {
      throw new McoreError(
        'E_INPUT',
        `JOB_COMPLETION_INDEX=${k8s} is set (Kubernetes Indexed Job) but the number of shards is not: ` +
          "pass --shards N with N = the Job's spec.completions",
      );
    }
    if (k8s >= opts.shards) {
      throw new McoreError(
        'E_INPUT',
        `JOB_COMPLETION_INDEX=${k8s} is not below --shards ${opts.shards}; pass the Job's spec.completions as --shards`,
      );
    }
    return { index: k8s, count: opts.shards, from: 'JOB_COMPLETION_INDEX' };
  }
  const id = envInt(env, 'SLURM_ARRAY_TASK_ID', fix);
  if (id !== undefined) {
    const count = envInt(env, 'SLURM_ARRAY_TASK_COUNT', fix) ?? opts.shards;
    if (count === undefined || count < 1) {
      throw new McoreError(
        'E_INPUT',
        `SLURM_ARRAY_TASK_ID=${id} is set but SLURM_ARRAY_TASK_COUNT is not; pass --shards N (the array's size) ${fix}`,
      );
    }
    if (opts.shards !== undefined && opts.shards !== count) {
      throw new McoreError(
        'E_INPUT',
        `--shards ${opts.shards} disagrees with SLURM_ARRAY_TASK_COUNT=${count}; drop --shards ${fix}`,
      );
    }
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN', fix) ?? 0;
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP', fix) ?? 1;
    const offset = id - min;
    const index = step > 0 ? offset / step : Number.NaN;
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new McoreError(
        'E_INPUT',
        `SLURM_ARRAY_TASK_ID=${id} with SLURM_ARRAY_TASK_MIN=${min}, SLURM_ARRAY_TASK_STEP=${step} and ` +
          `SLURM_ARRAY_TASK_COUNT=${count} is not one of ${count} evenly spaced tasks; use --array=0-${count - 1} ${fix}`,
      );
    }
    return { index, count, from: 'SLURM_ARRAY_TASK_ID' };
  }
  if (opts.shards !== undefined && opts.shards !== 1) {
    throw new McoreError(
      'E_INPUT',
      `--shards ${opts.shards} needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment; ` +
        'outside a scheduler pass --shard I/N',
    );
  }
  return { index: 0, count: 1, from: 'default' };
}

/** The items of shard `s` of the (already sorted) list, with their positions in the whole list. */
export function selectShard<T>(items: readonly T[], s: Shard): { position: number; item: T }[] {
  const out: { position: number; item: T }[] = [];
  for (let p = s.index; p < items.length; p += s.count) out.push({ position: p, item: items[p] });
  return out;
}

/** 'I/N'. */
export function formatShard(s: Shard): string {
  return `${s.index}/${s.count}`;
}
