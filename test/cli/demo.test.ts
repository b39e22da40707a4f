import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { DEMO_BACKBONE, DEMO_METHODS, PRETRAIN_RECORD } from '../../src/verbs/demo.ts';
import { mcore } from '../helpers/cli.ts';

describe('mcore demo --quick', () => {
  // One run (about 20 s on 2 cores): every method trains and evaluates, the files are written, and the
  // quick settings still learn (floors well below the measured seed-3 values: mcore-head SRCC 0.81,
  // segmenter AIoU@0.5 100 %).
  it('trains every method, writes results.json, the report and a bundle, above a quality floor', {
    timeout: 300_000,
  }, async () => {
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'mcore-demo-')), 'demo');
    const r = await mcore('demo', '--quick', '--seed', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /method\s+SRCC\s+SRCC dn\s+SRCC no-dn\s+within-type\s+R-l2 x100\s+AIoU@0\.5 %\s+AIoU@0\.75 %/,
    );
    expect(r.stdout).toMatch(/\n\(type-mean\)\s+\d\.\d{4}/);
    expect(r.stdout).toMatch(/\n\(ridge\)\s+-?\d\.\d{4}/);
    const a = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'));
    // Every warning of results.json is printed, one line each.
    for (const [name, d] of Object.entries(a.details) as [string, { warnings: string[] }][])
      for (const w of d.warnings) expect(r.stdout).toContain(`warning: ${name}: ${w}`);
    expect(await readFile(path.join(out, 'report.html'), 'utf8')).toContain('(type-mean predictor)');
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
    expect(existsSync(path.join(out, 'bundle', 'manifest.json'))).toBe(true);
    expect(Object.keys(a.methods)).toEqual(DEMO_METHODS);
    for (const m of Object.values(a.methods) as { srcc: number; srccDn: number; rl2: number }[]) {
      expect(Number.isFinite(m.srcc)).toBe(true);
      expect(m.srccDn).toBe(m.srcc); // the demo's protocol is dn
      expect(m.rl2).toBeGreaterThan(0);
    }
    expect(a.references.ridge.input).toBe('pixels');
    expect(a.references.ridge.dims).toBe(384);
    expect(a.seed).toBe(3);
    expect(a.methods['mcore-head'].srcc).toBeGreaterThan(0.6);
    expect(a.methods.mcore.aiou50).toBeGreaterThanOrEqual(90); // percent
  });
});

describe('the shipped demo backbone', () => {
  it('was made by the committed recipe (PRETRAIN_RECORD) and holds exactly the backbone parameters', async () => {
    const { tensors, metadata } = await readSafetensors(DEMO_BACKBONE);
    expect(metadata.generator).toBe('scripts/pretrain-backbone.ts');
    expect(metadata.dataset).toBe(PRETRAIN_RECORD.dataset);
    // Resolved again, as a run's stored config is read: fields added since get their defaults.
    expect(resolveConfig(JSON.parse(metadata.config))).toEqual(resolveConfig(PRETRAIN_RECORD.config));
    expect(metadata.epochs).toBe(String(PRETRAIN_RECORD.config.train.epochs));
    const specs = backboneSpecs(PRETRAIN_RECORD.config.model.backbone, 'backbone');
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(specs).sort());
  });
});

describe('mcore demo --methods / --backbone', () => {
  it('runs a subset of the methods from given backbone weights, and refuses a subset without mcore', async () => {
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'mcore-demo-')), 'demo');
    const r = await mcore('demo', '--quick', '--methods', 'mcore', '--backbone', DEMO_BACKBONE, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'));
    expect(Object.keys(results.methods)).toEqual(['mcore']);
    expect(results.config.backbone).toBe(DEMO_BACKBONE);
    const bad = await mcore('demo', '--quick', '--methods', 'core,nope', '--out', out);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/demo methods: unknown nope; choose from mcore, .*mcore included/);
  });
});
