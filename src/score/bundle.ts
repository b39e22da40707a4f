/**
 * Bundle folders on disk: writing one (./export.ts) and reading one back (./scorer.ts), with the format
 * of ./bundle-format.ts (see there for the files and their contents).
 *
 * @example
 * const b = await readBundle('runs/a/bundle');
 * b.manifest.stageNames;          // ['take-off', 'flight', 'entry']
 * b.exemplars.records.length;     // training clips in the bank
 */
import { access, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { encodeSafetensors } from '../io/safetensors-codec.ts';
import { VERSION } from '../version.ts';
import {
  BUNDLE_FILES,
  BUNDLE_FORMAT,
  type BundleGraphs,
  type BundleManifest,
  type ExemplarBank,
  parseExemplarBank,
  parseManifest,
} from './bundle-format.ts';

export * from './bundle-format.ts';

/**
 * Writes a bundle folder: the three graphs, the exemplar bank, then the manifest (atomically, each
 * file). Throws E_SHAPE if the bank's tokens do not fill [E, K*L, D].
 */
export async function writeBundle(
  dir: string,
  parts: { manifest: BundleManifest; graphs: BundleGraphs; exemplars: ExemplarBank },
): Promise<void> {
  const { manifest, graphs, exemplars } = parts;
  const per = manifest.stages * manifest.tokensPerStage;
  const E = exemplars.records.length;
  if (exemplars.tokens.length !== E * per * manifest.featureDim) {
    throw new McoreError(
      'E_SHAPE',
      `bundle exemplars: ${exemplars.tokens.length} token values for ${E} clips x ${per} tokens x ${manifest.featureDim}`,
    );
  }
  await mkdir(dir, { recursive: true });
  const file = (name: string) => path.join(dir, name);
  await writeFileAtomic(file(BUNDLE_FILES.backbone), graphs.backbone);
  await writeFileAtomic(file(BUNDLE_FILES.segmenter), graphs.segmenter);
  await writeFileAtomic(file(BUNDLE_FILES.scorer), graphs.scorer);
  const shape: [number, number, number] = [E, per, manifest.featureDim];
  await writeFileAtomic(
    file(BUNDLE_FILES.exemplarTokens),
    encodeSafetensors(
      { tokens: { dtype: 'F32', shape, data: exemplars.tokens } },
      { format: BUNDLE_FORMAT, version: VERSION },
    ),
  );
  const index = { count: E, shape, exemplars: exemplars.records };
  await writeFileAtomic(file(BUNDLE_FILES.exemplarIndex), `${JSON.stringify(index, null, 1)}\n`);
  await writeFileAtomic(file(BUNDLE_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

export interface BundleOnDisk {
  dir: string;
  manifest: BundleManifest;
  exemplars: ExemplarBank;
  /** Absolute paths of the three graphs. */
  graphs: { backbone: string; segmenter: string; scorer: string };
}

/**
 * Reads a bundle folder: checks that every file is present, validates the manifest and the exemplar
 * bank against it. A missing folder or file, a bad manifest, an incompatible version: E_INPUT.
 */
export async function readBundle(dir: string): Promise<BundleOnDisk> {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (const name of Object.values(BUNDLE_FILES)) {
    try {
      await access(path.join(abs, name));
    } catch {
      missing.push(name);
    }
  }
  if (missing.length === Object.keys(BUNDLE_FILES).length) {
    throw new McoreError(
      'E_INPUT',
      `${abs}: not a scoring bundle (none of its files is there); write one with 'mcore export --run RUN --out ${dir}'`,
    );
  }
  if (missing.length > 0) {
    throw new McoreError(
      'E_INPUT',
      `${abs}: incomplete scoring bundle, missing ${missing.join(', ')}; export it again with 'mcore export'`,
    );
  }
  const manifestPath = path.join(abs, BUNDLE_FILES.manifest);
  const manifest = parseManifest(await readFile(manifestPath, 'utf8'), manifestPath);
  const exemplars = await readExemplars(abs, manifest);
  return {
    dir: abs,
    manifest,
    exemplars,
    graphs: {
      backbone: path.join(abs, BUNDLE_FILES.backbone),
      segmenter: path.join(abs, BUNDLE_FILES.segmenter),
      scorer: path.join(abs, BUNDLE_FILES.scorer),
    },
  };
}

async function readExemplars(dir: string, manifest: BundleManifest): Promise<ExemplarBank> {
  const indexPath = path.join(dir, BUNDLE_FILES.exemplarIndex);
  const tokensPath = path.join(dir, BUNDLE_FILES.exemplarTokens);
  let indexText: string;
  let tokens: Uint8Array;
  try {
    indexText = await readFile(indexPath, 'utf8');
  } catch (e) {
    throw new McoreError('E_INPUT', `${indexPath}: cannot read (${(e as Error).message})`);
  }
  try {
    tokens = await readFile(tokensPath);
  } catch (e) {
    throw new McoreError('E_INPUT', `${tokensPath}: cannot read (${(e as Error).message})`);
  }
  return parseExemplarBank(indexText, tokens, manifest, { index: indexPath, tokens: tokensPath });
}
