/**
 * A lock file per output (a run folder, a bundle), so that two mcore processes never write the same
 * output at once. The lock holds who took it: pid, hostname, start time and command. It is created
 * whole (written to a temporary file, then hard-linked to its name, which fails if the name exists), so
 * it is never seen half-written. A lock whose process is gone is stale and taken over: same host and
 * the pid is dead, or the pid now belongs to a process started after the lock was taken (a pid reused
 * after a restart; Linux, from /proc). A crashed or killed process therefore never leaves an output
 * stuck; a lock from another host is never broken (its message says how to remove it by hand).
 *
 * Why not `proper-lockfile`: it decides staleness by the lock's age, so a live holder must touch the lock
 * on a timer and a killed one blocks the output until the timeout passes; a pid check frees it at once.
 *
 * @example
 * const lock = await acquireLock('runs/a/.mcore-lock', "the run folder 'runs/a'");
 * try { ... } finally { await lock.release(); }
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { McoreError } from '../errors.ts';

export interface LockHolder {
  pid: number;
  hostname: string;
  /** ISO time the lock was taken. */
  started: string;
  command: string;
}

export interface Lock {
  file: string;
  holder: LockHolder;
  /** Removes the lock file if it is still this lock (idempotent). */
  release(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

/** Start time (ms since epoch) of process `pid` from /proc (Linux); undefined where unknown. */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 of stat: starttime, in clock ticks after boot
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!(Number.isFinite(ticks) && Number.isFinite(btime))) return undefined;
    return btime * 1000 + ticks * 10; // USER_HZ is 100 on every Linux
  } catch {
    return undefined;
  }
}

/** Whether the process that took `holder` is gone (only decidable on this host). */
export function isStale(holder: LockHolder): boolean {
  if (holder.hostname !== os.hostname()) return false;
  if (!pidAlive(holder.pid)) return true;
  const started = Date.parse(holder.started);
  const procStart = processStartMs(holder.pid);
  // The pid is alive but its process started after the lock was taken: the pid was reused.
  return procStart !== undefined && Number.isFinite(started) && procStart > started + 2000;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && typeof h.hostname === 'string' && typeof h.started === 'string') {
      return { pid: h.pid, hostname: h.hostname, started: h.started, command: String(h.command ?? '') };
    }
  } catch {
    // not a lock of ours
  }
  return undefined;
}

function busy(file: string, what: string, holder: LockHolder | undefined): McoreError {
  if (!holder) {
    return new McoreError(
      'E_BUSY',
      `${what} is locked by ${file}, which is not an mcore lock; remove it if no mcore process is using it`,
    );
  }
  const here = holder.hostname === os.hostname();
  return new McoreError(
    'E_BUSY',
    `${what} is in use by another mcore process (pid ${holder.pid} on ${holder.hostname}, since ` +
      `${holder.started}: ${holder.command}); wait for it to finish or stop it` +
      (here ? '' : `; if that process is gone, remove ${file}`),
  );
}

/** Creates `file` with `text` unless it exists (false then). */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text);
  try {
    await link(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw e;
    // No hard links on this file system: an exclusive create (the content may be seen half-written).
    try {
      await writeFile(file, text, { flag: 'wx' });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Takes the lock `file` for `what` (words for messages, e.g. "the run folder 'runs/a'"); the folder of
 * `file` must exist. Held by a live process: McoreError('E_BUSY') naming the holder.
 */
export async function acquireLock(file: string, what: string): Promise<Lock> {
  const holder: LockHolder = {
    pid: process.pid,
    hostname: os.hostname(),
    started: new Date().toISOString(),
    command: ['mcore', ...process.argv.slice(2)].join(' '),
  };
  const text = `${JSON.stringify(holder)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusive(file, text)) {
      let held = true;
      return {
        file,
        holder,
        release: async () => {
          if (!held) return;
          held = false;
          const now = await readFile(file, 'utf8').catch(() => undefined);
          if (now === text) await rm(file, { force: true });
        },
      };
    }
    const seen = await readFile(file, 'utf8').catch(() => undefined);
    if (seen === undefined) continue; // released meanwhile
    const other = parseHolder(seen);
    if (!other || !isStale(other)) throw busy(file, what, other);
    // Break the stale lock: move it aside (only one process can), check it is the one judged stale.
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await rename(file, aside);
    } catch {
      continue; // someone else broke or released it
    }
    const moved = await readFile(aside, 'utf8').catch(() => undefined);
    if (moved !== seen) {
      // A live lock taken in between: put it back and report it.
      await link(aside, file).catch(() => undefined);
      await rm(aside, { force: true });
      throw busy(file, what, moved === undefined ? undefined : parseHolder(moved));
    }
    await rm(aside, { force: true });
  }
  throw busy(file, what, parseHolder((await readFile(file, 'utf8').catch(() => '')) ?? ''));
}
