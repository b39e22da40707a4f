/**
 * Opens a dataset named on the command line:
 *   - `synthdive` or `synthdive:seed=3,clips=600,size=32,judges=5` — the embedded procedural dataset;
 *   - a path to a manifest (`.json` / `.csv`) — any staged action (src/data/manifest.ts).
 */
import { McoreError } from '../errors.ts';
import { createSynthDive, type SynthDive } from './synthdive/index.ts';
import type { StagedDataset } from './types.ts';

export interface DatasetSpec {
  kind: 'synthdive' | 'manifest';
  /** synthdive options, or { path } for a manifest. */
  options: Record<string, number | string>;
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
      if (!['seed', 'clips', 'size', 'judges'].includes(k)) {
        throw new McoreError(
          'E_INPUT',
          `--dataset ${text}: unknown option '${k}' (known: seed, clips, size, judges)`,
        );
      }
      options[k] = n;
    }
    return { kind: 'synthdive', options };
  }
  if (/\.(json|csv)$/i.test(text)) return { kind: 'manifest', options: { path: text } };
  throw new McoreError(
    'E_INPUT',
    `--dataset ${text}: unknown dataset; use 'synthdive[:seed=N,clips=N,size=N]' or a manifest file (.json/.csv)`,
  );
}

export function openSynthDive(options: Record<string, number | string>): SynthDive {
  const size = Number(options.size ?? 32);
  return createSynthDive({
    seed: Number(options.seed ?? 0),
    clips: Number(options.clips ?? 600),
    width: size,
    height: size,
    judges: Number(options.judges ?? 5) as 5 | 7,
  });
}

export async function openDataset(
  text: string,
  opts: { width: number; height: number },
): Promise<StagedDataset> {
  const spec = parseDatasetSpec(text);
  if (spec.kind === 'synthdive') return openSynthDive({ size: opts.width, ...spec.options });
  const { loadManifestDataset } = await import('./manifest.ts');
  return loadManifestDataset(String(spec.options.path), opts);
}
