/**
 * A manifest dataset: any staged action (diving, gymnastics vaults, ...) described by one manifest file,
 * loaded as a StagedDataset. The manifest is JSON (an object, or a bare array of clips) or CSV:
 *
 *   { "name": "my-vaults", "stages": ["run-up", "flight", "landing"],
 *     "transitionsUnit": "frames",                 // or "seconds" (default for every clip; clips may override)
 *     "fps": 25,                                   // frame rate of frame folders (needed for seconds)
 *     "clips": [
 *       { "key": "v1", "video": "videos/v1.mp4", "score": 14.2, "actionType": "yurchenko",
 *         "difficulty": 5.4, "judgeScores": [8.8, 8.9], "transitions": [61, 83], "start": 10, "end": 140,
 *         "split": "train" },
 *       { "frames": "frames/01/3", "score": 71.4, "actionType": "107b", "transitions": [40, 58],
 *         "split": "test" } ] }
 *
 * Per clip: `video` (a file) or `frames` (a folder of jpg/png images); `score`; `actionType`; optional
 * `difficulty` (default 1) and `judgeScores`; `transitions`: K-1 absolute frame numbers where stages
 * 2..K begin (K = stages.length), or times with `transitionsUnit: 'seconds'`; optional `start`/`end`
 * (inclusive, same unit) to take a clip out of a longer video or folder; `split` ('train' | 'test');
 * optional `key` (default: the file or folder path without extension). Paths are relative to the
 * manifest. Absolute frame numbers count decoded frames from the start of a video; in a frame folder
 * they are the numbers in the file names (FineDiving's `00123.jpg`), or positions when names have none.
 * Seconds become frames as round(seconds x fps). A CSV has one clip per row with the same column
 * names; list cells (`judgeScores`, `transitions`) hold numbers separated by spaces or semicolons; lines
 * starting with '#' are comments, and a comment line `# stages: run-up, flight, landing` before the
 * header names the stages. Without names (a CSV without that line, a bare JSON array) they come from the
 * `stages` option, else 'stage-1'..'stage-K' with K - 1 the most common number of transitions. The
 * number of stages K of a run (model.stages) is taken from the dataset (src/train/stages.ts).
 * A JSON Schema of the manifest, generated from the zod schema below, is docs/manifest.schema.json
 * (`manifestJsonSchema`; docs/manifest.md explains the format with a worked example).
 *
 * Every problem (schema, missing files, unreadable videos, transitions outside the clip, NaN in JSON) is
 * collected; `checkManifest` returns them all, `loadManifestDataset` throws them as one
 * McoreError('E_DATA_LAYOUT'): the first 20, one a line, each naming the clip (row, key or file) and field,
 * then how many more there are.
 *
 * Example:
 *   const ds = await loadManifestDataset('data/vaults.json', { width: 112, height: 200 });
 *   ds.clips[0];                    // { key: 'v1', numFrames: 131, transitions: [51, 73], ... }
 *   await ds.loadFrame('v1', 0);    // 112 x 200 RGB frame 10 of videos/v1.mp4
 */

import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, relative, resolve } from 'node:path';
import { CsvError, parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import { mapLimit } from '../concurrency.ts';
import { McoreError } from '../errors.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import { sampleIndices } from './frame-sampling.ts';
import { type FitMode, frameNumberOf, listFrameFolder, readImage } from './images.ts';
import { type ClipInfo, type Frame, MAX_SCORE, type StagedDataset } from './types.ts';
import { VideoClipCache } from './video.ts';

const unitSchema = z
  .enum(['frames', 'seconds'])
  .describe('unit of transitions, start and end: frame numbers (default) or seconds');

/** Largest difficulty accepted (scores: MAX_SCORE of ./types.ts). */
const MAX_DIFFICULTY = 100;

const clipSchema = z
  .strictObject({
    key: z
      .string()
      .min(1)
      .optional()
      .describe('unique clip key (default: the video or frames path without extension)'),
    video: z
      .string()
      .min(1)
      .optional()
      .describe('video file, relative to the manifest (give video or frames)'),
    frames: z
      .string()
      .min(1)
      .optional()
      .describe('folder of jpg/png frames in name order, relative to the manifest (give video or frames)'),
    score: z.number().min(-MAX_SCORE).max(MAX_SCORE).describe('the final score the model learns to predict'),
    actionType: z
      .union([z.string().min(1), z.number().transform(String)])
      .describe('action type (dive number, vault name): exemplars are compared within a type'),
    difficulty: z
      .number()
      .positive()
      .max(MAX_DIFFICULTY)
      .optional()
      .describe('degree of difficulty (default 1)'),
    judgeScores: z
      .array(z.number().min(-MAX_SCORE).max(MAX_SCORE))
      .optional()
      .describe("each judge's score, in panel order"),
    transitions: z
      .array(z.number().nonnegative())
      .describe('K-1 frame numbers (or seconds) where stages 2..K begin, strictly increasing'),
    transitionsUnit: unitSchema.optional(),
    start: z
      .number()
      .nonnegative()
      .optional()
      .describe('first frame (or second) of the clip in the source, inclusive'),
    end: z
      .number()
      .nonnegative()
      .optional()
      .describe('last frame (or second) of the clip in the source, inclusive'),
    fps: z.number().positive().optional().describe('frame rate of a frame folder (needed for seconds)'),
    split: z.enum(['train', 'test']).describe('train: trained on and used as exemplars; test: evaluated'),
  })
  .superRefine((c, ctx) => {
    if ((c.video === undefined) === (c.frames === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'give either `video` (a video file) or `frames` (a folder of images), exactly one',
      });
    }
  })
  .meta({ id: 'clip', description: 'one clip: a performed action with its score and stage transitions' });

const topFields = {
  name: z.string().min(1).optional().describe('dataset name (default: the file name)'),
  stages: z
    .array(z.string().min(1))
    .min(2)
    .describe('names of the K stages, in order; K = stages.length sets model.stages'),
  transitionsUnit: unitSchema.optional(),
  fps: z.number().positive().optional().describe('frame rate of frame folders (needed for seconds)'),
};

const manifestSchema = z.strictObject({ ...topFields, clips: z.array(z.unknown()).min(1) });

/** The documented manifest: an object with stages and clips, or a bare array of clips. */
const manifestFileSchema = z.union([
  z.strictObject({ ...topFields, clips: z.array(clipSchema).min(1) }),
  z.array(clipSchema).min(1),
]);

/**
 * The JSON Schema (draft 2020-12) of a JSON manifest, generated from the zod schema the loader uses
 * (input types: `actionType` may be a number). Committed as docs/manifest.schema.json; a test keeps it
 * equal to this. Not expressible in it: exactly one of `video` and `frames`, and K-1 transitions.
 */
export function manifestJsonSchema(): Record<string, unknown> {
  return {
    title: 'mcore manifest',
    description:
      'A staged-action dataset for mcore: per clip a video or frame folder, score, action type, K-1 stage transitions and split (docs/manifest.md).',
    ...z.toJSONSchema(manifestFileSchema, { io: 'input', unrepresentable: 'any' }),
  };
}

export type ManifestClip = z.output<typeof clipSchema>;

/** The manifest as written by `exportFrameFolders`/`exportMp4` (and accepted by the loader). */
export interface ManifestFile {
  name?: string;
  stages: string[];
  transitionsUnit?: 'frames' | 'seconds';
  fps?: number;
  clips: z.input<typeof clipSchema>[];
}

export interface ManifestOptions {
  /** Frame size delivered by loadFrame. */
  width: number;
  height: number;
  /** 'squeeze' (default) stretches frames to width x height; 'cover' fills and centre-crops. */
  fit?: FitMode;
  /** T: a video clip's frames linspace(0, numFrames-1, T) are decoded together once (default 96). */
  framesPerClip?: number;
  /** Decoded-clip cache (default: ~/.cache/mcore/clips). */
  cache?: VideoClipCache;
  /** Stage names for CSV and bare-array manifests (default 'stage-1'..'stage-K'). */
  stages?: string[];
}

/** Where a clip's frames come from: positions `first..first+numFrames-1` of a video or a folder. */
type ClipSource =
  | { kind: 'video'; path: string; first: number; firstFrame: number }
  | { kind: 'frames'; path: string; first: number; firstFrame: number; files: string[] };

export interface ManifestDataset extends StagedDataset {
  manifestPath: string;
  /** Non-fatal problems: truncated videos, short clips sampled with repeats. */
  warnings: string[];
  /** Loads several frames of a clip at once (a video is decoded in one pass, through the cache). */
  loadFrames(key: string, indices: readonly number[]): Promise<Frame[]>;
  /** The file or folder a clip comes from and the absolute frame number of its frame 0. */
  source(key: string): { kind: 'video' | 'frames'; path: string; firstFrame: number };
}

interface Row {
  label: string;
  value: unknown;
  /** This row's problems, listed in row order. */
  issues: string[];
}

const NUMBER_COLUMNS = new Set(['score', 'difficulty', 'start', 'end', 'fps']);
const LIST_COLUMNS = new Set(['judgeScores', 'transitions']);
const CLIP_COLUMNS = Object.keys(clipSchema.shape);

/**
 * Splits CSV text into rows of cells with the line each starts on, by csv-parse (RFC 4180: quotes,
 * doubled quotes, CRLF, a byte-order mark; blank lines skipped). Stricter than a hand-written splitter:
 * an unclosed quote or a quote inside an unquoted cell is a problem of its line (pushed to `issues`,
 * and then no row is read) instead of a silent misreading.
 */
function csvCells(text: string, issues: string[]): { line: number; cells: string[] }[] {
  try {
    const records = parseCsv(text, {
      bom: true,
      info: true,
      raw: true,
      relax_column_count: true,
      skip_empty_lines: true,
      record_delimiter: ['\r\n', '\n', '\r'],
    }) as unknown as { info: { lines: number }; raw: string; record: string[] }[];
    return records
      .filter((r) => r.record.some((c) => c.trim() !== ''))
      .map((r) => ({
        // info.lines is the line the record ends on; a quoted cell may span lines.
        line: r.info.lines - (r.raw.replace(/(\r\n|\r|\n)$/, '').match(/\r\n|\r|\n/g)?.length ?? 0),
        cells: r.record,
      }));
  } catch (e) {
    if (e instanceof CsvError) {
      issues.push(`line ${e.lines ?? '?'}: not valid CSV (${e.message.replace(/ at line \d+.*$/, '')})`);
      return [];
    }
    throw e;
  }
}

function csvValue(column: string, cell: string): unknown {
  const s = cell.trim();
  const num = (t: string): number | string =>
    /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t) ? Number(t) : t;
  if (LIST_COLUMNS.has(column))
    return s
      .split(/[\s;|,]+/)
      .filter(Boolean)
      .map(num);
  return NUMBER_COLUMNS.has(column) ? num(s) : s;
}

/** `# stages: a, b, c` (any case, spaces optional): the stage names of a CSV manifest. */
const STAGES_COMMENT = /^#\s*stages\s*:(.*)$/i;

/**
 * Rows of a CSV manifest; unknown columns are problems of the header. Lines whose first cell starts with
 * '#' are comments; `# stages: take-off, flight, entry` (before the header) names the stages.
 */
function csvRows(text: string, issues: string[]): { rows: Row[]; stages?: string[] } {
  const all = csvCells(text, issues);
  let stages: string[] | undefined;
  const lines = all.filter(({ line, cells }) => {
    const first = cells[0].trim();
    if (!first.startsWith('#')) return true;
    const m = STAGES_COMMENT.exec(cells.join(',').trim());
    if (m) {
      const names = m[1]
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n.length > 0);
      if (names.length < 2) {
        issues.push(
          `line ${line}: '# stages:' needs at least 2 comma-separated stage names, found ${names.length}`,
        );
      } else stages = names;
    }
    return false;
  });
  const [header, ...body] = lines;
  if (!header) {
    issues.push('the CSV file is empty; expected a header row (video or frames, score, actionType, ...)');
    return { rows: [], stages };
  }
  const columns = header.cells.map((c) => c.trim());
  const unknown = columns.filter((c) => c !== '' && !CLIP_COLUMNS.includes(c));
  if (unknown.length > 0) {
    issues.push(
      `header (line ${header.line}): unknown column(s) ${unknown.join(', ')}; known: ${CLIP_COLUMNS.join(', ')}`,
    );
  }
  const rows = body.map(({ line, cells }) => {
    const value: Record<string, unknown> = {};
    columns.forEach((c, i) => {
      if (CLIP_COLUMNS.includes(c) && cells[i] !== undefined && cells[i].trim() !== '') {
        value[c] = csvValue(c, cells[i]);
      }
    });
    return { label: `line ${line}`, value, issues: [] };
  });
  return { rows, stages };
}

/** Stands for a bare NaN / Infinity / -Infinity of a JSON manifest (JSON has none; Python writes them). */
const NON_FINITE = '\u0000non-finite:';

/**
 * Replaces the bare NaN, Infinity and -Infinity tokens outside strings (invalid JSON that Python's
 * json.dump writes) with marker strings, so that the manifest parses and the clip holding them is named.
 */
function markNonFinite(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const m = /^(-?Infinity|NaN)\b/.exec(text.slice(i, i + 9));
    if (m) {
      out += JSON.stringify(NON_FINITE + m[1]);
      i += m[1].length;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

/**
 * Paths (zod style) of the non-finite markers in a clip entry, with the token each stood for. Walks with
 * an explicit stack, so a hostile entry nested 10^5 deep cannot overflow the call stack (zod then
 * refuses its shape).
 */
function nonFiniteFields(value: unknown): { path: (string | number)[]; token: string }[] {
  const out: { path: (string | number)[]; token: string }[] = [];
  const stack: { v: unknown; at: (string | number)[] }[] = [{ v: value, at: [] }];
  while (stack.length > 0) {
    const { v, at } = stack.pop()!;
    if (at.length > 8) continue; // a clip's fields are at most two levels deep; zod names deeper junk
    if (typeof v === 'string' && v.startsWith(NON_FINITE)) {
      out.push({ path: at, token: v.slice(NON_FINITE.length) });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], at: [...at, i] });
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v).reverse()) stack.push({ v: x, at: [...at, k] });
    }
  }
  return out;
}

/** Problems listed in an error message; the rest are counted (`mcore data check` lists them all). */
export const MAX_LISTED_PROBLEMS = 20;

/** The most common value (the smallest among equally common ones); undefined for none. */
function mostCommon(values: readonly number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: number | undefined;
  for (const [v, n] of counts) {
    const b = best === undefined ? 0 : counts.get(best)!;
    if (n > b || (n === b && v < best!)) best = v;
  }
  return best;
}

function zodPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

interface Resolved {
  info: ClipInfo;
  source: ClipSource;
}

/** The advice closing a manifest error. */
const MANIFEST_ADVICE =
  'Fix these entries and load again. Each clip needs `video` (a file) or `frames` (an image folder), ' +
  '`score`, `actionType`, `transitions` (K-1 frame numbers where stages 2..K begin) and `split` ' +
  "('train' or 'test'); paths are relative to the manifest's folder (docs/manifest.md).";

/** What `checkManifest` found: every problem (one a line, each naming its clip), and the dataset when there are none. */
export interface ManifestCheck {
  manifestPath: string;
  problems: string[];
  dataset?: ManifestDataset;
}

/** The error of a manifest with problems: the first MAX_LISTED_PROBLEMS, one a line, then a count of the rest. */
export function manifestError(manifestPath: string, problems: readonly string[]): McoreError {
  const n = problems.length;
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((i) => `  ✖ ${i}`);
  const more =
    n > MAX_LISTED_PROBLEMS
      ? `\n... and ${n - MAX_LISTED_PROBLEMS} more (mcore data check ${manifestPath} lists them all)`
      : '';
  return new McoreError(
    'E_DATA_LAYOUT',
    `${manifestPath}: ${n} problem${n > 1 ? 's' : ''} in the manifest:\n${listed.join('\n')}${more}\n${MANIFEST_ADVICE}`,
  );
}

/**
 * Loads a manifest (JSON or CSV, see the module doc) as a StagedDataset. Videos are probed once (cached)
 * for their frame counts; frame folders are listed. Frames are decoded lazily by loadFrame/loadFrames.
 * Every problem is thrown at once as E_DATA_LAYOUT (the first 20 listed, one a line; `checkManifest`
 * returns them all).
 */
export async function loadManifestDataset(path: string, options: ManifestOptions): Promise<ManifestDataset> {
  const check = await checkManifest(path, options);
  if (!check.dataset) throw manifestError(check.manifestPath, check.problems);
  return check.dataset;
}

/**
 * Validates a manifest and, when it has no problem, opens it (loadManifestDataset). Unreadable files and
 * invalid JSON are thrown (E_DATA_LAYOUT); every problem of the content is returned, in clip order.
 */
export async function checkManifest(path: string, options: ManifestOptions): Promise<ManifestCheck> {
  const manifestPath = resolve(path);
  const root = dirname(manifestPath);
  await refuseSpecialFile(manifestPath, 'E_DATA_LAYOUT');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (e) {
    throw new McoreError(
      'E_DATA_LAYOUT',
      `${manifestPath}: cannot read the manifest (${(e as Error).message})`,
    );
  }
  const issues: string[] = [];
  const done = (): ManifestCheck => ({ manifestPath, problems: issues });

  let top: Omit<z.output<typeof manifestSchema>, 'clips'> | undefined;
  let csvStages: string[] | undefined;
  let rows: Row[];
  if (extname(manifestPath).toLowerCase() === '.csv') {
    ({ rows, stages: csvStages } = csvRows(text, issues));
  } else {
    let json: unknown;
    try {
      json = JSON.parse(markNonFinite(text.replace(/^\uFEFF/, ''))); // a byte-order mark is accepted, as in CSV
    } catch (e) {
      throw new McoreError(
        'E_DATA_LAYOUT',
        `${manifestPath}: not valid JSON (${(e as Error).message}); a manifest is JSON ({ stages, clips: [...] } or an array of clips) or .csv`,
      );
    }
    if (Array.isArray(json)) {
      rows = json.map((value, i) => ({ label: `[${i}]`, value, issues: [] }));
    } else {
      const parsed = manifestSchema.safeParse(json);
      if (!parsed.success) {
        for (const i of parsed.error.issues) issues.push(`${zodPath(i.path) || '(top level)'}: ${i.message}`);
        return done();
      }
      const { clips, ...rest } = parsed.data;
      top = rest;
      rows = clips.map((value, i) => ({ label: `clips[${i}]`, value, issues: [] as string[] }));
    }
  }
  if (rows.length === 0 && issues.length === 0) issues.push('the manifest lists no clips');
  if (csvStages && options.stages && csvStages.join(',') !== options.stages.join(',')) {
    issues.push(
      `'# stages: ${csvStages.join(', ')}' of the CSV differs from the stages asked for (${options.stages.join(', ')})`,
    );
  }

  const parsedRows: { row: Row; clip: ManifestClip }[] = [];
  for (const row of rows) {
    const entry = row.value as { key?: unknown; video?: unknown; frames?: unknown } | null;
    const key = entry?.key;
    const file = entry?.video ?? entry?.frames;
    if (typeof key === 'string') row.label += ` '${key}'`;
    else if (typeof file === 'string') row.label += ` (${file})`;
    const nonFinite = nonFiniteFields(row.value);
    for (const { path, token } of nonFinite) {
      row.issues.push(
        `${row.label}: ${zodPath(path)}: ${token} is not a number (JSON has no ${token}; give a number or drop the clip)`,
      );
    }
    const marked = new Set(nonFinite.map((f) => zodPath(f.path)));
    const r = clipSchema.safeParse(row.value);
    if (r.success) parsedRows.push({ row, clip: r.data });
    else
      for (const i of r.error.issues) {
        const at = zodPath(i.path);
        if (!marked.has(at)) row.issues.push(`${row.label}: ${at || 'entry'}: ${i.message}`);
      }
  }
  // K from the manifest's stage names; else the most common number of transitions (so that one bad row,
  // the first one included, does not make every other row wrong).
  const named = top?.stages ?? csvStages ?? options.stages;
  const K = named?.length ?? (mostCommon(parsedRows.map(({ clip }) => clip.transitions.length)) ?? 1) + 1;
  const stageNames = named ?? Array.from({ length: K }, (_, k) => `stage-${k + 1}`);
  const cache = options.cache ?? new VideoClipCache();

  const keys = new Map<string, string>();
  const units = parsedRows.map(({ row, clip }) => {
    const say = (field: string, message: string): void => {
      row.issues.push(`${row.label}: ${field}: ${message}`);
    };
    const file = resolve(root, clip.video ?? clip.frames!);
    const key =
      clip.key ??
      relative(root, file)
        .split('\\')
        .join('/')
        .replace(/\.[^./]+$/, '');
    if (keys.has(key)) say('key', `'${key}' is used twice (also by ${keys.get(key)}); keys must be unique`);
    keys.set(key, row.label);
    if (clip.transitions.length !== K - 1) {
      say(
        'transitions',
        `expected ${K - 1} value(s) (K-1 for stages ${stageNames.join(', ')}), found ${clip.transitions.length}`,
      );
    }
    const unit = clip.transitionsUnit ?? top?.transitionsUnit ?? 'frames';
    if (unit === 'frames') {
      const fields = { transitions: clip.transitions, start: [clip.start ?? 0], end: [clip.end ?? 0] };
      for (const [f, v] of Object.entries(fields)) {
        if (v.some((x) => !Number.isInteger(x)))
          say(f, 'frame numbers must be integers (or set transitionsUnit: seconds)');
      }
    }
    if (clip.start !== undefined && clip.end !== undefined && clip.start > clip.end) {
      say('end', `end (${clip.end}) is before start (${clip.start})`);
    }
    return { row, clip, say, file, key, unit };
  });

  const resolved = await mapLimit(units, 2, async ({ row, clip, say, file, key, unit }) => {
    const isVideo = clip.video !== undefined;
    const st = await stat(file).catch(() => undefined);
    if (!st || (isVideo ? !st.isFile() : !st.isDirectory())) {
      say(
        isVideo ? 'video' : 'frames',
        `${isVideo ? 'file' : 'folder'} not found: ${file} (paths are relative to the manifest's folder)`,
      );
      return undefined;
    }
    if (row.issues.length > 0) return undefined;
    try {
      return await resolveClip(clip, key, file, unit, top?.fps, cache, say);
    } catch (e) {
      if (!(e instanceof McoreError)) throw e;
      say(isVideo ? 'video' : 'frames', e.message);
      return undefined;
    }
  });
  for (const row of rows) issues.push(...row.issues);
  if (issues.length > 0) return done();

  const name = top?.name ?? basename(manifestPath, extname(manifestPath));
  return {
    manifestPath,
    problems: [],
    dataset: createManifestDataset(manifestPath, name, stageNames, resolved as Resolved[], {
      ...options,
      cache,
    }),
  };
}

/** Numbers a clip: its frame range within the source and its transitions relative to frame 0. */
async function resolveClip(
  clip: ManifestClip,
  key: string,
  file: string,
  unit: 'frames' | 'seconds',
  topFps: number | undefined,
  cache: VideoClipCache,
  say: (field: string, message: string) => void,
): Promise<Resolved | undefined> {
  let files: string[] = [];
  let numbers: number[];
  let fps: number | undefined;
  if (clip.video !== undefined) {
    const info = await cache.probe(file);
    numbers = Array.from({ length: info.frameCount }, (_, i) => i);
    fps = info.fps;
  } else {
    files = await listFrameFolder(file);
    const named = files.map(frameNumberOf);
    const increasing = named.every((n, i) => n !== undefined && (i === 0 || n > named[i - 1]!));
    numbers = increasing ? (named as number[]) : files.map((_, i) => i);
    fps = clip.fps ?? topFps;
  }
  const toFrame = (v: number): number | undefined =>
    unit === 'frames' ? v : fps === undefined ? undefined : Math.round(v * fps);
  if (unit === 'seconds' && fps === undefined) {
    say(
      'fps',
      'transitionsUnit is seconds but the frame folder has no fps (set `fps` on the clip or the manifest)',
    );
    return undefined;
  }
  const lastNumber = numbers[numbers.length - 1];
  const start = clip.start === undefined ? numbers[0] : toFrame(clip.start)!;
  const end =
    clip.end === undefined
      ? lastNumber
      : Math.min(toFrame(clip.end)!, unit === 'seconds' ? lastNumber : Infinity);
  const first = numbers.findIndex((n) => n >= start);
  let last = numbers.length - 1;
  while (last >= 0 && numbers[last] > end) last--;
  const where =
    clip.video !== undefined
      ? `the video has frames 0-${lastNumber}`
      : `the folder has frames ${numbers[0]}-${lastNumber}`;
  if (end > lastNumber) say('end', `frame ${end} is past the end (${where})`);
  if (first < 0 || last < first) {
    say('start', `no frames between ${start} and ${end} (${where})`);
    return undefined;
  }
  const numFrames = last - first + 1;
  const absolute = clip.transitions.map((t) => toFrame(t)!);
  const transitions = absolute.map((abs) => {
    const pos = numbers.findIndex((n) => n >= abs);
    return (pos < 0 ? numbers.length : pos) - first;
  });
  const ok = transitions.every((t, i) => t >= 1 && t <= numFrames - 1 && (i === 0 || t > transitions[i - 1]));
  if (!ok) {
    say(
      'transitions',
      `[${clip.transitions.join(', ')}]${unit === 'seconds' ? ` s (frames ${absolute.join(', ')})` : ''} ` +
        'must be strictly increasing frame numbers inside the clip, after its ' +
        `first frame ${numbers[first]} and at most its last frame ${numbers[last]} (${numFrames} frames)`,
    );
  }
  if (end > lastNumber || !ok) return undefined;
  const source: ClipSource =
    clip.video !== undefined
      ? { kind: 'video', path: file, first, firstFrame: numbers[first] }
      : { kind: 'frames', path: file, first, firstFrame: numbers[first], files };
  return {
    info: {
      key,
      actionType: clip.actionType,
      difficulty: clip.difficulty ?? 1,
      score: clip.score,
      judgeScores: clip.judgeScores ?? [],
      numFrames,
      transitions,
      split: clip.split,
    },
    source,
  };
}

function createManifestDataset(
  manifestPath: string,
  name: string,
  stageNames: string[],
  resolved: Resolved[],
  options: ManifestOptions,
): ManifestDataset {
  const { width, height } = options;
  const fit = options.fit ?? 'squeeze';
  const T = options.framesPerClip ?? 96;
  const cache = options.cache ?? new VideoClipCache();
  const byKey = new Map(resolved.map((r) => [r.info.key, r]));
  const warnings: string[] = [];
  const sets = new Map<string, Promise<Frame[]>>(); // most recent sample sets of video clips (up to 4)

  const lookup = (key: string, indices: readonly number[]): Resolved => {
    const r = byKey.get(key);
    if (!r) throw new McoreError('E_INPUT', `manifest ${manifestPath} has no clip '${key}'`);
    const bad = indices.find((i) => !Number.isInteger(i) || i < 0 || i >= r.info.numFrames);
    if (bad !== undefined) {
      throw new McoreError('E_INPUT', `clip '${key}': frame ${bad} is outside 0..${r.info.numFrames - 1}`);
    }
    return r;
  };

  const loadFrames = async (key: string, indices: readonly number[]): Promise<Frame[]> => {
    const { source } = lookup(key, indices);
    if (source.kind === 'frames') {
      return mapLimit(indices, 4, (i) => readImage(source.files[source.first + i], { width, height, fit }));
    }
    const clip = await cache.decode(source.path, {
      indices: indices.map((i) => source.first + i),
      width,
      height,
      fit,
    });
    for (const w of clip.warnings) if (!warnings.includes(w)) warnings.push(w);
    return clip.frames;
  };

  const loadFrame = async (key: string, index: number): Promise<Frame> => {
    const r = lookup(key, [index]);
    if (r.source.kind === 'frames') return (await loadFrames(key, [index]))[0];
    const set = sampleIndices(0, r.info.numFrames - 1, T);
    const at = set.indexOf(index);
    if (at < 0) return (await loadFrames(key, [index]))[0];
    let pending = sets.get(key);
    if (!pending) {
      pending = loadFrames(key, set);
      sets.set(key, pending);
      pending.catch(() => sets.delete(key));
      if (sets.size > 4) sets.delete(sets.keys().next().value!);
    }
    return (await pending)[at];
  };

  return {
    name,
    stageNames,
    clips: resolved.map((r) => r.info),
    manifestPath,
    warnings,
    loadFrame,
    loadFrames,
    source: (key) => {
      const { source } = lookup(key, []);
      return { kind: source.kind, path: source.path, firstFrame: source.firstFrame };
    },
  };
}
