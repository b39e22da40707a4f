import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.ts';
import { transformClip } from '../../src/data/transforms.ts';
import type { Frame } from '../../src/data/types.ts';
import { featureDim, modelConfig } from '../../src/model/config.ts';
import { compareTokens, mcoreSpecs } from '../../src/model/mcore.ts';
import { disposeParams, initParams, type Params } from '../../src/model/params.ts';
import { stagePool } from '../../src/model/stage-pool.ts';
import { exportScorer } from '../../src/onnx/export.ts';
import { createSession, dispose, type OnnxSession, run } from '../../src/onnx/runtime.ts';
import { createRng, type Rng } from '../../src/rng.ts';
import {
  BUNDLE_FILES,
  type ExemplarBank,
  lockBundle,
  makeManifest,
  readBundle,
  squareTransform,
  writeBundle,
} from '../../src/score/bundle.ts';
import { poolStages, toModelInput } from '../../src/score/encode.ts';
import { bundleGraphs } from '../../src/score/export.ts';
import { chooseExemplars, loadBundle } from '../../src/score/scorer.ts';
import { scorerWithTokenDeltas, TOKEN_DELTA } from '../../src/score/scorer-graph.ts';
import { VERSION } from '../../src/version.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

const cfg = { ...modelConfig('mcore-tiny'), frames: 8 };
const K = cfg.stages;
const L = cfg.tokensPerStage;
const D = featureDim(cfg);

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** Spec'd init, with the decoder's weights scaled up so attention and GELU are far from trivial. */
function randomParams(seed: number): Params {
  const specs = mcoreSpecs(cfg, { backbone: true });
  const params = initParams(specs, createRng(seed));
  for (const name of Object.keys(params)) {
    if (name.startsWith('decoder.') && specs[name].layout === 'linear') {
      const scaled = tf.mul(params[name], 3);
      params[name].dispose();
      params[name] = scaled;
    }
  }
  return params;
}

let tmp: string;
let params: Params;
beforeAll(async () => {
  await useBackend('wasm');
  tmp = await mkdtemp(path.join(tmpdir(), 'mcore-bundle-'));
  params = randomParams(3);
});
afterAll(async () => {
  disposeParams(params);
  await rm(tmp, { recursive: true, force: true });
});

describe('scorer graph with token_delta', () => {
  let scorer: OnnxSession;
  beforeAll(async () => {
    scorer = await createSession(scorerWithTokenDeltas(exportScorer(params, cfg)));
  });
  afterAll(async () => dispose(scorer));

  it('exposes the per-token values whose mean is delta, and delta is still compareTokens', async () => {
    const N = 3;
    const rng = createRng(11);
    const q = randn(rng, N * K * L * D);
    const e = randn(rng, N * K * L * D);
    const out = await run(scorer, {
      q_tokens: { data: q, dims: [N, K * L, D] },
      e_tokens: { data: e, dims: [N, K * L, D] },
    });
    expect(out[TOKEN_DELTA].dims).toEqual([N, K * L]);
    const tfDelta = tf.tidy(() =>
      compareTokens(params, cfg, tf.tensor3d(q, [N, K * L, D]), tf.tensor3d(e, [N, K * L, D])).dataSync(),
    );
    for (let n = 0; n < N; n++) {
      const row = out[TOKEN_DELTA].data.subarray(n * K * L, (n + 1) * K * L);
      const mean = row.reduce((a, b) => a + b, 0) / (K * L);
      expect(Math.abs(mean - out.delta.data[n])).toBeLessThan(1e-6);
      expect(Math.abs(out.delta.data[n] - tfDelta[n])).toBeLessThan(1e-5);
    }
    // The values differ across tokens (a constant output would make per-stage deltas meaningless).
    const first = out[TOKEN_DELTA].data;
    expect(Math.max(...first) - Math.min(...first)).toBeGreaterThan(1e-3);
  });

  it("a stage's mean token delta is the scorer's delta on that stage alone (every stage a copy of it)", async () => {
    const N = 2;
    const rng = createRng(12);
    const q = randn(rng, N * K * L * D);
    const e = randn(rng, N * K * L * D);
    const full = await run(scorer, {
      q_tokens: { data: q, dims: [N, K * L, D] },
      e_tokens: { data: e, dims: [N, K * L, D] },
    });
    for (let s = 0; s < K; s++) {
      const tile = (x: Float32Array) => {
        const out = new Float32Array(x.length);
        for (let n = 0; n < N; n++) {
          const block = x.subarray((n * K + s) * L * D, (n * K + s + 1) * L * D);
          for (let k = 0; k < K; k++) out.set(block, (n * K + k) * L * D);
        }
        return out;
      };
      const alone = await run(scorer, {
        q_tokens: { data: tile(q), dims: [N, K * L, D] },
        e_tokens: { data: tile(e), dims: [N, K * L, D] },
      });
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let j = 0; j < L; j++) sum += full[TOKEN_DELTA].data[n * K * L + s * L + j];
        expect(Math.abs(sum / L - alone.delta.data[n])).toBeLessThan(1e-5);
      }
    }
  });

  it('is idempotent and refuses a graph that is not a scorer', () => {
    const once = scorerWithTokenDeltas(exportScorer(params, cfg));
    expect(scorerWithTokenDeltas(once)).toBe(once);
    const graphs = bundleGraphs(params, cfg);
    expect(() => scorerWithTokenDeltas(graphs.backbone)).toThrow(/expected the exported scorer/);
  });
});

describe('model input and stage pooling', () => {
  it('toModelInput is the test-mode transformClip (centre crop, ImageNet), laid out NCHW', () => {
    const rng = createRng(5);
    const w = 10;
    const h = 7;
    const S = 5;
    const frames: Frame[] = Array.from({ length: 3 }, () => ({
      width: w,
      height: h,
      data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)),
    }));
    const t = { ...squareTransform(S), resize: { width: w, height: h, fit: 'squeeze' as const } };
    const nchw = toModelInput(frames, t);
    const nhwc = transformClip(frames, { crop: S, train: false, flipProb: 0 }, rng);
    expect(nchw.length).toBe(nhwc.length);
    for (let i = 0; i < 3; i++)
      for (let y = 0; y < S; y++)
        for (let x = 0; x < S; x++)
          for (let c = 0; c < 3; c++) {
            expect(nchw[((i * 3 + c) * S + y) * S + x]).toBe(nhwc[((i * S + y) * S + x) * 3 + c]);
          }
    // Pixel (0, 0) of the crop is source pixel (2, 1): offsets floor((10-5)/2), floor((7-5)/2).
    const v = frames[0].data[(1 * w + 2) * 3];
    expect(nchw[0]).toBeCloseTo((v / 255 - 0.485) / 0.229, 6);
    expect(() => toModelInput([{ width: 4, height: 4, data: new Uint8Array(48) }], t)).toThrow(
      /expects 10x7/,
    );
  });

  it('poolStages resamples each stage with aligned corners (hand-computed) and equals stagePool', () => {
    // T = 4 frames of D = 1 with values 0..3; transitions [1, 2]: stages [0], [1], [2, 3].
    const f = Float32Array.of(0, 1, 2, 3);
    expect([...poolStages(f, { V: 1, T: 4, D: 1 }, [[1, 2]], 2)]).toEqual([0, 0, 1, 1, 2, 3]);
    expect([...poolStages(f, { V: 1, T: 4, D: 1 }, [[1, 2]], 3)]).toEqual([0, 0, 0, 1, 1, 1, 2, 2.5, 3]);
    const rng = createRng(9);
    const V = 2;
    const T = 16;
    const feats = randn(rng, V * T * D);
    const tr = [
      [3, 9],
      [1, 15],
    ];
    const ours = poolStages(feats, { V, T, D }, tr, L);
    const ref = tf.tidy(() => stagePool(tf.tensor3d(feats, [V, T, D]), tr, L).dataSync());
    expect(ours.length).toBe(ref.length);
    for (let i = 0; i < ours.length; i++) expect(Math.abs(ours[i] - ref[i])).toBeLessThan(1e-5);
  });
});

describe('exemplar choice', () => {
  const records = ['a', 'a', 'a', 'b', 'c'].map((actionType, i) => ({
    key: `k${i}`,
    actionType,
    score: i,
    transitions: [1, 2],
  }));

  it('is seeded, respects the action type and the pool size', () => {
    const one = chooseExemplars(records, { actionType: 'a', count: 2, seed: 4 });
    expect(one).toEqual(chooseExemplars(records, { actionType: 'a', count: 2, seed: 4 }));
    expect(one.pool).toBe(3);
    expect(one.chosen).toHaveLength(2);
    for (const i of one.chosen) expect(records[i].actionType).toBe('a');
    const all = chooseExemplars(records, { count: 10, seed: 0 });
    expect(all.pool).toBe(5);
    expect([...all.chosen].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('refuses an unknown action type, listing the known ones, and a count below 1', () => {
    expect(() => chooseExemplars(records, { actionType: 'z', count: 3, seed: 0 })).toThrow(
      /action type 'z' has no exemplars in the bundle \(known: a, b, c\)/,
    );
    expect(() => chooseExemplars(records, { count: 0, seed: 0 })).toThrow(/positive integer/);
  });
});

describe('bundle files', () => {
  let dir: string;
  let bank: ExemplarBank;
  beforeAll(async () => {
    dir = path.join(tmp, 'bundle');
    const rng = createRng(21);
    bank = {
      records: [
        { key: 'x', actionType: '101a', score: 40, transitions: [2, 5] },
        { key: 'y', actionType: '101a', score: 55.5, transitions: [3, 6] },
      ],
      tokens: randn(rng, 2 * K * L * D),
    };
    const manifest = makeManifest(cfg, {
      stageNames: ['a', 'b', 'c'],
      scoreScale: 10,
      source: { dataset: 'synthdive' },
    });
    await writeBundle(dir, { manifest, graphs: bundleGraphs(params, cfg), exemplars: bank });
  });

  /** A copy of the bundle with `edit` applied to one file. */
  async function tampered(name: string, edit: (text: string) => string | undefined): Promise<string> {
    const copy = await mkdtemp(path.join(tmp, 'copy-'));
    await cp(dir, copy, { recursive: true });
    const file = path.join(copy, name);
    const out = edit(await readFile(file, 'utf8'));
    if (out === undefined) await rm(file);
    else await writeFile(file, out);
    return copy;
  }

  it('reads back what was written', async () => {
    const b = await readBundle(dir);
    expect(b.manifest.version).toBe(VERSION);
    expect(b.manifest.transform).toEqual(squareTransform(cfg.imageSize));
    expect(b.manifest.scoreScale).toBe(10);
    expect(b.exemplars.records).toEqual(bank.records);
    expect([...b.exemplars.tokens]).toEqual([...bank.tokens]);
  });

  it('refuses other major versions, naming both, and accepts another minor', async () => {
    const major = Number(VERSION.split('.')[0]);
    const newer = await tampered(BUNDLE_FILES.manifest, (t) =>
      t.replace(/"version": "[^"]+"/, '"version": "99.1.0"'),
    );
    await expect(readBundle(newer)).rejects.toThrow(
      new RegExp(`written by mcore 99\\.1\\.0 and this is mcore ${VERSION.replaceAll('.', '\\.')}`),
    );
    const minor = await tampered(BUNDLE_FILES.manifest, (t) =>
      t.replace(/"version": "[^"]+"/, `"version": "${major}.99.0"`),
    );
    expect((await readBundle(minor)).manifest.version).toBe(`${major}.99.0`);
  });

  it('refuses missing files, foreign manifests, bad fields and a bank that does not match', async () => {
    const cases: [string, (t: string) => string | undefined, RegExp][] = [
      [BUNDLE_FILES.scorer, () => undefined, /incomplete scoring bundle, missing scorer\.onnx/],
      [BUNDLE_FILES.manifest, (t) => t.replace('"mcore-bundle"', '"other"'), /not an mcore scoring bundle/],
      [BUNDLE_FILES.manifest, (t) => t.replace('"scoreScale": 10', '"scoreScale": -1'), /scoreScale/],
      [BUNDLE_FILES.manifest, () => '{ nope', /not valid JSON/],
      [BUNDLE_FILES.manifest, (t) => t.replace('"c"\n', '"c",\n    "d"\n'), /4 stage names for 3 stages/],
      [
        BUNDLE_FILES.exemplarIndex,
        (t) => t.replace(/"count": 2/, '"count": 1'),
        /expected a float32 tensor 'tokens' of shape \[2, 15, 32\]/,
      ],
    ];
    for (const [file, edit, message] of cases) {
      const copy = await tampered(file, edit);
      await expect(readBundle(copy), `${file}: ${message}`).rejects.toThrow(message);
    }
    await expect(readBundle(tmp)).rejects.toThrow(/not a scoring bundle \(none of its files is there\)/);
  });

  it('is replaced as a whole, only over bundle files, one writer at a time', async () => {
    const parent = await mkdtemp(path.join(tmp, 'whole-'));
    const target = path.join(parent, 'b');
    const manifest = makeManifest(cfg, { stageNames: ['a', 'b', 'c'], scoreScale: 10 });
    const graphs = bundleGraphs(params, cfg);
    await writeBundle(target, { manifest, graphs, exemplars: bank });
    await writeFile(path.join(target, 'import.json'), '{}'); // mcore import's report: replaced with the bundle
    const one = { records: [bank.records[0]], tokens: bank.tokens.slice(0, K * L * D) };
    await writeBundle(target, { manifest: { ...manifest, scoreScale: 7 }, graphs, exemplars: one });
    const b = await readBundle(target);
    expect(b.manifest.scoreScale).toBe(7);
    expect(b.exemplars.records).toEqual([bank.records[0]]);
    expect((await readdir(parent)).sort()).toEqual(['b']); // no staging, old folder or lock left
    expect(await readdir(target)).not.toContain('import.json');

    // Another writer holds the lock: refused, nothing changes.
    const lock = await lockBundle(target);
    await expectMcoreRejection(
      writeBundle(target, { manifest, graphs, exemplars: bank }),
      'E_BUSY',
      `the bundle ${target} is in use by another mcore process`,
    );
    await lock.release();
    expect((await readBundle(target)).manifest.scoreScale).toBe(7);

    // A folder holding other files, or a file: refused before anything is written.
    const mixed = path.join(parent, 'mixed');
    await mkdir(mixed);
    await writeFile(path.join(mixed, 'notes.txt'), 'mine');
    await expectMcoreRejection(
      writeBundle(mixed, { manifest, graphs, exemplars: bank }),
      'E_INPUT',
      `${mixed}: holds files that are not part of a scoring bundle (notes.txt)`,
    );
    expect(await readdir(mixed)).toEqual(['notes.txt']);
    await expectMcoreRejection(
      writeBundle(path.join(mixed, 'notes.txt'), { manifest, graphs, exemplars: bank }),
      'E_INPUT',
      'notes.txt: is a file, not a folder',
    );

    // Killed between the two renames: no bundle at the name, the old one intact beside it and named.
    const aside = path.join(parent, '.b.old-123-0123abcd');
    await rename(target, aside);
    await expectMcoreRejection(
      readBundle(target),
      'E_INPUT',
      `the previous bundle is intact in ${aside}: rename it to ${target}, or export again`,
    );
    await writeBundle(target, { manifest, graphs, exemplars: bank });
    expect((await readdir(parent)).sort()).toEqual(['b', 'mixed']);
    expect((await readBundle(target)).exemplars.records).toEqual(bank.records);
  });

  it('refuses a bundle whose manifest.json is a folder, in one line', async () => {
    const copy = await mkdtemp(path.join(tmp, 'dir-manifest-'));
    await cp(dir, copy, { recursive: true });
    await rm(path.join(copy, BUNDLE_FILES.manifest));
    await mkdir(path.join(copy, BUNDLE_FILES.manifest));
    await expectMcoreRejection(
      readBundle(copy),
      'E_INPUT',
      `${path.join(copy, BUNDLE_FILES.manifest)}: is a folder, not a file`,
    );
  });

  it('refuses exemplar tokens holding NaN and an exemplar score of 1e308, naming the file', async () => {
    const nan = await mkdtemp(path.join(tmp, 'nan-'));
    const tokens = Float32Array.from(bank.tokens);
    tokens[K * L * D + 7] = Number.NaN;
    await writeBundle(nan, {
      manifest: makeManifest(cfg, { stageNames: ['a', 'b', 'c'], scoreScale: 10 }),
      graphs: bundleGraphs(params, cfg),
      exemplars: { records: bank.records, tokens },
    });
    await expectMcoreRejection(
      readBundle(nan),
      'E_INPUT',
      `${path.join(nan, BUNDLE_FILES.exemplarTokens)}: token value ${K * L * D + 7} (exemplar 'y') is NaN`,
    );
    const huge = await tampered(BUNDLE_FILES.exemplarIndex, (t) =>
      t.replace('"score": 55.5', '"score": 1e308'),
    );
    await expectMcoreRejection(readBundle(huge), 'E_INPUT', BUNDLE_FILES.exemplarIndex, 'exemplars.1.score');
  });

  it('a scorer that computes NaN makes score() an E_NONFINITE error, never a NaN score', async () => {
    const broken = { ...params };
    const name = Object.keys(params).find((n) => n.startsWith('regressor.') && n.endsWith('bias'))!;
    broken[name] = tf.fill(params[name].shape, Number.NaN);
    const copy = await mkdtemp(path.join(tmp, 'nan-graph-'));
    await writeBundle(copy, {
      manifest: makeManifest(cfg, { stageNames: ['a', 'b', 'c'], scoreScale: 10 }),
      graphs: bundleGraphs(broken, cfg),
      exemplars: bank,
    });
    broken[name].dispose();
    const b = await loadBundle(copy);
    try {
      const S = cfg.imageSize;
      const rng = createRng(5);
      const frames: Frame[] = Array.from({ length: cfg.frames }, () => ({
        width: S,
        height: S,
        data: Uint8Array.from({ length: S * S * 3 }, () => rng.int(256)),
      }));
      const q = {
        kind: 'frames' as const,
        path: 'q',
        frames,
        indices: [],
        sourceFrames: cfg.frames,
        warnings: [],
      };
      await expectMcoreRejection(b.scoreQuery(q), 'E_NONFINITE', 'the score of q came out NaN', copy);
    } finally {
      await b.dispose();
    }
  });

  it('loadBundle refuses graphs that do not belong to the bundle, naming the file (E_INPUT, not E_SHAPE)', async () => {
    const graphs = bundleGraphs(params, cfg);
    const swaps: [string, Uint8Array, RegExp][] = [
      [BUNDLE_FILES.backbone, graphs.segmenter, /backbone\.onnx: the graph's input 'frames' is missing/],
      [BUNDLE_FILES.segmenter, graphs.scorer, /segmenter\.onnx: the graph's input 'features' is missing/],
      [BUNDLE_FILES.scorer, graphs.backbone, /scorer\.onnx: the graph's input 'q_tokens' is missing/],
    ];
    for (const [file, bytes, message] of swaps) {
      const copy = await mkdtemp(path.join(tmp, 'swap-'));
      await cp(dir, copy, { recursive: true });
      await writeFile(path.join(copy, file), bytes);
      await expectMcoreRejection(loadBundle(copy), 'E_INPUT', message);
    }
  });

  it('loadBundle refuses a scorer without the token_delta output', async () => {
    const copy = await mkdtemp(path.join(tmp, 'plain-'));
    await cp(dir, copy, { recursive: true });
    await writeFile(path.join(copy, BUNDLE_FILES.scorer), exportScorer(params, cfg));
    await expect(loadBundle(copy)).rejects.toThrow(/has no 'token_delta' output/);
  });
});
