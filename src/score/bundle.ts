/**
 * Bundle folders on disk: writing one (./export.ts) and reading one back (./scorer.ts), with the format
 * of ./bundle-format.ts (see there for the files and their contents).
 *
 * A bundle is written as a whole (src/io/replace-folder.ts): its files go to a staging folder beside it,
 * which then replaces the old bundle by renames, so a killed export leaves the old bundle or the new
 * one, never a mix that loads. One export at a time per bundle: `lockBundle` takes `.NAME.mcore-lock`
 * beside it (src/io/lock.ts). A bundle folder is replaced only if it holds nothing but bundle files.
 *
 * @example
 * const b = await readBundle('runs/a/bundle');
 * b.manifest.stageNames;          // ['take-off', 'flight', 'entry']
 * b.exemplars.records.length;     // training clips in the bank
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { refuseSpecialFile } from '../io/input-path.ts';
import { acquireLock, type Lock } from '../io/lock.ts';
import { checkReplaceable, leftoversOf, replaceFolder } from '../io/replace-folder.ts';
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

/** Files that mcore writes beside a bundle's own (`mcore import`'s report): replaced with the bundle. */
export const BUNDLE_COMPANIONS: readonly string[] = ['import.json'];

/** Whether `name` (an entry of a bundle folder) is a bundle file, a companion, or a temporary file of one. */
export function ownedByBundle(name: string): boolean {
  const base = name.replace(/\.tmp-\d+-[0-9a-f]{8}$/, '');
  return (Object.values(BUNDLE_FILES) as string[]).includes(base) || BUNDLE_COMPANIONS.includes(base);
}

const BUNDLE_TARGET = { owns: ownedByBundle, what: 'scoring bundle' };

/**
 * Takes the lock of bundle folder `dir` (`.NAME.mcore-lock` beside it): one writer at a time. Checks
 * first that `dir` can take a bundle (absent, or a folder of bundle files only; else E_INPUT), so an
 * export is refused before its work, not after.
 */
export async function lockBundle(dir: string): Promise<Lock> {
  const abs = path.resolve(dir);
  await checkReplaceable(abs, BUNDLE_TARGET);
  await mkdir(path.dirname(abs), { recursive: true });
  return acquireLock(path.join(path.dirname(abs), `.${path.basename(abs)}.mcore-lock`), `the bundle ${abs}`);
}

/**
 * Writes a bundle folder as a whole: the three graphs, the exemplar bank and the manifest into a
 * staging folder, which then replaces `dir` (see the file comment). Takes the bundle's lock unless
 * `opts.locked` says the caller holds it (lockBundle). Throws E_SHAPE if the bank's tokens do not fill
 * [E, K*L, D]; E_INPUT if `dir` is a file or holds other files; E_BUSY if another process writes it.
 */
export async function writeBundle(
  dir: string,
  parts: { manifest: BundleManifest; graphs: BundleGraphs; exemplars: ExemplarBank },
  opts: { locked?: boolean } = {},
): Promise<void> {
  const { manifest, exemplars } = parts;
  const per = manifest.stages * manifest.tokensPerStage;
  const E = exemplars.records.length;
  if (exemplars.tokens.length !== E * per * manifest.featureDim) {
    throw new McoreError(
      'E_SHAPE',
      `bundle exemplars: ${exemplars.tokens.length} token values for ${E} clips x ${per} tokens x ${manifest.featureDim}`,
    );
  }
  const lock = opts.locked ? undefined : await lockBundle(dir);
  try {
    await replaceFolder(dir, (staging) => writeBundleFiles(staging, parts), BUNDLE_TARGET);
  } finally {
    await lock?.release();
  }
}

async function writeBundleFiles(
  dir: string,
  parts: { manifest: BundleManifest; graphs: BundleGraphs; exemplars: ExemplarBank },
): Promise<void> {
  const { manifest, graphs, exemplars } = parts;
  const per = manifest.stages * manifest.tokensPerStage;
  const E = exemplars.records.length;
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
    // A folder under a file's name is refused here; pipes and devices by the readers (refuseSpecialFile).
    const isDir = await stat(path.join(abs, name)).then(
      (s) => s.isDirectory(),
      () => undefined,
    );
    if (isDir === undefined) missing.push(name);
    else if (isDir) {
      throw new McoreError(
        'E_INPUT',
        `${path.join(abs, name)}: is a folder, not a file; this is not a valid scoring bundle: export it again with 'mcore export'`,
      );
    }
  }
  if (missing.length === Object.keys(BUNDLE_FILES).length) {
    const { old } = await leftoversOf(abs);
    if (old.length > 0) {
      throw new McoreError(
        'E_INPUT',
        `${abs}: no bundle here; an export was interrupted while replacing it, and the previous bundle is ` +
          `intact in ${old[0]}: rename it to ${abs}, or export again`,
      );
    }
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
  const manifest = parseManifest(await readBundleText(manifestPath), manifestPath);
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

/** A bundle's JSON file as text: a folder, a pipe or an unreadable file in its place is E_INPUT. */
async function readBundleText(file: string): Promise<string> {
  await refuseSpecialFile(file, 'E_INPUT');
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); export the bundle again`,
    );
  }
}

async function readExemplars(dir: string, manifest: BundleManifest): Promise<ExemplarBank> {
  const indexPath = path.join(dir, BUNDLE_FILES.exemplarIndex);
  const tokensPath = path.join(dir, BUNDLE_FILES.exemplarTokens);
  const indexText = await readBundleText(indexPath);
  await refuseSpecialFile(tokensPath, 'E_INPUT');
  let tokens: Uint8Array;
  try {
    tokens = await readFile(tokensPath);
  } catch (e) {
    throw new McoreError('E_INPUT', `${tokensPath}: cannot read (${(e as Error).message})`);
  }
  return parseExemplarBank(indexText, tokens, manifest, { index: indexPath, tokens: tokensPath });
}
