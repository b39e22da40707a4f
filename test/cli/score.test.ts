import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { exportFrameFolders, exportMp4 } from '../../src/data/export.ts';
import { openSynthDive } from '../../src/data/open.ts';
import { encodeMp4 } from '../../src/data/video.ts';
import { lockBundle } from '../../src/score/bundle.ts';
import { trainRun } from '../../src/verbs/run.ts';
import { VERSION } from '../../src/version.ts';
import { mcore, mcoreWithEnv } from '../helpers/cli.ts';
import { grey } from '../helpers/frames.ts';
import { markItems } from '../helpers/vega-svg.ts';

let tmp: string;
let bundle: string;
let folder: string;
let mp4: string;
let run: string;

beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-score-'));
  const config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: 32 },
    train: { epochs: 1 },
  });
  run = path.join(tmp, 'run');
  await trainRun({ dataset: 'synthdive:seed=1,clips=36,size=32', config }, { out: run, resume: false });
  const ds = openSynthDive({ seed: 1, clips: 36, size: 32 });
  await exportFrameFolders(ds, path.join(tmp, 'frames'), { keys: ['synthdive-0001'] });
  await exportMp4(ds, path.join(tmp, 'mp4'), { keys: ['synthdive-0001'] });
  folder = path.join(tmp, 'frames', 'synthdive', '1');
  mp4 = path.join(tmp, 'mp4', 'synthdive', '1.mp4');
  bundle = path.join(tmp, 'bundle');
  const r = await mcore('export', '--run', run, '--out', bundle);
  expect(r.stderr).toMatch(/exemplars 36\/36/);
  expect(r.code).toBe(0);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('mcore score', () => {
  it('prints one JSON object with the score, stages, per-stage deltas and exemplars', async () => {
    const r = await mcore('score', mp4, '--model', bundle, '--json', '--exemplars', '4');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(Object.keys(j).sort()).toEqual(
      [
        'delta',
        'exemplars',
        'input',
        'perStage',
        'protocol',
        'score',
        'stages',
        'timings',
        'transitions',
        'warnings',
      ].sort(),
    );
    expect(j.exemplars).toHaveLength(4);
    expect(j.stages.map((s: { name: string }) => s.name)).toEqual(['take-off', 'flight', 'entry']);
    expect(Object.keys(j.stages[0]).sort()).toEqual([
      'end',
      'endSec',
      'name',
      'sourceEnd',
      'sourceStart',
      'start',
      'startSec',
    ]);
    expect(j.perStage[2].deltas).toHaveLength(4);
    expect(j.score).toBeCloseTo(
      j.exemplars.reduce((a: number, e: { score: number; delta: number }) => a + e.score + e.delta, 0) / 4,
      9,
    );
  });

  it('--fast-decode scores the video from frames decoded without the deblocking filter', async () => {
    const args = ['score', mp4, '--model', bundle, '--json', '--exemplars', '4'];
    const plain = JSON.parse((await mcore(...args)).stdout);
    const r = await mcore(...args, '--fast-decode');
    expect(r.code).toBe(0);
    const fast = JSON.parse(r.stdout);
    const keys = (j: { exemplars: { key: string }[] }) => j.exemplars.map((e) => e.key);
    expect(keys(fast)).toEqual(keys(plain));
    // The frames differ a little (the option reached the decoder), the score hardly.
    expect(fast.score).not.toBe(plain.score);
    expect(Math.abs(fast.score - plain.score)).toBeLessThan(0.01 * Math.abs(plain.score));
  });

  it('prints a table and writes a self-contained HTML report', async () => {
    const report = path.join(tmp, 'report.html');
    const r = await mcore('score', folder, '--model', bundle, '--action-type', '405c', '--report', report);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^score \d+\.\d\d {2}\(mean over 2 exemplar\(s\) of type 405c/);
    expect(r.stdout).toMatch(/take-off\s+0-\d+\s+0-\d+\s+-\s+[+-]\d\.\d{3}/);
    expect(r.stderr).toBe(
      "mcore: warning: only 2 exemplar(s) of action type '405c' in the bundle (asked for 10)\n",
    );
    const html = await readFile(report, 'utf8');
    // The charts (their numbers: test/score/scorer.test.ts): 3 stages x 2 exemplars, 3 means, 3 stage bars.
    expect(markItems(html, 'deltaBars')).toHaveLength(3 * 2);
    expect(markItems(html, 'deltaMeans')).toHaveLength(3);
    expect(markItems(html, 'stageBars')).toHaveLength(3);
  });

  it('refuses bad input with one line and exit code 2', async () => {
    const text = path.join(tmp, 'notes.mp4');
    await writeFile(text, 'this is not a video\n'.repeat(50));
    const bytes = await readFile(mp4);
    const truncated = path.join(tmp, 'truncated.mp4');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    // Index at the end (no faststart), cut in half: the moov atom is gone, nothing is decodable.
    const tailIndex = path.join(tmp, 'tail-index.mp4');
    await encodeMp4(
      Array.from({ length: 30 }, (_, i) => grey(32, 32, 8 * i)),
      25,
      tailIndex,
      { faststart: false },
    );
    const noMoov = path.join(tmp, 'no-moov.mp4');
    const tailBytes = await readFile(tailIndex);
    await writeFile(noMoov, tailBytes.subarray(0, tailBytes.length >> 1));
    const newer = path.join(tmp, 'bundle-newer');
    await cp(bundle, newer, { recursive: true });
    const manifest = path.join(newer, 'manifest.json');
    await writeFile(
      manifest,
      (await readFile(manifest, 'utf8')).replace(`"version": "${VERSION}"`, '"version": "97.0.0"'),
    );
    const partial = path.join(tmp, 'bundle-partial');
    await cp(bundle, partial, { recursive: true });
    await rm(path.join(partial, 'backbone.onnx'));
    const cases: [string[], RegExp][] = [
      [[text, '--model', bundle], /notes\.mp4: not a readable video \(ffmpeg: /],
      [
        [truncated, '--model', bundle],
        /truncated\.mp4: the file is truncated or damaged .* pass --allow-damaged/,
      ],
      [
        [noMoov, '--model', bundle, '--allow-damaged'],
        /no-moov\.mp4: moov atom missing .*: the file was cut before its index was written; nothing can be salvaged, even with --allow-damaged/,
      ],
      [
        [path.join(tmp, 'missing.mp4'), '--model', bundle],
        /missing\.mp4: no such video file or frame folder/,
      ],
      [
        [folder, '--model', bundle, '--action-type', '999z'],
        /action type '999z' has no exemplars .*\(known: 103b, /,
      ],
      [[folder, '--model', newer], /written by mcore 97\.0\.0 and this is mcore \d+\.\d+\.\d+/],
      [[folder, '--model', partial], /incomplete scoring bundle, missing backbone\.onnx/],
      [[folder, '--model', tmp], /not a scoring bundle/],
      [[folder, '--model', bundle, '--exemplars', '0'], /--exemplars must be an integer >= 1, got '0'/],
    ];
    for (const [args, message] of cases) {
      const r = await mcore('score', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    const noRun = await mcore('export', '--run', path.join(tmp, 'no-run'), '--out', path.join(tmp, 'b2'));
    expect(noRun.code).toBe(2);
    expect(noRun.stderr).toMatch(/no-run\/checkpoint\.json: no checkpoint found; train first/);
    const damaged = await mcore('score', truncated, '--model', bundle, '--allow-damaged', '--json');
    expect(damaged.code).toBe(0);
    expect(JSON.parse(damaged.stdout).warnings.join(' ')).toMatch(/truncated or damaged/);
  });

  it('replaces a bundle as a whole: a killed, refused or full-disk export leaves the old one whole', async () => {
    const parent = await mkdtemp(path.join(tmp, 'swap-'));
    const target = path.join(parent, 'bundle');
    await cp(bundle, target, { recursive: true });
    const manifest0 = await readFile(path.join(target, 'manifest.json'), 'utf8');
    const exportTo = (env: Record<string, string>) =>
      mcoreWithEnv(env, 'export', '--run', run, '--out', target);
    const scoreWith = (model: string) => mcore('score', mp4, '--model', model, '--json', '--exemplars', '4');
    const score0 = JSON.parse((await scoreWith(target)).stdout).score;

    // Killed while writing the new files (4th atomic write): the old bundle is untouched and scores.
    const a = await exportTo({ MCORE_TEST_CRASH_AT: 'atomic:before-rename:4' });
    expect(a.signal).toBe('SIGKILL');
    expect(await readFile(path.join(target, 'manifest.json'), 'utf8')).toBe(manifest0);
    expect(JSON.parse((await scoreWith(target)).stdout).score).toBe(score0);

    // Disk full while writing the exemplar bank: exit 2 naming the file; the old bundle is untouched.
    const b = await exportTo({ MCORE_TEST_FAIL_WRITE: 'ENOSPC:exemplars.safetensors' });
    expect(b.code, b.stderr).toBe(2);
    const line = b.stderr.split('\n').filter((l) => l.startsWith('mcore:'));
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(
      /^mcore: cannot write .*exemplars\.safetensors: no space left on the device.*\(ENOSPC\); the scoring bundle in .*swap-.*\/bundle is unchanged$/,
    );
    expect(await readFile(path.join(target, 'manifest.json'), 'utf8')).toBe(manifest0);

    // Another export holds the bundle: refused at once, in one line.
    const lock = await lockBundle(target);
    const c = await exportTo({});
    await lock.release();
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(
      new RegExp(`^mcore: the bundle ${target} is in use by another mcore process \\(pid ${process.pid} `),
    );
    expect(await readFile(path.join(target, 'manifest.json'), 'utf8')).toBe(manifest0);

    // Killed between moving the old bundle aside and moving the new one in: nothing loads at the name,
    // and the message points to the intact old bundle.
    const d = await exportTo({ MCORE_TEST_CRASH_AT: 'bundle:swap' });
    expect(d.signal).toBe('SIGKILL');
    const aside = (await readdir(parent)).filter((n) => n.startsWith('.bundle.old-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(path.join(parent, aside[0], 'manifest.json'), 'utf8')).toBe(manifest0);
    const e = await scoreWith(target);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(
      /no bundle here; an export was interrupted while replacing it, and the previous bundle is intact in .*\.bundle\.old-/,
    );

    // The next export completes and cleans up what the killed ones left.
    const f = await exportTo({});
    expect(f.code, f.stderr).toBe(0);
    expect(await readdir(parent)).toEqual(['bundle']);
    expect(await readFile(path.join(target, 'manifest.json'), 'utf8')).not.toBe(manifest0);
    expect(JSON.parse((await scoreWith(target)).stdout).score).toBe(score0);
  });
});
