/**
 * `mergeResults`: the result files of a batch's shards (./results-file.ts) -> one file with one line
 * per input in input order, after checking that the shards neither overlap (an input in two lines)
 * nor miss inputs. Every line carries its input's place in the sorted list of all inputs and that
 * list's length, so completeness is checked without the list; given the list (`inputs`, as
 * listBatchInputs returns it), every line must also name the input at its place. Problems are reported
 * together in one McoreError('E_INPUT') that names the files and the inputs at fault and says which
 * shard to run again.
 *
 * @example
 * const s = await mergeResults(['results-0.jsonl', 'results-1.jsonl'], 'all.jsonl');
 * s.inputs; s.ok; s.failed;
 */

import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { type BatchLine, readResults } from './results-file.ts';
import { parseShard } from './shard.ts';

export interface MergeSummary {
  out: string;
  files: number;
  /** Inputs in the merged file. */
  inputs: number;
  ok: number;
  failed: number;
}

const SHOW = 10;

function listed(items: readonly string[]): string {
  const head = items.slice(0, SHOW).join('; ');
  return items.length > SHOW ? `${head}; and ${items.length - SHOW} more` : head;
}

/** Checks and merges `files` into `out` (written atomically). */
export async function mergeResults(
  files: readonly string[],
  out: string,
  opts: { inputs?: readonly string[] } = {},
): Promise<MergeSummary> {
  if (files.length === 0) throw new McoreError('E_INPUT', 'merge: no result files given');
  const byInput = new Map<string, { line: BatchLine; file: string }>();
  const byPosition = new Map<number, { line: BatchLine; file: string }>();
  const problems: string[] = [];
  const overlaps: string[] = [];
  const torn: string[] = [];
  let total: number | undefined;
  let shards: number | undefined;
  for (const file of files) {
    const r = await readResults(file);
    if (r.torn) torn.push(file);
    for (const line of r.lines) {
      total ??= line.total;
      const n = parseShard(line.shard, `${file}: shard '${line.shard}'`).count;
      shards ??= n;
      if (line.total !== total || n !== shards) {
        problems.push(
          `${file}: ${line.input} is from a batch of ${line.total} inputs in ${n} shards, others from ` +
            `${total} inputs in ${shards} shards`,
        );
        continue;
      }
      const prev = byInput.get(line.input);
      if (prev !== undefined) {
        overlaps.push(`${line.input} (in ${prev.file} and ${file})`);
        continue;
      }
      const other = byPosition.get(line.position);
      if (other !== undefined) {
        problems.push(
          `${file}: ${line.input} and ${other.line.input} (${other.file}) both claim position ${line.position}; ` +
            'the shards were run over different input lists',
        );
        continue;
      }
      byInput.set(line.input, { line, file });
      byPosition.set(line.position, { line, file });
    }
  }
  const inputs = opts.inputs;
  if (total === undefined) total = inputs?.length ?? 0;
  if (inputs !== undefined) {
    if (inputs.length !== total) {
      problems.push(`the shards scored a list of ${total} inputs, --inputs lists ${inputs.length}`);
    }
    const strays = [...byPosition.values()]
      .filter(({ line }) => inputs[line.position] !== line.input)
      .map(({ line, file }) => `${line.input} (${file})`);
    if (strays.length > 0) problems.push(`${strays.length} result(s) not in --inputs: ${listed(strays)}`);
  }
  const missing: string[] = [];
  for (let p = 0; p < total; p++) {
    if (byPosition.has(p)) continue;
    const name = inputs?.[p] ?? `input #${p}`;
    missing.push(shards !== undefined ? `${name} (shard ${p % shards}/${shards})` : name);
  }
  if (overlaps.length > 0)
    problems.push(`${overlaps.length} input(s) in more than one line: ${listed(overlaps)}`);
  if (missing.length > 0) {
    problems.push(
      `${missing.length} of ${total} input(s) missing: ${listed(missing)}; run those shards again with --resume` +
        (torn.length > 0 ? ` (${torn.join(', ')} end(s) in a torn line: that shard was killed)` : ''),
    );
  }
  if (problems.length > 0) {
    throw new McoreError('E_INPUT', `merge of ${files.length} file(s) refused: ${problems.join('; ')}`);
  }
  const lines = [...byPosition.values()].map((x) => x.line).sort((a, b) => a.position - b.position);
  try {
    await writeFileAtomic(out, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${out}: cannot write the merged results (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'check that its folder exists and is writable',
    );
  }
  const ok = lines.filter((l) => l.ok).length;
  return { out, files: files.length, inputs: lines.length, ok, failed: lines.length - ok };
}
