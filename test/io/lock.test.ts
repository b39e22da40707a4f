import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock, isStale } from '../../src/io/lock.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('acquireLock', () => {
  it('refuses a second holder while the first lives, naming it, and frees the lock on release', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-lock-'));
    const file = path.join(dir, '.mcore-lock');
    const lock = await acquireLock(file, 'the run folder X');
    const held = JSON.parse(await readFile(file, 'utf8'));
    expect(held).toMatchObject({ pid: process.pid, hostname: os.hostname() });
    expect(Date.parse(held.started)).toBeGreaterThan(0);
    await expectMcoreRejection(
      acquireLock(file, 'the run folder X'),
      'E_BUSY',
      `the run folder X is in use by another mcore process (pid ${process.pid} on ${os.hostname()}`,
    );
    await lock.release();
    await lock.release(); // idempotent
    const again = await acquireLock(file, 'the run folder X');
    await again.release();
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });

  it('takes over the lock of a dead process or a reused pid, never one of another host', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-lock-'));
    const file = path.join(dir, 'a.lock');
    const holder = (pid: number, hostname = os.hostname(), started = new Date().toISOString()) =>
      JSON.stringify({ pid, hostname, started, command: 'mcore train' });

    const dead = deadPid();
    expect(isStale(JSON.parse(holder(dead)))).toBe(true);
    await writeFile(file, holder(dead));
    const a = await acquireLock(file, 'A');
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(process.pid);
    await a.release();

    // Our own pid, but the lock was taken a day before this process started: the pid was reused.
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
    if (process.platform === 'linux') {
      expect(isStale(JSON.parse(holder(process.pid, os.hostname(), dayAgo)))).toBe(true);
    }
    expect(isStale(JSON.parse(holder(process.pid)))).toBe(false);

    await writeFile(file, holder(dead, 'elsewhere.example'));
    await expectMcoreRejection(
      acquireLock(file, 'B'),
      'E_BUSY',
      `B is in use by another mcore process (pid ${dead} on elsewhere.example`,
      `if that process is gone, remove ${file}`,
    );
    await writeFile(file, 'not json');
    await expectMcoreRejection(
      acquireLock(file, 'C'),
      'E_BUSY',
      `C is locked by ${file}, which is not an mcore lock`,
    );
    expect(await readFile(file, 'utf8')).toBe('not json'); // untouched
  });

  it('a release does not remove a lock that another process took over meanwhile', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-lock-'));
    const file = path.join(dir, 'a.lock');
    const lock = await acquireLock(file, 'A');
    const other = JSON.stringify({ pid: 1, hostname: 'h', started: new Date().toISOString(), command: 'x' });
    await writeFile(file, other);
    await lock.release();
    expect(await readFile(file, 'utf8')).toBe(other);
  });
});
