/**
 * `mcore metrics --pred FILE --true FILE [--json]`: SRCC, R-l2 and MSE (spec section 5) of predicted
 * against ground-truth scores. Score files: `.npy` (any numeric dtype, shape [N] or [N, 1]), `.json`
 * (a flat array of numbers) or text with one number per line (blank lines and `#` comments skipped).
 *
 * @example
 * mcore metrics --pred pred.npy --true true.npy
 * // SRCC      0.927014
 * // R-l2      0.0032757
 * // ...
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { McoreError } from '../errors.ts';
import { mse, rl2, srcc } from '../eval/metrics.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import { readNpy, toFloat64 } from '../io/npy.ts';

/** Reads a score file (.npy, .json or one number per line) as float64; E_INPUT names the file. */
export async function readScores(file: string): Promise<Float64Array> {
  await refuseSpecialFile(file, 'E_INPUT');
  const ext = path.extname(file).toLowerCase();
  let bytes: Buffer = Buffer.alloc(0);
  try {
    // an .npy file is read header first (its declared size checked against the file's)
    if (ext !== '.npy') bytes = await readFile(file);
    else await access(file, constants.R_OK);
  } catch (err) {
    throw new McoreError(
      'E_INPUT',
      `${file}: cannot read the score file (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  let values: Float64Array;
  if (ext === '.npy') {
    const arr = await readNpy(file);
    const column = arr.shape.length === 2 && arr.shape[1] === 1;
    if (arr.dtype === 'bool' || !(arr.shape.length === 1 || column)) {
      throw new McoreError(
        'E_INPUT',
        `${file}: expected a numeric array of shape [N] or [N, 1], found ${arr.dtype} [${arr.shape.join(', ')}]`,
      );
    }
    values = toFloat64(arr, file);
  } else if (ext === '.json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new McoreError('E_INPUT', `${file}: invalid JSON (${(err as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new McoreError('E_INPUT', `${file}: expected a JSON array of numbers`);
    const bad = parsed.findIndex((v) => typeof v !== 'number');
    if (bad >= 0) {
      throw new McoreError('E_INPUT', `${file}: item ${bad} is ${JSON.stringify(parsed[bad])}, not a number`);
    }
    values = Float64Array.from(parsed as number[]);
  } else {
    const out: number[] = [];
    bytes
      .toString('utf8')
      .split(/\r?\n/)
      .forEach((raw, i) => {
        const line = raw.trim();
        if (line === '' || line.startsWith('#')) return;
        const v = Number(line);
        if (!Number.isFinite(v)) {
          throw new McoreError('E_INPUT', `${file}: line ${i + 1} is '${line}', not a finite number`);
        }
        out.push(v);
      });
    values = Float64Array.from(out);
  }
  if (values.length === 0) throw new McoreError('E_INPUT', `${file}: holds no scores`);
  const nan = values.findIndex((v) => !Number.isFinite(v));
  if (nan >= 0)
    throw new McoreError('E_INPUT', `${file}: value ${nan} is ${values[nan]}, not a finite number`);
  return values;
}

export interface MetricsResult {
  srcc: number;
  rl2: number;
  mse: number;
  n: number;
}

/** Metrics of the scores in two files; mismatched lengths are an E_INPUT error naming both. */
export async function metricsOfFiles(predFile: string, trueFile: string): Promise<MetricsResult> {
  const pred = await readScores(predFile);
  const truth = await readScores(trueFile);
  if (pred.length !== truth.length) {
    throw new McoreError(
      'E_INPUT',
      `${predFile} holds ${pred.length} scores but ${trueFile} holds ${truth.length}; pass one prediction per ground-truth score`,
    );
  }
  try {
    return { srcc: srcc(pred, truth), rl2: rl2(pred, truth), mse: mse(pred, truth), n: pred.length };
  } catch (err) {
    if (err instanceof McoreError)
      throw new McoreError(err.code, `${predFile} vs ${trueFile}: ${err.message}`);
    throw err;
  }
}

/** The aligned table printed by `mcore metrics`. */
export function formatMetricsTable(m: MetricsResult): string {
  const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'nan');
  const rows: [string, string][] = [
    ['SRCC', fmt(m.srcc, 6)],
    ['R-l2', fmt(m.rl2, 7)],
    ['R-l2x100', fmt(m.rl2 * 100, 4)],
    ['MSE', fmt(m.mse, 4)],
    ['n', String(m.n)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`).join('\n');
}

export function register(program: Command): void {
  program
    .command('metrics')
    .description(
      'SRCC, R-l2 and MSE of predicted vs ground-truth scores (.npy, .json or one number per line)',
    )
    .requiredOption('--pred <file>', 'predicted scores')
    .requiredOption('--true <file>', 'ground-truth scores, same order')
    .option('--json', 'print {"srcc", "rl2", "mse", "n"} as JSON')
    .action(async (opts: { pred: string; true: string; json?: boolean }) => {
      const m = await metricsOfFiles(opts.pred, opts.true);
      const nanToNull = (v: number) => (Number.isFinite(v) ? v : null);
      const text = opts.json
        ? JSON.stringify({ srcc: nanToNull(m.srcc), rl2: m.rl2, mse: m.mse, n: m.n })
        : formatMetricsTable(m);
      process.stdout.write(`${text}\n`);
    });
}
