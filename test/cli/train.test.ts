import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mcore, mcoreIn } from '../helpers/cli.ts';

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
    const r = JSON.parse(e.stdout.trim().split('\n').pop()!);
    expect(Object.keys(r.metrics).sort()).toEqual([
      'aiou50',
      'aiou75',
      'mse',
      'rl2',
      'srcc',
      'srccDn',
      'srccNoDn',
      'withinTypeSrcc',
    ]);
    expect(r.metrics.rl2).toBeGreaterThan(0);
    // AIoU in percent, the unit of the CLI table and the README
    expect(r.metrics.aiou50 === null || (r.metrics.aiou50 >= 0 && r.metrics.aiou50 <= 100)).toBe(true);
    expect(Number.isInteger(Math.round(r.metrics.aiou50 * 40) / 40)).toBe(true);
    // The default protocol is no-dn; its SRCC is the headline one
    expect(r.dn).toBe(false);
    expect(r.metrics.srccNoDn).toBe(r.metrics.srcc);
    expect(r.file).toBe(path.join(out, 'eval-no-dn.json'));
    expect(Object.keys(r.references)).toEqual(['typeMean', 'ridge']);
    expect(r.references.ridge.input).toBe('pixels');
    expect(Array.isArray(r.warnings)).toBe(true);
    // A 1-epoch model is warned about, in the JSON and on stderr.
    expect(r.warnings.length).toBeGreaterThan(0);
    expect(e.stderr).toContain(`mcore: warning: ${r.warnings[0]}`);
    // The text output: the table with the reference rows, the warnings, the file.
    const text = await mcore('eval', '--run', out, '--exemplars', '3', '--dn');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^protocol: dn \(3 exemplars of the query's action type\)/);
    expect(text.stdout).toMatch(
      /method\s+SRCC\s+SRCC dn\s+SRCC no-dn\s+within-type\s+R-l2 x100\s+AIoU@0\.5 %\s+AIoU@0\.75 %/,
    );
    expect(text.stdout).toMatch(/\n\(type-mean\)\s/);
    expect(text.stdout).toMatch(/\n\(ridge\)\s/);
    expect(text.stdout).toMatch(/\nwarning: /);
    expect(text.stdout).toContain(`wrote ${path.join(out, 'eval-dn.json')}`);
    // One file per protocol: the no-dn result is still there, and both agree on both SRCCs.
    const dn = JSON.parse(await readFile(path.join(out, 'eval-dn.json'), 'utf8'));
    const noDn = JSON.parse(await readFile(path.join(out, 'eval-no-dn.json'), 'utf8'));
    expect([dn.dn, noDn.dn]).toEqual([true, false]);
    expect(dn.metrics.srccNoDn).toBe(noDn.metrics.srcc);
    expect(noDn.metrics.srccDn).toBe(dn.metrics.srcc);
    expect(dn.predictions).toHaveLength(noDn.predictions.length);
  });

  it('eval and score --help state the same default protocol', async () => {
    const e = await mcore('eval', '--help');
    const s = await mcore('score', '--help');
    const line = 'default protocol: exemplars from the whole training split, the action type unused';
    expect(e.stdout.replace(/\s+/g, ' ')).toContain(line);
    expect(s.stdout.replace(/\s+/g, ' ')).toContain(line);
  });

  it('--method core and regression train with the same trainer and evaluate; export refuses them', async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-methods-'));
    const sets = ['model.frames=8', 'train.epochs=1', 'train.batchPairs=4'].flatMap((s) => ['--set', s]);
    for (const method of ['core', 'regression']) {
      const out = path.join(base, method);
      const t = await mcore(
        'train',
        '--dataset',
        'synthdive:seed=2,clips=40,size=32',
        '--out',
        out,
        '--method',
        method,
        ...sets,
      );
      expect(t.code, t.stderr).toBe(0);
      const info = JSON.parse(await readFile(path.join(out, 'checkpoint.json'), 'utf8'));
      expect(info.config.method).toBe(method);
      const e = await mcore('eval', '--run', out, '--exemplars', '3', '--json');
      expect(e.code, e.stderr).toBe(0);
      const r = JSON.parse(e.stdout.trim().split('\n').pop()!);
      expect(Number.isFinite(r.metrics.srcc)).toBe(true);
      expect(r.metrics.aiou50).toBeNull(); // no segmentation
      const saved = JSON.parse(await readFile(r.file, 'utf8'));
      expect(saved.method).toBe(method);
      if (method === 'regression') expect(r.metrics.srccDn).toBe(r.metrics.srccNoDn); // no exemplars
    }
    const x = await mcore('export', '--run', path.join(base, 'core'), '--out', path.join(base, 'bundle'));
    expect(x.code).toBe(2);
    expect(x.stderr).toMatch(/a 'core' run cannot be exported; scoring bundles hold MCoRe models/);
    const bad = await mcore(
      'train',
      '--dataset',
      'synthdive',
      '--out',
      path.join(base, 'x'),
      '--method',
      'usdl',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--method must be one of mcore, core, regression, got 'usdl'/);
  });

  it('a run records absolute paths: eval --run /abs/RUN works from any directory, and finds its feature cache', async () => {
    const data = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-paths-'));
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-elsewhere-'));
    const x = await mcore('data', 'export', 'synthdive:seed=6,clips=40,size=32', '--out', data);
    expect(x.code, x.stderr).toBe(0);
    const sets = [
      'variant=mcore-tiny',
      'model.frames=8',
      'train.epochs=1',
      'train.batchPairs=8',
      'model.decoder.layers=1',
    ].flatMap((s) => ['--set', s]);
    // Relative dataset, output and cache paths, resolved in `data`.
    const t = await mcoreIn(data, 'train', '--dataset', 'manifest.json', '--out', 'run', ...sets);
    expect(t.code, t.stderr).toBe(0);
    const info = JSON.parse(await readFile(path.join(data, 'run', 'checkpoint.json'), 'utf8'));
    expect(info.config.dataset).toBe(path.join(data, 'manifest.json'));
    const e = await mcoreIn(elsewhere, 'eval', '--run', path.join(data, 'run'), '--exemplars', '2', '--json');
    expect(e.code, e.stderr).toBe(0);
    // Head-only from the end-to-end run's backbone, features cached in data/cache.
    const h = await mcoreIn(
      data,
      'train',
      '--dataset',
      'manifest.json',
      '--out',
      'head',
      '--backbone',
      `run/${info.folder}/weights.safetensors`,
      '--cache',
      'cache',
      '--set',
      'train.mode=head-only',
      ...sets,
    );
    expect(h.code, h.stderr).toBe(0);
    const head = JSON.parse(await readFile(path.join(data, 'head', 'checkpoint.json'), 'utf8'));
    expect(head.config.featureCache).toBe(path.join(data, 'cache'));
    expect(head.config.backboneWeights).toBe(path.join(data, 'run', info.folder, 'weights.safetensors'));
    const he = await mcoreIn(
      elsewhere,
      'eval',
      '--run',
      path.join(data, 'head'),
      '--exemplars',
      '2',
      '--json',
    );
    expect(he.code, he.stderr).toBe(0);
    // read from the recorded cache: still one feature set there, none in the current directory
    expect(await readdir(path.join(data, 'cache'))).toHaveLength(1);
    expect(existsSync(path.join(elsewhere, '.cache'))).toBe(false);
    expect(JSON.parse(he.stdout.trim().split('\n').pop()!).references.ridge.input).toBe('features');
    // --cache elsewhere: the features are computed there, on request.
    const other = path.join(elsewhere, 'other-cache');
    const hc = await mcoreIn(elsewhere, 'eval', '--run', path.join(data, 'head'), '--cache', other, '--json');
    expect(hc.code, hc.stderr).toBe(0);
    expect(existsSync(other)).toBe(true);
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
      /^model mcore-regnety002: 96 frames of 112x112 px, stages from the dataset \(manifest data;/,
    );
    expect(q.stderr).toMatch(
      /loss\.qualityWeight=1 needs the hidden stage qualities .*\(only SynthDive has them\); set loss\.qualityWeight=0/,
    );
  });
});
