/**
 * Opens a dataset named on the command line:
 *   - `synthdive` or `synthdive:seed=3,clips=600,size=32,judges=5[,stages=4]` — the embedded procedural
 *     dataset (stages=4: its 4-stage variant);
 *   - `finediving:root=DIR,annotations=DIR[,keys=k1|k2|...][,stages=K]` — FineDiving on disk
 *     (src/data/finediving.ts: trimmed frames under `root`, the .pkl files in `annotations`; `keys`
 *     keeps only those clips, e.g. `keys=01/1|03/12`), sampled as the reference does (`sampledClips`);
 *   - a path to a manifest (`.json` / `.csv`) — any staged action (src/data/manifest.ts).
 *
 * Frame geometry of a run at image size S (`runGeometry`): datasets whose frames are square
 * (SynthDive, and manifests, which are read squeezed to S x S) are cropped S x S as they are;
 * datasets whose frames are not square (FineDiving's broadcast frames) get the reference geometry
 * (src/data/transforms.ts `referenceTransform`): frames are read squeezed to S wide x round(S*200/112)
 * high, then one S x S crop per clip (random in training, centre at test).
 */
import { resolve } from 'node:path';
import { McoreError } from '../errors.ts';
import { createSynthDive, MAX_CLIPS, MAX_SIZE, type SynthDive } from './synthdive/index.ts';
import { type ClipTransform, referenceTransform } from './transforms.ts';
import type { StagedDataset } from './types.ts';

export interface DatasetSpec {
  kind: 'synthdive' | 'manifest' | 'finediving';
  /** synthdive options, { path } for a manifest, { root, annotations, keys?, stages? } for FineDiving. */
  options: Record<string, number | string>;
}

const FINEDIVING_OPTIONS = ['root', 'annotations', 'keys', 'stages'];

/** Most stages a FineDiving spec may ask for (the paper uses 3; each stage needs its own frames). */
const MAX_STAGES = 32;

/**
 * Accepted ranges of the synthdive options: a spec such as clips=1000000000 is refused at once, not
 * built until memory runs out (`clips` <= 100000, frame `size` <= 1024).
 */
const SYNTHDIVE_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  seed: [0, 2 ** 32 - 1],
  clips: [1, MAX_CLIPS],
  size: [8, MAX_SIZE],
  judges: [5, 7],
  stages: [3, 4],
};

function parseFineDivingSpec(text: string, rest: string): DatasetSpec {
  const options: Record<string, number | string> = {};
  for (const part of rest.split(',').filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (eq <= 0 || v.length === 0) {
      throw new McoreError(
        'E_INPUT',
        `--dataset ${text}: '${part}' is not key=value (e.g. finediving:root=FINADiving_MTL_256s,annotations=Annotations)`,
      );
    }
    if (!FINEDIVING_OPTIONS.includes(k)) {
      throw new McoreError(
        'E_INPUT',
        `--dataset ${text}: unknown option '${k}' (known: ${FINEDIVING_OPTIONS.join(', ')})`,
      );
    }
    if (k === 'stages' && !(Number.isInteger(Number(v)) && Number(v) >= 2 && Number(v) <= MAX_STAGES)) {
      throw new McoreError(
        'E_INPUT',
        `--dataset ${text}: stages must be an integer in [2, ${MAX_STAGES}], got '${v}'`,
      );
    }
    options[k] = k === 'stages' ? Number(v) : v;
  }
  const missing = ['root', 'annotations'].filter((k) => options[k] === undefined);
  if (missing.length > 0) {
    throw new McoreError(
      'E_INPUT',
      `--dataset ${text}: missing ${missing.map((k) => `${k}=DIR`).join(' and ')} (finediving:root=FRAMES_DIR,annotations=ANNOTATIONS_DIR)`,
    );
  }
  return { kind: 'finediving', options };
}

export function parseDatasetSpec(text: string): DatasetSpec {
  const [head, rest = ''] = text.split(/:(.*)/s, 2);
  if (head === 'synthdive') {
    const options: Record<string, number> = {};
    for (const part of rest.split(',').filter((p) => p.length > 0)) {
      const [k, v] = part.split('=');
      const n = Number(v);
      if (!k || v === undefined || !Number.isFinite(n)) {
        throw new McoreError(
          'E_INPUT',
          `--dataset ${text}: '${part}' is not key=number (e.g. synthdive:seed=1,clips=600)`,
        );
      }
      if (!Object.hasOwn(SYNTHDIVE_RANGES, k)) {
        throw new McoreError(
          'E_INPUT',
          `--dataset ${text}: unknown option '${k}' (known: ${Object.keys(SYNTHDIVE_RANGES).join(', ')})`,
        );
      }
      const [lo, hi] = SYNTHDIVE_RANGES[k];
      if (!Number.isInteger(n) || n < lo || n > hi || (k === 'judges' && n !== 5 && n !== 7)) {
        throw new McoreError(
          'E_INPUT',
          `--dataset ${text}: ${k} must be ${k === 'judges' ? '5 or 7' : `an integer in [${lo}, ${hi}]`}, got '${v}'`,
        );
      }
      options[k] = n;
    }
    return { kind: 'synthdive', options };
  }
  if (head === 'finediving') return parseFineDivingSpec(text, rest);
  if (/\.(json|csv)$/i.test(text)) return { kind: 'manifest', options: { path: text } };
  throw new McoreError(
    'E_INPUT',
    `--dataset ${text}: unknown dataset; use 'synthdive[:seed=N,clips=N,size=N]', 'finediving:root=DIR,annotations=DIR[,keys=K1|K2]' or a manifest file (.json/.csv)`,
  );
}

/**
 * The spec with every path in it absolute (resolved against the current directory): a manifest's path,
 * FineDiving's root and annotations. Runs record this form, so `mcore eval --run /abs/RUN` and
 * `--resume` open the same data from any directory.
 *
 * @example
 * absoluteDatasetSpec('data/vaults.csv'); // '/home/me/project/data/vaults.csv'
 */
export function absoluteDatasetSpec(text: string): string {
  const spec = parseDatasetSpec(text);
  if (spec.kind === 'manifest') return resolve(String(spec.options.path));
  if (spec.kind === 'finediving') {
    const parts = Object.entries(spec.options).map(([k, v]) =>
      k === 'root' || k === 'annotations' ? `${k}=${resolve(String(v))}` : `${k}=${v}`,
    );
    return `finediving:${parts.join(',')}`;
  }
  return text;
}

export function openSynthDive(options: Record<string, number | string>): SynthDive {
  const size = Number(options.size ?? 32);
  return createSynthDive({
    seed: Number(options.seed ?? 0),
    clips: Number(options.clips ?? 600),
    width: size,
    height: size,
    judges: Number(options.judges ?? 5) as 5 | 7,
    stages: Number(options.stages ?? 3) as 3 | 4,
  });
}

/** How a run at image size S reads and crops the frames of a dataset (module doc). */
export interface RunGeometry {
  /** Frame size to pass to openDataset. */
  width: number;
  height: number;
  /** The crop (and flip in training) applied to every clip. */
  transform(train: boolean): ClipTransform;
}

export function runGeometry(text: string, S: number): RunGeometry {
  if (parseDatasetSpec(text).kind === 'finediving') {
    const t = referenceTransform(S, false);
    return { ...t.resize!, transform: (train) => referenceTransform(S, train) };
  }
  return { width: S, height: S, transform: (train) => ({ crop: S, train, flipProb: 0.5 }) };
}

/**
 * Opens the dataset `text` (module doc) with frames of `opts.width` x `opts.height` (SynthDive renders
 * at `opts.width`; manifests and FineDiving squeeze their frames to that size on read).
 */
export async function openDataset(
  text: string,
  opts: { width: number; height: number },
): Promise<StagedDataset> {
  const spec = parseDatasetSpec(text);
  if (spec.kind === 'synthdive') return openSynthDive({ size: opts.width, ...spec.options });
  if (spec.kind === 'finediving') {
    const { openFineDiving } = await import('./finediving.ts');
    const { readImage } = await import('./images.ts');
    const o = spec.options;
    const ds = await openFineDiving({
      root: String(o.root),
      annotations: String(o.annotations),
      ...(o.keys !== undefined ? { keys: String(o.keys).split('|') } : {}),
      ...(o.stages !== undefined ? { stages: Number(o.stages) } : {}),
    });
    return {
      ...ds,
      async loadFrame(key, index) {
        try {
          return await readImage(ds.framePath(key, index), opts);
        } catch (err) {
          await ds.loadFrame(key, index); // names a missing frame and the layout check to run
          throw err;
        }
      },
    };
  }
  const { loadManifestDataset } = await import('./manifest.ts');
  return loadManifestDataset(String(spec.options.path), opts);
}
