/**
 * Batch scoring, sharding and merge through the real CLI, on a tiny bundle: 7 inputs (mp4 files, frame
 * folders and a corrupt "video" in the middle). Checks: one line per input with an error line for the
 * corrupt one; three shard processes (--shard, a Kubernetes and a Slurm environment) merged equal the
 * unsharded run; merge refuses missing and doubled inputs; a batch killed mid-way (blocked in an ffmpeg
 * that hangs on one input, then SIGKILL, plus a torn last line) resumed ends with every input exactly
 * once. (A FIFO no longer blocks a batch: mcore refuses pipes at once.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { exportFrameFolders, exportMp4 } from '../../src/data/export.ts';
import { openSynthDive } from '../../src/data/open.ts';
import { ffmpegPath } from '../../src/data/video.ts';
import type { BatchLine } from '../../src/score/results-file.ts';
import { trainRun } from '../../src/verbs/run.ts';
import { MCORE_ARGV, mcore, mcoreWithEnv, repoRoot } from '../helpers/cli.ts';

let tmp: string;
let bundle: string;
let inDir: string;
/** The sorted inputs of inDir. */
let inputs: string[];
let unsharded: BatchLine[];

const lines = async (file: string): Promise<BatchLine[]> =>
  (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as BatchLine);

/** What must agree between two runs over the same input: everything but timings and shard. */
const essence = (l: BatchLine) => ({
  input: l.input,
  position: l.position,
  ok: l.ok,
  score: l.result?.score,
  transitions: l.result?.transitions,
  exemplars: l.result?.exemplars.map((e) => e.key),
  error: l.error?.code,
});

beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-batch-'));
  const config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: 32 },
    train: { epochs: 1 },
  });
  const run = path.join(tmp, 'run');
  await trainRun({ dataset: 'synthdive:seed=1,clips=12,size=32', config }, { out: run, resume: false });
  const ds = openSynthDive({ seed: 1, clips: 12, size: 32 });
  const keys = ['synthdive-0001', 'synthdive-0002', 'synthdive-0003', 'synthdive-0004'];
  await exportMp4(ds, path.join(tmp, 'mp4'), { keys });
  await exportFrameFolders(ds, path.join(tmp, 'frames'), { keys: ['synthdive-0005', 'synthdive-0006'] });
  inDir = path.join(tmp, 'in');
  await mkdir(inDir);
  const mp4 = (i: number) => path.join(tmp, 'mp4', 'synthdive', `${i}.mp4`);
  await rename(mp4(1), path.join(inDir, '01.mp4'));
  await rename(mp4(2), path.join(inDir, '02.mp4'));
  await writeFile(path.join(inDir, '03-corrupt.mp4'), 'this is not a video\n'.repeat(50));
  await rename(mp4(3), path.join(inDir, '04.mp4'));
  await rename(path.join(tmp, 'frames', 'synthdive', '5'), path.join(inDir, '05'));
  await rename(path.join(tmp, 'frames', 'synthdive', '6'), path.join(inDir, '06'));
  await rename(mp4(4), path.join(inDir, '07.mp4'));
  await writeFile(path.join(inDir, 'notes.txt'), 'not an input: neither a video nor a folder\n');
  inputs = ['01.mp4', '02.mp4', '03-corrupt.mp4', '04.mp4', '05', '06', '07.mp4'].map((n) =>
    path.join(inDir, n),
  );
  bundle = path.join(tmp, 'bundle');
  const r = await mcore('export', '--run', run, '--out', bundle);
  expect(r.code).toBe(0);
  const out = path.join(tmp, 'all-unsharded.jsonl');
  const b = await mcore('score', inDir, '--model', bundle, '--exemplars', '3', '--out', out);
  expect(b.stderr).toMatch(/shard 0\/1: 7 of 7 inputs, 0 already in .*, 7 to score/);
  expect(b.code).toBe(0);
  unsharded = await lines(out);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mcore score --out (batch)', () => {
  it('writes one line per input; the corrupt video is an error line and the rest are scored', async () => {
    expect(unsharded.map((l) => l.input).sort()).toEqual(inputs);
    expect(unsharded.map((l) => l.position).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const bad = unsharded.filter((l) => !l.ok);
    expect(bad).toHaveLength(1);
    expect(bad[0].input).toBe(inputs[2]);
    expect(bad[0].error?.code).toBe('E_INPUT');
    expect(bad[0].error?.message).toMatch(/03-corrupt\.mp4: not a readable video/);
    for (const l of unsharded.filter((x) => x.ok)) {
      expect(l.shard).toBe('0/1');
      expect(l.total).toBe(7);
      expect(l.result?.exemplars).toHaveLength(3);
      expect(l.result?.input.path).toBe(l.input);
    }
    // A line holds what `mcore score --json` prints for that input alone.
    const one = await mcore('score', inputs[4], '--model', bundle, '--exemplars', '3', '--json');
    expect(one.code).toBe(0);
    const alone = JSON.parse(one.stdout);
    const line = unsharded.find((l) => l.input === inputs[4]);
    expect(line?.result?.score).toBeCloseTo(alone.score, 9);
    expect(line?.result?.exemplars.map((e) => e.key)).toEqual(
      alone.exemplars.map((e: { key: string }) => e.key),
    );
  });

  it('three shard processes (--shard, Kubernetes, Slurm) merged equal the unsharded run', async () => {
    const out = (i: number) => path.join(tmp, `results-${i}.jsonl`);
    const common = ['score', inDir, '--model', bundle, '--exemplars', '3', '--jobs', '1'];
    const runs = await Promise.all([
      mcore(...common, '--shard', '0/3', '--out', out(0)),
      mcoreWithEnv({ JOB_COMPLETION_INDEX: '1' }, ...common, '--shards', '3', '--out', out(1)),
      mcoreWithEnv(
        { SLURM_ARRAY_TASK_ID: '6', SLURM_ARRAY_TASK_MIN: '4', SLURM_ARRAY_TASK_COUNT: '3' },
        ...common,
        '--out',
        out(2),
      ),
    ]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs[1].stderr).toMatch(/shard 1\/3 \(from JOB_COMPLETION_INDEX\): 2 of 7 inputs/);
    expect(runs[2].stderr).toMatch(/shard 2\/3 \(from SLURM_ARRAY_TASK_ID\): 2 of 7 inputs/);
    expect(runs[0].stdout).toMatch(/^shard 0\/3: done 3, failed 0, skipped 0 of 3 \(7 inputs in all\)/);
    expect(runs[2].stdout).toMatch(/^shard 2\/3: done 1, failed 1, skipped 0 of 2 \(7 inputs in all\)/);
    expect((await lines(out(1))).map((l) => l.input)).toEqual([inputs[1], inputs[4]]);

    const all = path.join(tmp, 'all.jsonl');
    const m = await mcore('merge', out(0), out(1), out(2), '--out', all, '--inputs', inDir);
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    expect(m.stdout).toBe(`merged 3 file(s): 7 inputs (6 scored, 1 failed) -> ${all}\n`);
    const merged = await lines(all);
    expect(merged.map((l) => l.position)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const byPos = [...unsharded].sort((a, b) => a.position - b.position);
    expect(merged.map(essence)).toEqual(byPos.map(essence));

    const missing = await mcore('merge', out(0), out(2), '--out', path.join(tmp, 'x.jsonl'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /2 of 7 input\(s\) missing: input #1 \(shard 1\/3\); input #4 \(shard 1\/3\); run those shards again/,
    );
    const named = await mcore('merge', out(0), out(2), '--out', path.join(tmp, 'x.jsonl'), '--inputs', inDir);
    expect(named.stderr).toContain(`${inputs[1]} (shard 1/3)`);
    const twice = await mcore('merge', out(0), out(1), out(2), out(1), '--out', path.join(tmp, 'x.jsonl'));
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain(
      `2 input(s) in more than one line: ${inputs[1]} (in ${out(1)} and ${out(1)})`,
    );
    expect(twice.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a batch killed mid-way and resumed scores every input exactly once', async () => {
    const dir = path.join(tmp, 'kill');
    await mkdir(dir);
    for (const p of inputs.filter((_, i) => i !== 2)) await symlink(p, path.join(dir, path.basename(p)));
    // A video whose decoding hangs: an ffmpeg wrapper (MCORE_FFMPEG) that sleeps on 04b.mp4, so the
    // batch stops there.
    const hangs = path.join(dir, '04b.mp4');
    await symlink(inputs[3], hangs);
    const hanging = path.join(tmp, 'hanging-ffmpeg.sh');
    await writeFile(
      hanging,
      `#!/bin/sh\nfor a in "$@"; do case "$a" in *04b.mp4) exec sleep 600;; esac; done\nexec '${ffmpegPath()}' "$@"\n`,
      { mode: 0o755 },
    );
    const out = path.join(tmp, 'killed.jsonl');
    const child: ChildProcess = spawn(
      process.execPath,
      [...MCORE_ARGV, 'score', dir, '--model', bundle, '--exemplars', '3', '--jobs', '1', '--out', out],
      {
        cwd: repoRoot,
        env: { ...process.env, CI: '1', MCORE_FFMPEG: hanging },
        detached: true,
        stdio: 'ignore',
      },
    );
    const exited = new Promise((resolve) => child.on('exit', resolve));
    // 01, 02, 04 come before the FIFO in sorted order.
    for (;;) {
      const n = await readFile(out, 'utf8').then(
        (t) => t.split('\n').length - 1,
        () => 0,
      );
      if (n >= 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
    const before = await lines(out);
    expect(before.map((l) => path.basename(l.input))).toEqual(['01.mp4', '02.mp4', '04.mp4']);
    // A crash while writing leaves a torn last line: half of a line, no newline.
    const torn = JSON.stringify({ ...before[0], input: hangs, position: 3 });
    await appendFile(out, torn.slice(0, torn.length >> 1));

    const again = await mcore('score', dir, '--model', bundle, '--exemplars', '3', '--out', out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/killed\.jsonl already holds 3 result line\(s\); pass --resume/);
    const r = await mcore('score', dir, '--model', bundle, '--exemplars', '3', '--out', out, '--resume');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/7 of 7 inputs, 3 already in .*killed\.jsonl, 4 to score; a torn last line/);
    expect(r.stdout).toMatch(/done 4, failed 0, skipped 3 of 7/);
    const after = await lines(out);
    const names = after.map((l) => path.basename(l.input)).sort();
    expect(names).toEqual(['01.mp4', '02.mp4', '04.mp4', '04b.mp4', '05', '06', '07.mp4']);
    expect(after.every((l) => l.ok)).toBe(true);
    expect((await readFile(out, 'utf8')).endsWith('}\n')).toBe(true);
    const done = await mcore('score', dir, '--model', bundle, '--exemplars', '3', '--out', out, '--resume');
    expect(done.stdout).toMatch(/done 0, failed 0, skipped 7 of 7/);
    expect((await lines(out)).length).toBe(7);
  });

  it('refuses batch misuse in one line', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['score', inputs[0], inputs[1], '--model', bundle],
        /several inputs: batch scoring writes .* add --out/,
      ],
      [
        ['score', inDir, '--model', bundle],
        /in: a folder of 7 videos or frame folders, not a frame folder; .* add --out/,
      ],
      [
        ['score', inDir, '--model', bundle, '--out', path.join(tmp, 'y.jsonl'), '--shard', '3/3'],
        /--shard must be I\/N/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await mcore(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    // Resuming a file of another shard is refused, naming both shards.
    const r = await mcore(
      'score',
      inDir,
      '--model',
      bundle,
      '--out',
      path.join(tmp, 'results-0.jsonl'),
      '--shard',
      '1/3',
      '--resume',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /results-0\.jsonl: holds results of shard 0\/3 over 7 inputs .* this run is shard 1\/3/,
    );
    const k8s = await mcoreWithEnv(
      { JOB_COMPLETION_INDEX: '0' },
      'score',
      inDir,
      '--model',
      bundle,
      '--out',
      path.join(tmp, 'z.jsonl'),
    );
    expect(k8s.code).toBe(2);
    expect(k8s.stderr).toMatch(/JOB_COMPLETION_INDEX=0 is set .* pass --shards N/);
  });
});
