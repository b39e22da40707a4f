/**
 * The results file of a batch score (`--out results.jsonl`): one JSON line per input, appended as each
 * input finishes. Each line is written by ONE write of the whole line with its newline and then synced
 * to disk, so a crash (kill -9, node lost) loses at most the lines in flight and can leave at most one
 * torn line, the last one, without its newline: `readResults` detects it and the resumed batch cuts it
 * off and scores that input again.
 *
 * A line (BatchLine):
 *   {"input":"/data/a.mp4","position":0,"total":100,"shard":"0/4","ok":true,"ms":812.4,"result":{...}}
 *   {"input":"/data/b.mp4","position":4,"total":100,"shard":"0/4","ok":false,"ms":3.1,
 *    "error":{"code":"E_INPUT","message":"/data/b.mp4: not a readable video (...)"}}
 * `result` is the object `mcore score --json` prints; `position` is the input's place in the sorted
 * list of `total` inputs, which lets `mcore merge` check shards without the input list.
 */
import { open, readFile, truncate } from 'node:fs/promises';
import { McoreError } from '../errors.ts';
import type { ScoreResult } from './scorer.ts';

export interface BatchLine {
  /** Absolute path of the video file or frame folder. */
  input: string;
  /** Place of the input in the sorted list of all inputs (before sharding). */
  position: number;
  /** Inputs in that list. */
  total: number;
  /** The shard that scored it, 'I/N'. */
  shard: string;
  ok: boolean;
  /** Wall time of this input (decode + model), ms. */
  ms: number;
  result?: Omit<ScoreResult, 'frames'>;
  error?: { code: string; message: string };
}

export interface ResultsFile {
  lines: BatchLine[];
  /** Bytes up to the end of the last whole, valid line. */
  goodBytes: number;
  /** The file ended in a torn line (no newline, or not JSON): a crash while writing it. */
  torn: boolean;
}

function isBatchLine(v: unknown): v is BatchLine {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.input === 'string' &&
    Number.isInteger(o.position) &&
    Number.isInteger(o.total) &&
    typeof o.shard === 'string' &&
    typeof o.ok === 'boolean'
  );
}

/** Parses a results file's text (see readResults). */
export function parseResults(text: string, file: string): ResultsFile {
  const lines: BatchLine[] = [];
  let offset = 0;
  let lineNo = 0;
  const enc = new TextEncoder();
  let goodBytes = 0;
  while (offset < text.length) {
    const nl = text.indexOf('\n', offset);
    lineNo++;
    const last = nl < 0;
    const raw = last ? text.slice(offset) : text.slice(offset, nl);
    const end = last ? text.length : nl + 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    if (last || !isBatchLine(parsed)) {
      const rest = text.slice(end);
      if (last || rest.length === 0) return { lines, goodBytes, torn: raw.trim() !== '' };
      throw new McoreError(
        'E_INPUT',
        `${file}:${lineNo}: not a result line of mcore score (${raw.slice(0, 60)}...); was the file written by ` +
          'two batches at once? Give each shard its own --out file',
      );
    }
    lines.push(parsed);
    goodBytes += enc.encode(text.slice(offset, end)).length;
    offset = end;
  }
  return { lines, goodBytes, torn: false };
}

/** Reads a results file; a missing file is an empty one. */
export async function readResults(file: string): Promise<ResultsFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], goodBytes: 0, torn: false };
    throw new McoreError('E_INPUT', `${file}: cannot read the results file (${(e as Error).message})`);
  }
  return parseResults(text, file);
}

export interface ResultsAppender {
  /** Appends one line (whole, then synced); calls are serialised. */
  append(line: BatchLine): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens `file` for appending after cutting it to `keepBytes` (dropping a torn last line). The file is
 * created when missing.
 */
export async function openResults(file: string, keepBytes: number): Promise<ResultsAppender> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'a');
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${file}: cannot open the results file for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'check that its folder exists and is writable',
    );
  }
  try {
    if ((await fh.stat()).size > keepBytes) await truncate(file, keepBytes);
  } catch (e) {
    await fh.close();
    throw e;
  }
  let chain: Promise<void> = Promise.resolve();
  return {
    append(line) {
      const bytes = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8');
      chain = chain.then(async () => {
        let written = 0;
        while (written < bytes.length) {
          const r = await fh.write(bytes, written, bytes.length - written);
          written += r.bytesWritten;
        }
        await fh.datasync();
      });
      return chain;
    },
    async close() {
      await chain.catch(() => undefined);
      await fh.close();
    },
  };
}
