import { describe, expect, it } from 'vitest';
import { helperPid, spawnViaHelper } from '../../src/data/video/spawner.ts';

function collect(bin: string, args: string[]) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const child = spawnViaHelper(bin, args, { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c) });
  return child.closed.then((code) => ({
    code,
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
  }));
}

describe('spawnViaHelper', () => {
  it('starts children from the helper process, not from this one (no fork of this process)', async () => {
    const r = await collect('/bin/sh', ['-c', 'echo $PPID; echo oops >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('oops\n');
    const parent = Number(r.stdout.trim());
    expect(parent).toBe(helperPid());
    expect(parent).not.toBe(process.pid);
  });

  it('delivers large outputs whole and in order, several children at once', async () => {
    const runs = await Promise.all([1, 2, 3].map((k) => collect('/usr/bin/seq', ['1', String(k * 100_000)])));
    runs.forEach((r, i) => {
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.length).toBe((i + 1) * 100_000);
      expect(lines.every((l, j) => Number(l) === j + 1)).toBe(true);
      expect(r.code).toBe(0);
    });
  });

  it('rejects with the spawn error of a missing binary, and works on afterwards', async () => {
    await expect(collect('/nonexistent/ffmpeg', [])).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await collect('/bin/sh', ['-c', 'printf ok'])).stdout).toBe('ok');
  });

  it('kill stops a child early', async () => {
    const child = spawnViaHelper('/bin/sleep', ['30'], { onStdout: () => {}, onStderr: () => {} });
    child.kill();
    expect(await child.closed).toBeNull();
  });
});
