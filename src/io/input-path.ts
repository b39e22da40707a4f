/**
 * The one check for every path a user names as input (score input, import checkpoint, metrics files,
 * dataset roots and annotations, manifests, configs): it must be a regular file or a folder. A named
 * pipe would block the first read forever, a device (`/dev/zero`, `/dev/urandom`) never ends, a
 * socket cannot be read at all; such paths are refused at once, before anything opens them.
 *
 * @example
 * await refuseSpecialFile('in.mp4', 'E_INPUT'); // resolves for a file, a folder or a missing path
 * await refuseSpecialFile('/dev/zero', 'E_INPUT'); // McoreError: /dev/zero: is a character device, not a regular file or a folder ...
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { McoreError, type McoreErrorCode } from '../errors.ts';

/** What a non-regular file is, for the error, or undefined for a regular file or a folder. */
export function specialFileKind(st: Stats): string | undefined {
  if (st.isFile() || st.isDirectory()) return undefined;
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Throws McoreError(`code`) when `path` (symbolic links followed) exists and is neither a regular
 * file nor a folder. A missing path passes: the caller's own read reports it in its own words.
 * `what` names the path's role in the message (e.g. '--pred').
 */
export async function refuseSpecialFile(path: string, code: McoreErrorCode, what?: string): Promise<void> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch {
    return;
  }
  const kind = specialFileKind(st);
  if (kind !== undefined) {
    throw new McoreError(
      code,
      `${what ? `${what} ` : ''}${path}: is ${kind}, not a regular file or a folder; mcore reads only files ` +
        '(copy the data to a file first)',
    );
  }
}
