/**
 * A folder replaced as a whole, for outputs made of several files that belong together (a scoring
 * bundle): the new files go to a staging folder beside the target (`.NAME.partial-PID-RAND`, same file
 * system), then two renames swap it in: the old folder to `.NAME.old-PID-RAND`, the staging folder to
 * NAME; the old one is then removed. A kill leaves either the old folder at NAME, or the new one, or
 * (between the two renames) none at NAME and the old one intact beside it, never a mix of both.
 *
 * An existing folder is replaced only when every entry in it is one the caller owns (`owns(name)`):
 * anything else there is refused (E_INPUT) and nothing is touched. A file at NAME: E_INPUT.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { McoreError } from '../errors.ts';
import { crashPoint } from './faults.ts';
import { fsErrorMessage } from './fs-errors.ts';

/** Leftovers of interrupted replacements of `dir`: the staging and the moved-aside folders beside it. */
export async function leftoversOf(dir: string): Promise<{ partial: string[]; old: string[] }> {
  const abs = path.resolve(dir);
  const base = path.basename(abs);
  const names = await readdir(path.dirname(abs)).catch(() => [] as string[]);
  const pick = (kind: string) =>
    names
      .filter((n) => n.startsWith(`.${base}.${kind}-`) && /-\d+-[0-9a-f]{8}$/.test(n))
      .map((n) => path.join(path.dirname(abs), n));
  return { partial: pick('partial'), old: pick('old') };
}

export interface ReplaceOptions {
  /** Whether an entry of the existing folder is one the caller may replace. */
  owns: (name: string) => boolean;
  /** What the folder is, for messages (e.g. 'scoring bundle'). */
  what: string;
}

/**
 * Checks that `dir` may be replaced (absent, or a folder of owned entries only) without writing
 * anything; returns whether it exists. A file, or foreign entries: E_INPUT.
 */
export async function checkReplaceable(dir: string, opts: ReplaceOptions): Promise<boolean> {
  const abs = path.resolve(dir);
  const existing = await stat(abs).then(
    (s) => s.isDirectory(),
    () => undefined,
  );
  if (existing === false) {
    throw new McoreError('E_INPUT', `${abs}: is a file, not a folder; give a folder for the ${opts.what}`);
  }
  if (existing) {
    const foreign = (await readdir(abs)).filter((n) => !opts.owns(n));
    if (foreign.length > 0) {
      throw new McoreError(
        'E_INPUT',
        `${abs}: holds files that are not part of a ${opts.what} (${foreign.slice(0, 4).join(', ')}` +
          `${foreign.length > 4 ? ', ...' : ''}); choose a new or empty folder, or move them away`,
      );
    }
  }
  return existing === true;
}

/**
 * Writes a new `dir` through `fill(staging)` and swaps it in. The caller holds the lock of `dir`, so
 * staging folders left by killed earlier calls are removed first.
 */
export async function replaceFolder(
  dir: string,
  fill: (staging: string) => Promise<void>,
  opts: ReplaceOptions,
): Promise<void> {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  const existing = await checkReplaceable(abs, opts);
  await mkdir(parent, { recursive: true });
  const { partial } = await leftoversOf(abs);
  for (const p of partial) await rm(p, { recursive: true, force: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = path.join(parent, `.${base}.partial-${tag}`);
  await mkdir(staging);
  try {
    await fill(staging);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    const message = fsErrorMessage(err);
    if (message === undefined) throw err;
    const kept = existing ? `the ${opts.what} in ${abs} is unchanged` : `no ${opts.what} was written`;
    throw new McoreError('E_IO', `${message}; ${kept}`);
  }
  if (existing) {
    const old = path.join(parent, `.${base}.old-${tag}`);
    await rename(abs, old);
    crashPoint('bundle:swap');
    await rename(staging, abs);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(staging, abs);
  }
  // Folders moved aside by killed earlier calls: the new folder is in place, they are no longer needed.
  for (const o of (await leftoversOf(abs)).old) await rm(o, { recursive: true, force: true });
}
