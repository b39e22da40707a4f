/**
 * `mcore export --pth`: a tiny end-to-end run written as the reference's last.pth, read back by
 * `mcore import` bit for bit, and (where Debian's python3-torch is installed) by torch.load into the
 * reference's module trees with strict=True (bench/peer/check_reference_pth.py).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { type RunConfig, resolveConfig } from '../../src/config.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { flattenStateDicts, readTorchCheckpoint } from '../../src/io/torch.ts';
import { sourceName } from '../../src/model/import-map.ts';
import { readCheckpointInfo } from '../../src/train/checkpoint.ts';
import { trainRun } from '../../src/verbs/run.ts';
import { mcore, repoRoot } from '../helpers/cli.ts';

const PYTHON = '/usr/bin/python3';
const hasTorch = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasTorch) {
  console.warn(
    'export-pth.test: torch.load check SKIPPED: /usr/bin/python3 cannot import torch (apt-get install -y python3-torch)',
  );
}

let tmp: string;
let run: string;
let pth: string;
let config: RunConfig;
/** The run's weights: our name -> torch-layout float32 bytes. */
let weights: Record<string, { shape: number[]; bytes: Buffer }>;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-pth-'));
  config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: 32 },
    train: { epochs: 1 },
  });
  run = path.join(tmp, 'run');
  await trainRun({ dataset: 'synthdive:seed=2,clips=12,size=32', config }, { out: run, resume: false });
  pth = path.join(tmp, 'last.pth');
  const r = await mcore('export', '--run', run, '--pth', pth);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(
    /^wrote .*last\.pth: reference checkpoint \(EnhNet_model 24, base_model \d+, psnet_model 10, decoder \d+, regressor_delta 6 keys\)\n$/,
  );
  const info = await readCheckpointInfo(run);
  const st = await readSafetensors(path.join(run, info.folder, 'weights.safetensors'));
  weights = {};
  for (const [name, t] of Object.entries(st.tensors)) {
    const d = t.data as Float32Array;
    weights[name] = { shape: t.shape, bytes: Buffer.from(d.buffer, d.byteOffset, d.byteLength) };
  }
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mcore export --pth', () => {
  it("lays the weights out under the reference's names with module. prefixes and numpy scalars", async () => {
    const ckpt = await readTorchCheckpoint(pth);
    const flat = flattenStateDicts(ckpt, pth);
    expect(Object.keys(flat.scalars).sort()).toEqual(
      ['L2_min', 'RL2_min', 'epoch', 'epoch_best_aqa', 'rho_best'].sort(),
    );
    expect(flat.scalars.epoch).toBe(1);
    expect(flat.scalars.L2_min).toBe(1000);
    for (const [ours, w] of Object.entries(weights)) {
      const t = flat.tensors[sourceName(ours, 'mcore-reference') as string];
      expect(t, ours).toBeDefined();
      expect(t.shape).toEqual(w.shape);
      const d = t.data as Float32Array;
      expect(Buffer.from(d.buffer, d.byteOffset, d.byteLength).equals(w.bytes), ours).toBe(true);
    }
    const bn = Object.keys(flat.tensors).filter((k) => k.endsWith('.num_batches_tracked'));
    expect(bn.length).toBe(Object.keys(weights).filter((k) => k.endsWith('.running_var')).length);
    expect(flat.tensors[bn[0]].dtype).toBe('I64');
    // The zip's members: <archive>/data.pkl first, each storage's data 64-byte aligned, then version.
    const bytes = await readFile(pth);
    const names = execFileSync('unzip', ['-Z1', pth], { encoding: 'utf8' }).trim().split('\n');
    expect(names[0]).toBe('last/data.pkl');
    expect(names[names.length - 1]).toBe('last/version');
    const zi = execFileSync('unzip', ['-t', pth], { encoding: 'utf8' });
    expect(zi).toMatch(/No errors detected/);
    expect(bytes.length).toBeGreaterThan(0);
  });

  it('imports back bit for bit (mcore import)', async () => {
    const model = path.join(tmp, 'model.json');
    await writeFile(model, JSON.stringify(config.model));
    const back = path.join(tmp, 'back.safetensors');
    const r = await mcore('import', pth, '--out', back, '--model', model);
    expect(r.code, r.stderr).toBe(0);
    const st = await readSafetensors(back);
    expect(Object.keys(st.tensors).sort()).toEqual(Object.keys(weights).sort());
    for (const [name, t] of Object.entries(st.tensors)) {
      const d = t.data as Float32Array;
      expect(t.shape).toEqual(weights[name].shape);
      expect(Buffer.from(d.buffer, d.byteOffset, d.byteLength).equals(weights[name].bytes), name).toBe(true);
    }
  });

  it.skipIf(!hasTorch)('torch.load reads it and the reference modules load it with strict=True', async () => {
    const model = path.join(tmp, 'model-py.json');
    await writeFile(model, JSON.stringify(config.model));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        PYTHON,
        [path.join(repoRoot, 'bench', 'peer', 'check_reference_pth.py'), pth, model],
        { maxBuffer: 64 << 20 },
        (err, out, errText) => (err ? reject(new Error(`${err.message}\n${errText}`)) : resolve(out)),
      ),
    );
    const j = JSON.parse(stdout);
    expect(j.entries).toEqual([
      'EnhNet_model',
      'base_model',
      'psnet_model',
      'decoder',
      'regressor_delta',
      'optimizer',
      'epoch',
      'epoch_best_aqa',
      'rho_best',
      'L2_min',
      'RL2_min',
    ]);
    expect(Object.values(j.state_dict_types)).toEqual(Array(5).fill('OrderedDict'));
    expect(j.load_strict).toEqual({
      EnhNet_model: 'ok',
      base_model: 'ok',
      psnet_model: 'ok',
      decoder: 'ok',
      regressor_delta: 'ok',
    });
    expect(j.optimizer).toBe('ok');
    expect(j.param_groups.map((g: { lr: number }) => g.lr)).toEqual([1e-3, 1e-4, 1e-3, 1e-3, 1e-3]);
    expect(j.scalars.rho_best.type).toBe('numpy.float64');
    expect(j.scalars.epoch).toEqual({ type: 'builtins.int', value: 1 });
    for (const [ours, w] of Object.entries(weights)) {
      const theirs = sourceName(ours, 'mcore-reference') as string;
      const dot = theirs.indexOf('.');
      const k = j.keys[theirs.slice(0, dot)][`module.${theirs.slice(dot + 1)}`];
      expect(k, ours).toEqual({ shape: w.shape, dtype: 'torch.float32', sha256: sha(w.bytes) });
    }
  });

  it('refuses export without --out or --pth', async () => {
    const r = await mcore('export', '--run', run);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing to write; give --out BUNDLE .* and\/or --pth FILE/);
  });
});
