/**
 * File-system errors a user can cause or fix (full disk, quota, permissions, read-only file system, a
 * file where a folder should be or the reverse), told in one line naming the path and what to do.
 * `fsErrorMessage` is the one place that knows them: the CLI (src/cli/errors.ts) turns any such error
 * into exit 2, and the run folder (src/train/run-folder.ts) adds which checkpoint is still good.
 */

/** What each user-fixable errno means and how to fix it. */
const FIXES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device; free some space or write to another disk',
  EDQUOT: 'disk quota exceeded; free some space or write to another disk',
  EACCES: 'permission denied; fix the permissions or choose another folder',
  EPERM: 'operation not permitted; fix the permissions or choose another folder',
  EROFS: 'read-only file system; write to another folder',
  ENOTDIR: 'a part of the path is a file, not a folder; give a folder path',
  EISDIR: 'is a folder, not a file; give a file path',
};

const VERBS: Readonly<Record<string, string>> = {
  open: 'cannot open',
  write: 'cannot write',
  read: 'cannot read',
  mkdir: 'cannot create the folder',
  rename: 'cannot rename',
  unlink: 'cannot remove',
  rmdir: 'cannot remove',
  rm: 'cannot remove',
  link: 'cannot create',
  scandir: 'cannot list',
  copyfile: 'cannot copy to',
};

/**
 * One line for a user-fixable file-system error (`${verb} ${path}: ${what and how to fix} (${code})`),
 * or undefined for anything else. `mkdir` over an existing file (EEXIST) counts: a file is in the way.
 */
export function fsErrorMessage(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  if (typeof e.code !== 'string') return undefined;
  let fix = FIXES[e.code];
  if (e.code === 'EEXIST' && e.syscall === 'mkdir')
    fix = 'a file is in the way of the folder; give a folder path';
  if (fix === undefined) return undefined;
  const verb = VERBS[e.syscall ?? ''] ?? 'cannot access';
  const where = e.path === undefined ? '' : ` ${e.path}${e.dest ? ` (to ${e.dest})` : ''}`;
  return `${verb}${where}: ${fix} (${e.code})`;
}
