import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mcore } from '../helpers/cli.ts';

describe('mcore train / eval / demo arguments', () => {
  it('refuses bad arguments with one clear line and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--out', '/tmp/x'], /required option '--dataset <spec>'/],
      [['train', '--dataset', 'imagenet', '--out', '/tmp/x'], /unknown dataset; use 'synthdive/],
      [['train', '--dataset', 'synthdive:clips=many', '--out', '/tmp/x'], /'clips=many' is not key=number/],
      [['train', '--dataset', 'synthdive', '--out', '/tmp/x', '--set', 'train.epochs=-2'], /train\.epochs/],
      [
        ['train', '--dataset', 'synthdive', '--out', '/tmp/x', '--set', 'loss.contrastive=maybe'],
        /loss\.contrastive/,
      ],
      [['eval', '--run', '/nonexistent/run'], /no checkpoint found; train first/],
      [['eval', '--run', '/tmp', '--exemplars', '0'], /--exemplars must be an integer >= 1, got '0'/],
      [
        ['train', '--dataset', 'synthdive', '--out', '/tmp/x', '--frame-cache', '0'],
        /--frame-cache must be a positive/,
      ],
      [['eval', '--run', '/tmp', '--backend', 'gpu'], /--backend must be wasm or cpu, got 'gpu'/],
      [['demo', '--seed', '-1'], /--seed must be an integer >= 0, got '-1'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['data', 'export', 'synthdive', '--out', '/tmp/x', '--split', 'val'], /--split must be train or test/],
    ];
    for (const [args, message] of cases) {
      const r = await mcore(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('trains a tiny run and evaluates it from the command line', async () => {
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-train-')), 'run');
    const sets = ['model.frames=8', 'train.epochs=1', 'train.batchPairs=4', 'model.decoder.layers=1'].flatMap(
      (s) => ['--set', s],
    );
    // A frame cache smaller than the data (40 clips x 8 frames x 32 x 32 x 3 = 1 MB): clips decoded again.
    const t = await mcore(
      'train',
      '--dataset',
      'synthdive:seed=2,clips=40,size=32',
      '--out',
      out,
      '--frame-cache',
      '0.0002',
      ...sets,
    );
    expect(t.stderr).toMatch(/epoch 1\/1/);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/trained 1 epochs/);
    const e = await mcore('eval', '--run', out, '--exemplars', '3', '--json');
    expect(e.code).toBe(0);
    const metrics = JSON.parse(e.stdout.trim().split('\n').pop()!);
    expect(Object.keys(metrics).sort()).toEqual(['aiou50', 'aiou75', 'mse', 'rl2', 'srcc']);
    expect(metrics.rl2).toBeGreaterThan(0);
  });

  it('exports SynthDive clips as frame folders with a manifest the loaders read back', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-export-'));
    const r = await mcore(
      'data',
      'export',
      'synthdive:seed=4,clips=20,size=32',
      '--out',
      out,
      '--keys',
      'synthdive-0001,synthdive-0002',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 2 clips/);
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    const clips = Array.isArray(manifest) ? manifest : manifest.clips;
    expect(clips).toHaveLength(2);
    // A manifest dataset has no hidden stage qualities: L_q is refused before any data is decoded.
    const q = await mcore(
      'train',
      '--dataset',
      path.join(out, 'manifest.json'),
      '--out',
      path.join(out, 'run'),
      '--set',
      'loss.qualityWeight=1',
    );
    expect(q.code).toBe(2);
    // Real data without a variant: the paper's model, said first.
    expect(q.stderr.split('\n')[0]).toMatch(
      /^model mcore-regnety002: 96 frames of 112x112 px, 3 stages \(manifest data;/,
    );
    expect(q.stderr).toMatch(
      /loss\.qualityWeight=1 needs the hidden stage qualities .*\(only SynthDive has them\); set loss\.qualityWeight=0/,
    );
  });
});
