/**
 * The library verb of batch scoring: many videos (files or frame folders) with one open bundle, one
 * result line each in a JSONL file (./results-file.ts), for one shard of the sorted inputs
 * (./shard.ts). One bad input never stops the batch: it gets an error line (its McoreError code and
 * message) and the batch goes on. With `resume` the inputs already in the file are skipped, a torn
 * last line (a crash while writing it) is cut off and its input scored again, so a killed batch
 * re-run with `resume` ends with every input exactly once.
 *
 * Pipeline: `jobs` inputs are in flight at once (default 2): each is decoded (readQueryInput, ffmpeg /
 * sharp, off the main thread) while the model (LoadedBundle.scoreQuery, ONNX Runtime) runs one query
 * at a time, so the decoding of the next video overlaps the model of this one. At most `jobs` decoded
 * queries are held, and nothing is kept per input but its counters, so memory stays flat however long
 * the list (bench/batch measures it).
 *
 * @example
 * const bundle = await loadBundle('bundle');
 * const inputs = await listBatchInputs(['videos/']);
 * const s = await scoreBatch(bundle, inputs, { out: 'results-0.jsonl', shard: { index: 0, count: 4 }, resume: true });
 * s.done; s.failed; s.skipped;
 */
import { McoreError } from '../errors.ts';
import { queryOptions, readQueryInput } from './input.ts';
import { type BatchLine, openResults, readResults } from './results-file.ts';
import type { LoadedBundle, ScoreOptions } from './scorer.ts';
import { formatShard, type Shard, selectShard } from './shard.ts';

export interface BatchOptions {
  /** The JSONL results file. */
  out: string;
  /** Skip the inputs already in `out` (without it a non-empty `out` is refused). */
  resume?: boolean;
  /** The slice of the sorted inputs to score (default 0/1: all). */
  shard?: Shard;
  /** Inputs in flight (decode ahead of the model), default 2. */
  jobs?: number;
  actionType?: string;
  exemplars?: number;
  seed?: number;
  allowDamaged?: boolean;
  fastDecode?: boolean;
  onProgress?: (e: BatchEvent) => void;
}

export type BatchEvent =
  /** Before the first input: `todo` of the shard's `shardInputs` are left after `skipped`. */
  | { kind: 'start'; todo: number; skipped: number; shardInputs: number; tornLine: boolean }
  /** An input finished (its line is on disk). */
  | { kind: 'input'; line: BatchLine; done: number; failed: number; todo: number; elapsedMs: number };

export interface BatchSummary {
  out: string;
  shard: Shard;
  /** All inputs (before sharding). */
  inputs: number;
  /** Inputs of this shard. */
  shardInputs: number;
  /** Scored in this run. */
  done: number;
  /** Error lines written in this run. */
  failed: number;
  /** Already in the file (resume). */
  skipped: number;
  /** Mean wall time of an input of this run (decode + model, ms). */
  meanMs: number;
  /** Wall time of the run, ms. */
  elapsedMs: number;
  /** A torn last line was found in the file and cut off. */
  tornLine: boolean;
}

/** The error of one input as its line stores it (bugs, not McoreErrors, get code E_INTERNAL). */
function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof McoreError) return { code: e.code, message: e.message.replace(/\s*\n\s*/g, ' ') };
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { code: 'E_INTERNAL', message: message.replace(/\s*\n\s*/g, ' ') };
}

/** Refuses options that would fail every input, before any decoding. */
function checkOptions(bundle: LoadedBundle, o: BatchOptions): void {
  if (o.exemplars !== undefined && (!Number.isInteger(o.exemplars) || o.exemplars < 1)) {
    throw new McoreError('E_INPUT', `exemplars must be a positive integer, got ${o.exemplars}`);
  }
  if (o.actionType !== undefined && !bundle.actionTypes.includes(o.actionType)) {
    throw new McoreError(
      'E_INPUT',
      `action type '${o.actionType}' has no exemplars in the bundle (known: ${bundle.actionTypes.join(', ')}); ` +
        'omit --action-type to compare with the whole bank',
    );
  }
  const jobs = o.jobs ?? 2;
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new McoreError('E_INPUT', `jobs must be an integer >= 1, got ${jobs}`);
  }
}

/**
 * Scores shard `o.shard` of `inputs` (sorted, unique: listBatchInputs) into `o.out`. A file holding
 * lines of another shard or input list: E_INPUT naming the file. Returns the counts of this run.
 */
export async function scoreBatch(
  bundle: LoadedBundle,
  inputs: readonly string[],
  o: BatchOptions,
): Promise<BatchSummary> {
  checkOptions(bundle, o);
  const shard = o.shard ?? { index: 0, count: 1 };
  const tag = formatShard(shard);
  const mine = selectShard(inputs, shard);
  const existing = await readResults(o.out);
  if ((existing.lines.length > 0 || existing.torn) && !o.resume) {
    throw new McoreError(
      'E_INPUT',
      `${o.out} already holds ${existing.lines.length} result line(s); pass --resume to skip those inputs, ` +
        'or give another --out',
    );
  }
  const seen = new Set<string>();
  for (const l of existing.lines) {
    if (l.shard !== tag || l.total !== inputs.length || inputs[l.position] !== l.input) {
      throw new McoreError(
        'E_INPUT',
        `${o.out}: holds results of shard ${l.shard} over ${l.total} inputs (${l.input}), this run is shard ` +
          `${tag} over ${inputs.length} inputs; resume with the same inputs and shard, or give another --out`,
      );
    }
    seen.add(l.input);
  }
  const todo = mine.filter((x) => !seen.has(x.item));
  const skipped = mine.length - todo.length;
  o.onProgress?.({
    kind: 'start',
    todo: todo.length,
    skipped,
    shardInputs: mine.length,
    tornLine: existing.torn,
  });

  const m = bundle.manifest;
  const scoreOpts: ScoreOptions = {
    actionType: o.actionType,
    exemplars: o.exemplars,
    seed: o.seed,
  };
  const writer = await openResults(o.out, existing.goodBytes);
  const t0 = performance.now();
  let done = 0;
  let failed = 0;
  let sumMs = 0;
  let next = 0;
  let fatal: unknown;
  let model: Promise<unknown> = Promise.resolve();
  /** Runs `fn` after every model call queued before it: one query in ONNX Runtime at a time. */
  const serial = <R>(fn: () => Promise<R>): Promise<R> => {
    const r = model.then(fn, fn);
    model = r.catch(() => undefined);
    return r;
  };

  const one = async (position: number, input: string): Promise<BatchLine> => {
    const start = performance.now();
    const base = { input, position, total: inputs.length, shard: tag };
    try {
      const q = await readQueryInput(input, queryOptions(m, o));
      const decodeMs = performance.now() - start;
      const { frames: _frames, ...result } = await serial(() => bundle.scoreQuery(q, scoreOpts, decodeMs));
      return { ...base, ok: true, ms: performance.now() - start, result };
    } catch (e) {
      return { ...base, ok: false, ms: performance.now() - start, error: errorOf(e) };
    }
  };

  const worker = async (): Promise<void> => {
    while (next < todo.length && fatal === undefined) {
      const { position, item } = todo[next++];
      const line = await one(position, item);
      try {
        await writer.append(line);
      } catch (e) {
        fatal ??= e;
        return;
      }
      if (line.ok) done++;
      else failed++;
      sumMs += line.ms;
      o.onProgress?.({
        kind: 'input',
        line,
        done,
        failed,
        todo: todo.length,
        elapsedMs: performance.now() - t0,
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.jobs ?? 2, todo.length) }, worker));
  } finally {
    await writer.close();
  }
  if (fatal !== undefined) {
    throw new McoreError('E_INPUT', `${o.out}: cannot append results (${(fatal as Error).message})`);
  }
  const finished = done + failed;
  return {
    out: o.out,
    shard,
    inputs: inputs.length,
    shardInputs: mine.length,
    done,
    failed,
    skipped,
    meanMs: finished > 0 ? sumMs / finished : 0,
    elapsedMs: performance.now() - t0,
    tornLine: existing.torn,
  };
}
