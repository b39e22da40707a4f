/**
 * `mcore train` never loses a run: killed at any point (including inside a checkpoint write) or stopped
 * by a full disk, it resumes to the same weights and losses as an uninterrupted run; a second process
 * on the same folder is refused; a folder that holds a run is never silently restarted.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { mcore, mcoreWithEnv, spawnMcore } from '../helpers/cli.ts';

const SETS = [
  'model.frames=8',
  'model.imageSize=32',
  'model.decoder.layers=1',
  'train.epochs=3',
  'train.batchPairs=4',
  'train.seed=11',
].flatMap((s) => ['--set', s]);
const DATASET = ['--dataset', 'synthdive:seed=5,clips=24,size=32'];

let tmp: string;
let reference: string;

/** Weights of a run's latest checkpoint, by name. */
async function weightsOf(run: string): Promise<Record<string, number[]>> {
  const info = JSON.parse(await readFile(path.join(run, 'checkpoint.json'), 'utf8'));
  const { tensors } = await readSafetensors(path.join(run, info.folder, 'weights.safetensors'));
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
}

/** Epoch, loss and loss terms of the history (not the seconds). */
async function historyOf(run: string): Promise<unknown[]> {
  const info = JSON.parse(await readFile(path.join(run, 'checkpoint.json'), 'utf8'));
  return info.history.map((r: { epoch: number; loss: number; terms: unknown }) => [r.epoch, r.loss, r.terms]);
}

async function logEpochs(run: string): Promise<number[]> {
  const text = await readFile(path.join(run, 'log.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).epoch);
}

/** Exit 2 with one `mcore:` line (after any progress lines) matching `message`, and no stack trace. */
function expectOneLine(r: { code: number; stderr: string }, what: string, message: RegExp): void {
  expect(r.code, `${what}: ${r.stderr}`).toBe(2);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('mcore:'));
  expect(errors, what).toHaveLength(1);
  expect(errors[0], what).toMatch(message);
  expect(r.stderr.trimEnd().endsWith(errors[0]), what).toBe(true);
  expect(r.stderr, what).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-train-safety-'));
  reference = path.join(tmp, 'reference');
  const r = await mcore('train', ...DATASET, '--out', reference, ...SETS);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mcore train under faults', () => {
  it('resumes to the same weights and losses after kills inside checkpoint writes and a full disk', async () => {
    const run = path.join(tmp, 'killed');
    const train = (env: Record<string, string>, ...more: string[]) =>
      mcoreWithEnv(env, 'train', ...DATASET, '--out', run, ...SETS, ...more);

    // Killed in the 2nd checkpoint write (weights written, optimizer not): epoch 1's checkpoint stands.
    const a = await train({ MCORE_TEST_CRASH_AT: 'checkpoint:weights:2' });
    expect(a.signal).toBe('SIGKILL');
    expect(JSON.parse(await readFile(path.join(run, 'checkpoint.json'), 'utf8')).epoch).toBe(1);
    expect(await logEpochs(run)).toEqual([0]);

    // Killed after checkpoint.json of epoch 2 was replaced, before the old folder went and the log line.
    const b = await train({ MCORE_TEST_CRASH_AT: 'checkpoint:json:1' }, '--resume');
    expect(b.signal).toBe('SIGKILL');
    expect((await readdir(run)).sort()).toEqual([
      '.mcore-lock',
      'checkpoint.json',
      'ckpt-0001',
      'ckpt-0002',
      'log.jsonl',
    ]);
    expect(await logEpochs(run)).toEqual([0]);

    // Disk full while writing epoch 3's checkpoint: exit 2 naming the file and the good checkpoint.
    const c = await train({ MCORE_TEST_FAIL_WRITE: 'ENOSPC:checkpoint.json:1' }, '--resume');
    expectOneLine(
      c,
      'ENOSPC',
      /^mcore: cannot write .*ckpt-0003\/checkpoint\.json: no space left on the device.*\(ENOSPC\); the last good checkpoint, .*ckpt-0002 \(epoch 2\), is intact: once fixed, continue with 'mcore train \.\.\. --out .* --resume'$/,
    );
    expect(await logEpochs(run)).toEqual([0, 1]); // rebuilt from the checkpoint's history on resume

    // Killed between writing the optimizer's temporary file and its rename.
    const d = await train({ MCORE_TEST_CRASH_AT: 'atomic:before-rename:3' }, '--resume');
    expect(d.signal).toBe('SIGKILL');
    expect((await readdir(path.join(run, 'ckpt-0003'))).some((n) => n.includes('.tmp-'))).toBe(true);

    const e = await train({}, '--resume');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/trained 3 epochs/);
    expect(await weightsOf(run)).toEqual(await weightsOf(reference));
    expect(await historyOf(run)).toEqual(await historyOf(reference));
    expect(await logEpochs(run)).toEqual([0, 1, 2]);
    expect((await readdir(run)).sort()).toEqual(['checkpoint.json', 'ckpt-0003', 'log.jsonl']);
    expect((await readdir(path.join(run, 'ckpt-0003'))).sort()).toEqual([
      'checkpoint.json',
      'optimizer.safetensors',
      'weights.safetensors',
    ]);
  });

  it('refuses a second train on the same folder while the first runs; a killed one leaves no stuck lock', async () => {
    const run = path.join(tmp, 'locked');
    const first = spawnMcore('train', ...DATASET, '--out', run, ...SETS, '--set', 'train.epochs=40');
    // Wait for its first checkpoint.
    for (let i = 0; i < 600; i++) {
      if (await stat(path.join(run, 'checkpoint.json')).catch(() => undefined)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const more of [['--resume'], []]) {
      const second = await mcore(
        'train',
        ...DATASET,
        '--out',
        run,
        ...SETS,
        '--set',
        'train.epochs=40',
        ...more,
      );
      expectOneLine(
        second,
        `second ${more.join(' ')}`,
        new RegExp(`the run folder ${run} is in use by another mcore process \\(pid ${first.pid} on `),
      );
    }
    first.kill('SIGKILL');
    await first.done;
    const lock = JSON.parse(await readFile(path.join(run, '.mcore-lock'), 'utf8'));
    expect(lock.pid).toBe(first.pid); // left behind by the killed process...
    const done = JSON.parse(await readFile(path.join(run, 'checkpoint.json'), 'utf8')).epoch;
    const resumed = await mcore(
      'train',
      ...DATASET,
      '--out',
      run,
      ...SETS,
      '--set',
      `train.epochs=${done + 1}`,
      '--resume',
    );
    expect(resumed.code, resumed.stderr).toBe(0); // ...and taken over, its process being gone
    expect(resumed.stdout).toMatch(new RegExp(`trained ${done + 1} epochs`));
    expect(await readdir(run)).not.toContain('.mcore-lock');
  });

  it('never restarts a run by accident, and refuses broken run folders in one line', async () => {
    const file = path.join(tmp, 'a-file');
    await writeFile(file, 'x');
    const foreign = path.join(tmp, 'foreign');
    const x = path.join(tmp, 'x');
    await mkdir(foreign);
    await mkdir(x);
    await writeFile(path.join(x, 'precious.txt'), 'keep');
    const checkpoint = JSON.parse(await readFile(path.join(reference, 'checkpoint.json'), 'utf8'));
    await writeFile(path.join(foreign, 'checkpoint.json'), JSON.stringify({ ...checkpoint, folder: '../x' }));
    const noConfig = path.join(tmp, 'no-config');
    await mkdir(noConfig);
    await writeFile(
      path.join(noConfig, 'checkpoint.json'),
      JSON.stringify({ ...checkpoint, config: undefined }),
    );
    const nullHistory = path.join(tmp, 'null-history');
    await mkdir(nullHistory);
    await writeFile(
      path.join(nullHistory, 'checkpoint.json'),
      JSON.stringify({ ...checkpoint, history: null }),
    );
    const before = await readFile(path.join(reference, 'checkpoint.json'), 'utf8');
    const cases: [string[], RegExp][] = [
      [
        ['train', ...DATASET, '--out', reference, ...SETS],
        /reference: the run folder is not empty \(checkpoint\.json, ckpt-0003, log\.jsonl\); continue its run with --resume, train into a new folder, or pass --overwrite/,
      ],
      [['train', ...DATASET, '--out', file, ...SETS], /a-file: is a file, not a folder/],
      [['train', ...DATASET, '--out', path.join(file, 'run'), ...SETS], /a-file\/run: .*ENOTDIR/],
      [
        ['train', ...DATASET, '--out', foreign, ...SETS, '--resume'],
        /foreign\/checkpoint\.json: not a valid checkpoint record \(folder: expected a folder name 'ckpt-NNNN'\)/,
      ],
      [
        ['eval', '--run', noConfig],
        /no-config\/checkpoint\.json: not a valid checkpoint record \(config: the run config is missing\)/,
      ],
      [
        ['export', '--run', nullHistory, '--out', path.join(tmp, 'b')],
        /null-history\/checkpoint\.json: .*\(history: /,
      ],
      [
        ['export', '--run', reference, '--out', file],
        /a-file: is a file, not a folder; give a folder for the scoring bundle/,
      ],
      [
        [
          'train',
          ...DATASET,
          '--out',
          path.join(tmp, 'head'),
          ...SETS,
          '--set',
          'train.mode=head-only',
          '--backbone',
          path.join(reference, 'ckpt-0003', 'weights.safetensors'),
          '--cache',
          file,
        ],
        /a-file.*: a file is in the way|a-file.*ENOTDIR/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await mcore(...args);
      expectOneLine(r, args.join(' '), message);
    }
    expect(await readFile(path.join(reference, 'checkpoint.json'), 'utf8')).toBe(before);
    expect(await readFile(path.join(x, 'precious.txt'), 'utf8')).toBe('keep');

    // --overwrite replaces only what the run wrote: the foreign checkpoint.json goes, ../x stays.
    await writeFile(path.join(foreign, 'notes.txt'), 'mine');
    const o = await mcore(
      'train',
      ...DATASET,
      '--out',
      foreign,
      ...SETS,
      '--set',
      'train.epochs=1',
      '--overwrite',
    );
    expect(o.code, o.stderr).toBe(0);
    expect((await readdir(foreign)).sort()).toEqual([
      'checkpoint.json',
      'ckpt-0001',
      'log.jsonl',
      'notes.txt',
    ]);
    expect(await readFile(path.join(x, 'precious.txt'), 'utf8')).toBe('keep');
  });
});
