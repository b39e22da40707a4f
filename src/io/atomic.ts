/**
 * Atomic file writes: the data goes to a temporary file in the same folder, then a rename replaces the
 * target, so a crash leaves either the old file or the new one, never a torn one. `appendText` is the
 * one non-atomic write (log lines), here so that every write passes the same test seams (./faults.ts).
 */
import { randomBytes } from 'node:crypto';
import { appendFile, rename, rm, writeFile } from 'node:fs/promises';
import { crashPoint, injectedWriteFault } from './faults.ts';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    injectedWriteFault(file);
    await writeFile(tmp, data);
    crashPoint('atomic:before-rename');
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw withPath(err, file);
  }
}

/** An fs error of a write names no path (ENOSPC from write(2) has only the fd): name the target. */
function withPath(err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof e.code === 'string' && e.path === undefined) e.path = file;
  return err;
}

/** Appends `text` to `file` (created if absent). */
export async function appendText(file: string, text: string): Promise<void> {
  try {
    injectedWriteFault(file);
    await appendFile(file, text);
  } catch (err) {
    throw withPath(err, file);
  }
}
