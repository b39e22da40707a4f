/**
 * The inputs of a batch score: the command line's paths, expanded. A frame folder (a folder holding
 * .jpg/.png files) is one input; any other folder stands for its video files (by extension) and its
 * sub-folders (frame folders), one level deep, hidden names skipped; `@list.txt` (or --list) reads one
 * path a line (blank lines and `#` comments skipped; relative paths are relative to the working folder,
 * as on the command line). Paths that do not exist are kept: the batch reports each as an error line
 * instead of stopping. The result is absolute, de-duplicated and sorted by code unit (the same order
 * on every machine and locale), which is what shards slice (./shard.ts).
 *
 * @example
 * await listBatchInputs(['videos/', '@more.txt']);   // ['/data/videos/a.mp4', '/data/videos/b/', ...]
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { McoreError } from '../errors.ts';

export const VIDEO_FILE = /\.(mp4|m4v|mov|avi|mkv|webm|mpe?g|wmv|flv|ts|mts|3gp)$/i;
const FRAME_FILE = /\.(jpe?g|png)$/i;

/** Paths listed in `file`: one a line, blank lines and `#` comments skipped. */
export async function readListFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${file}: cannot read the list of inputs (${(e as NodeJS.ErrnoException).code ?? 'error'}); give a text file with one video or frame folder a line`,
    );
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

async function expand(p: string): Promise<string[]> {
  const abs = path.resolve(p);
  let entries: Dirent[];
  try {
    if (!(await stat(abs)).isDirectory()) return [abs];
    entries = await readdir(abs, { withFileTypes: true });
  } catch {
    return [abs];
  }
  const visible = entries.filter((d) => !d.name.startsWith('.'));
  if (visible.some((d) => !d.isDirectory() && FRAME_FILE.test(d.name))) return [abs];
  const out: string[] = [];
  for (const d of visible) {
    const child = path.join(abs, d.name);
    if (d.isDirectory()) out.push(child);
    else if (VIDEO_FILE.test(d.name)) out.push(child);
    else if (d.isSymbolicLink()) {
      try {
        const s = await stat(child);
        if (s.isDirectory() || VIDEO_FILE.test(d.name)) out.push(child);
      } catch {
        // a dangling link in a folder of videos is not an input
      }
    }
  }
  return out;
}

/**
 * Expands `args` (paths, folders, `@list` files) and the `lists` files into the sorted, unique
 * absolute inputs. Nothing to score: E_INPUT naming what was given.
 */
export async function listBatchInputs(
  args: readonly string[],
  lists: readonly string[] = [],
): Promise<string[]> {
  const paths: string[] = [];
  for (const a of args) {
    if (a.startsWith('@') && a.length > 1) paths.push(...(await readListFile(a.slice(1))));
    else paths.push(a);
  }
  for (const l of lists) paths.push(...(await readListFile(l)));
  const all = new Set<string>();
  for (const p of paths) for (const x of await expand(p)) all.add(x);
  const sorted = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (sorted.length === 0) {
    throw new McoreError(
      'E_INPUT',
      `no videos or frame folders in ${[...args, ...lists].join(', ') || '(nothing given)'}; give video files, ` +
        'frame folders, folders of them, or a list file (@list.txt)',
    );
  }
  return sorted;
}
