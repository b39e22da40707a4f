import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { mcoreMethod } from '../../src/methods/mcore-method.ts';
import { disposeParams, initParams, type Params } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState } from '../../src/train/adam.ts';
import { readCheckpointInfo, saveCheckpoint } from '../../src/train/checkpoint.ts';
import { RUN_LOCK, RunFolder, readRunCheckpoint } from '../../src/train/run-folder.ts';
import type { TrainState } from '../../src/train/trainer.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

const cfg = resolveConfig({ variant: 'mcore-tiny', model: { frames: 8, decoder: { layers: 1 } } });
const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss, scoreScale: 10 });
let params: Params;

beforeAll(async () => {
  await useBackend('wasm');
  params = initParams(method.specs, createRng(1));
});
afterAll(() => disposeParams(params));

function state(epoch: number): TrainState {
  const history = Array.from({ length: epoch }, (_, e) => ({
    epoch: e,
    loss: 1 / (e + 1),
    terms: {},
    seconds: 1,
  }));
  return { epoch, adam: createAdamState(), history };
}

const record = { dataset: 'synthdive:clips=20', config: cfg };

async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

describe('saveCheckpoint', () => {
  it('never deletes what a foreign checkpoint.json names outside ckpt-NNNN folders of the run', async () => {
    for (const folder of ['../x', '', '.', 'ckpt-0001/../../x', '/tmp', 'x', '..']) {
      const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-ckpt-'));
      const run = path.join(base, 'run');
      const x = path.join(base, 'x');
      await mkdir(x);
      await writeFile(path.join(x, 'precious.txt'), 'keep me');
      await mkdir(path.join(run, 'x'), { recursive: true });
      await writeFile(path.join(run, 'x', 'mine.txt'), 'keep me too');
      await writeFile(path.join(run, 'checkpoint.json'), JSON.stringify({ folder, epoch: 9 }));
      await saveCheckpoint(run, params, method.specs, state(1), record);
      expect(await readFile(path.join(x, 'precious.txt'), 'utf8'), folder).toBe('keep me');
      expect(await tree(run), folder).toEqual([
        'checkpoint.json',
        'ckpt-0001',
        'ckpt-0001/checkpoint.json',
        'ckpt-0001/optimizer.safetensors',
        'ckpt-0001/weights.safetensors',
        'x',
        'x/mine.txt',
      ]);
    }
  });

  it('keeps the latest checkpoint only: removes older ckpt-NNNN folders, not links or other names', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-ckpt-'));
    const run = path.join(base, 'run');
    const outside = path.join(base, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'a.txt'), 'a');
    await mkdir(path.join(run, 'ckpt-0007'), { recursive: true }); // left by a killed run
    await mkdir(path.join(run, 'ckpt-12'));
    await symlink(outside, path.join(run, 'ckpt-0009'));
    await saveCheckpoint(run, params, method.specs, state(1), record);
    await saveCheckpoint(run, params, method.specs, state(2), record);
    expect(await readdir(run)).toEqual(['checkpoint.json', 'ckpt-0002', 'ckpt-0009', 'ckpt-12'].sort());
    expect(await readFile(path.join(outside, 'a.txt'), 'utf8')).toBe('a');
    expect((await readCheckpointInfo(run)).folder).toBe('ckpt-0002');
  });
});

describe('readCheckpointInfo', () => {
  it('names the file and the field at fault, and which checkpoint --resume could use', async () => {
    const run = await mkdtemp(path.join(os.tmpdir(), 'mcore-ckpt-'));
    await saveCheckpoint(run, params, method.specs, state(1), record);
    const good = JSON.parse(await readFile(path.join(run, 'checkpoint.json'), 'utf8'));
    const file = path.join(run, 'checkpoint.json');
    const hint = `the newest complete checkpoint is ${path.join(run, 'ckpt-0001')} (epoch 1): to resume from it, copy ${path.join(run, 'ckpt-0001', 'checkpoint.json')} to ${file}`;
    const cases: [unknown, string][] = [
      [{ ...good, config: undefined }, 'config: the run config is missing'],
      [{ ...good, history: null }, 'history: '],
      [{ ...good, folder: '../x' }, "folder: expected a folder name 'ckpt-NNNN'"],
      [{ ...good, folder: '' }, "folder: expected a folder name 'ckpt-NNNN'"],
      [{ ...good, history: [{ ...good.history[0], loss: null }] }, 'history.0.loss: '],
      [{ ...good, config: { ...good.config, dataset: 7 } }, 'config.dataset: '],
    ];
    for (const [content, message] of cases) {
      await writeFile(file, JSON.stringify(content));
      await expectMcoreRejection(
        readRunCheckpoint(run),
        'E_INPUT',
        `${file}: not a valid checkpoint record (`,
        message,
        hint,
      );
    }
    await writeFile(file, '{"folder": "ckpt-00');
    await expectMcoreRejection(readCheckpointInfo(run), 'E_INPUT', 'not valid JSON', hint);
    const empty = await mkdtemp(path.join(os.tmpdir(), 'mcore-ckpt-'));
    await expectMcoreRejection(readCheckpointInfo(empty), 'E_INPUT', 'no checkpoint found; train first');
  });
});

describe('RunFolder', () => {
  it('refuses a file, a non-empty folder without resume or overwrite, and a second holder', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-runfolder-'));
    const file = path.join(base, 'file');
    await writeFile(file, 'x');
    await expectMcoreRejection(
      RunFolder.open(file, { resume: false }),
      'E_INPUT',
      `${file}: is a file, not a folder`,
    );

    const run = path.join(base, 'run');
    const a = await RunFolder.open(run, { resume: false });
    await expectMcoreRejection(
      RunFolder.open(run, { resume: false }),
      'E_BUSY',
      `the run folder ${run} is in use`,
    );
    await a.saveEpoch(params, method.specs, state(1), record);
    await a.release();
    expect(await readdir(run)).toEqual(['checkpoint.json', 'ckpt-0001', 'log.jsonl']);

    await writeFile(path.join(run, 'notes.txt'), 'mine');
    await expectMcoreRejection(
      RunFolder.open(run, { resume: false }),
      'E_INPUT',
      `${run}: the run folder is not empty (checkpoint.json, ckpt-0001, log.jsonl, notes.txt); continue its run with --resume`,
      '--overwrite',
    );
    expect(await readdir(run)).toEqual(['checkpoint.json', 'ckpt-0001', 'log.jsonl', 'notes.txt']);
    await expectMcoreRejection(
      RunFolder.open(run, { resume: true, overwrite: true }),
      'E_INPUT',
      'exclude each other',
    );

    const b = await RunFolder.open(run, { resume: false, overwrite: true });
    expect((await readdir(run)).sort()).toEqual([RUN_LOCK, 'notes.txt']);
    await b.release();
    expect(await readdir(run)).toEqual(['notes.txt']);
  });

  it('reports a full disk as E_IO naming the path and the last good checkpoint, which stays usable', async () => {
    const run = path.join(await mkdtemp(path.join(os.tmpdir(), 'mcore-runfolder-')), 'run');
    const f = await RunFolder.open(run, { resume: false });
    await f.saveEpoch(params, method.specs, state(1), record);
    process.env.MCORE_TEST_FAIL_WRITE = 'ENOSPC:checkpoint.json';
    try {
      await expectMcoreRejection(
        f.saveEpoch(params, method.specs, state(2), record),
        'E_IO',
        'no space left on the device',
        '(ENOSPC)',
        `the last good checkpoint, ${path.join(run, 'ckpt-0001')} (epoch 1), is intact`,
      );
    } finally {
      delete process.env.MCORE_TEST_FAIL_WRITE;
      await f.release();
    }
    // The half-written ckpt-0002 is gone; checkpoint.json still names ckpt-0001, which loads.
    expect(await readdir(run)).toEqual(['checkpoint.json', 'ckpt-0001', 'log.jsonl']);
    expect((await readRunCheckpoint(run)).epoch).toBe(1);
  });
});
