/**
 * Fuzz corpus of the inputs a user names: manifests (JSON and CSV), frame folders with corrupt JPEGs,
 * special files (pipes, devices), scoring bundles, configs and `--set`, dataset specs; then the same
 * classes through the CLI's commands in-process (exit 2, one `mcore:` line, no stack) and a handful as
 * real `mcore` processes. Prints the counts after the file.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.ts';
import { writePng } from '../../src/data/images.ts';
import { loadManifestDataset } from '../../src/data/manifest.ts';
import { parseDatasetSpec } from '../../src/data/open.ts';
import { featureDim, modelConfig } from '../../src/model/config.ts';
import { BUNDLE_FILES, makeManifest, readBundle, writeBundle } from '../../src/score/bundle.ts';
import { readQueryInput } from '../../src/score/input.ts';
import { mcore } from '../helpers/cli.ts';
import { grey } from '../helpers/frames.ts';
import { zip } from '../helpers/zip.ts';
import {
  CASE_TIMEOUT_MS,
  expectAccepted,
  expectCliRefused,
  expectRefused,
  formatTally,
  mcoreInProcess,
  mkfifo,
  newTally,
} from './harness.ts';
import { billionLaughs, reducePayload } from './pickles.ts';

const tally = newTally();
let tmp: string;
const at = (...p: string[]) => path.join(tmp, ...p);

/** A 64x64 JPEG of a gradient: decodable, with enough entropy-coded data to garble. */
async function jpeg(): Promise<Buffer> {
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
  return sharp(raw, { raw: { width: 64, height: 64, channels: 3 } })
    .jpeg()
    .toBuffer();
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'mcore-fuzz-inputs-'));
  await mkdir(at('frames'), { recursive: true });
  for (let n = 1; n <= 8; n++)
    await writePng(at('frames', `${String(n).padStart(5, '0')}.png`), grey(8, 8, 20 * n));
  const good = await jpeg();
  const garbled = Buffer.from(good);
  for (let i = good.length - 400; i < good.length - 300; i++) garbled[i] ^= 0xff;
  const variants: Record<string, Buffer> = {
    garbled,
    truncated: good.subarray(0, Math.floor(good.length * 0.8)),
    empty: Buffer.alloc(0),
    text: Buffer.from('this is not an image'),
  };
  for (const [name, bad] of Object.entries(variants)) {
    await mkdir(at(`jpegs-${name}`));
    for (let n = 1; n <= 8; n++) {
      await writeFile(at(`jpegs-${name}`, `${String(n).padStart(5, '0')}.jpg`), n === 5 ? bad : good);
    }
  }
  await mkdir(at('jpegs-fifo'));
  await writeFile(at('jpegs-fifo', '00001.jpg'), good);
  mkfifo(at('jpegs-fifo', '00002.jpg'));
  mkfifo(at('pipe'));
  mkfifo(at('pipe.json'));
  mkfifo(at('pipe.npy'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  console.log(formatTally('inputs and commands', tally));
});

// ---- manifests ---------------------------------------------------------------------------------------

const clip = (extra: Record<string, unknown> = {}) => ({
  frames: 'frames',
  score: 50,
  actionType: '107b',
  transitions: [4],
  split: 'train',
  ...extra,
});
const manifest = (clips: unknown[]) => ({ stages: ['a', 'b'], clips });
const open = (file: string) => loadManifestDataset(file, { width: 8, height: 8 });

describe('manifests', () => {
  it('a byte-order mark is accepted in JSON as in CSV', async () => {
    await writeFile(at('bom.json'), `\uFEFF${JSON.stringify(manifest([clip()]))}`);
    await writeFile(
      at('bom.csv'),
      '\uFEFFframes,score,actionType,transitions,split\nframes,50,107b,4,train\n',
    );
    for (const f of ['bom.json', 'bom.csv']) {
      const ds = await expectAccepted(tally, () => open(at(f)));
      expect(ds.clips.map((c) => c.score)).toEqual([50]);
    }
  });

  it('scores, judge scores and difficulties must be finite and within range', async () => {
    const json: [string, unknown][] = [
      ['score 1e300', clip({ score: 1e300 })],
      ['score -1e300', clip({ score: -1e300 })],
      ['judge score 1e300', clip({ judgeScores: [8, 1e300] })],
      ['difficulty 1e9', clip({ difficulty: 1e9 })],
      ['difficulty 0', clip({ difficulty: 0 })],
      ['score as a string', clip({ score: '50' })],
      ['a __proto__ key', { ...clip(), ...JSON.parse('{"__proto__": {"polluted": 1}}') }],
      [
        'transitions nested 10^5 deep',
        JSON.stringify(clip()).replace('[4]', `${'['.repeat(100_000)}${']'.repeat(100_000)}`),
      ],
    ];
    for (const [name, c] of json) {
      const file = at(`${name.replaceAll(/[^a-z0-9]+/gi, '-')}.json`);
      const text = typeof c === 'string' ? c : JSON.stringify(c);
      await writeFile(file, `{"stages": ["a", "b"], "clips": [${text}]}`);
      await expectRefused(
        tally,
        () => open(file),
        'E_DATA_LAYOUT',
        new RegExp(`${path.basename(file)}: 1 problem`),
      );
    }
    for (const score of ['nan', 'NaN', 'Infinity', '-inf', '1e309', '1e300']) {
      const file = at(`score-${score}.csv`);
      await writeFile(file, `frames,score,actionType,transitions,split\nframes,${score},107b,4,train\n`);
      await expectRefused(tally, () => open(file), 'E_DATA_LAYOUT', /score/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a manifest that is a pipe, a folder or nested JSON is refused', async () => {
    await mkdir(at('folder.json'));
    await writeFile(at('deep.json'), `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    await writeFile(at('frames-pipe.json'), JSON.stringify(manifest([clip({ frames: 'pipe' })])));
    const cases: [string, RegExp][] = [
      ['pipe.json', /pipe\.json: is a named pipe \(FIFO\)/],
      ['folder.json', /folder\.json: cannot read the manifest/],
      ['deep.json', /deep\.json: 1 problem/],
      ['frames-pipe.json', /folder not found: .*pipe/],
    ];
    for (const [f, message] of cases) {
      await expectRefused(tally, () => open(at(f)), 'E_DATA_LAYOUT', message);
    }
  });
});

// ---- frame folders and special files as score input ----------------------------------------------------

const query = (input: string, allowDamaged = false) =>
  readQueryInput(input, { count: 8, width: 16, height: 16, fit: 'squeeze', allowDamaged });

describe('score input: frame folders with corrupt frames, pipes and devices', () => {
  it('a corrupt frame is an error naming the file, or with allowDamaged a warning naming it', async () => {
    for (const kind of ['garbled', 'truncated', 'empty', 'text']) {
      const dir = at(`jpegs-${kind}`);
      await expectRefused(
        tally,
        () => query(dir),
        'E_INPUT',
        new RegExp(`jpegs-${kind}/00005\\.jpg: cannot read the image .*pass --allow-damaged`),
      );
    }
    for (const kind of ['garbled', 'truncated']) {
      const q = await expectAccepted(tally, () => query(at(`jpegs-${kind}`), true));
      expect(q.frames).toHaveLength(8);
      expect(q.warnings).toEqual([
        expect.stringMatching(new RegExp(`jpegs-${kind}/00005\\.jpg: damaged frame`)),
      ]);
    }
    // nothing to salvage from an empty file or text
    await expectRefused(
      tally,
      () => query(at('jpegs-text'), true),
      'E_INPUT',
      /00005\.jpg: cannot read the image/,
    );
  });

  it('pipes and devices are refused at once, as the input and as a frame', async () => {
    await expectRefused(
      tally,
      () => query(at('pipe')),
      'E_INPUT',
      /pipe: is a named pipe \(FIFO\), not a regular file/,
    );
    await expectRefused(tally, () => query('/dev/zero'), 'E_INPUT', /\/dev\/zero: is a character device/);
    await expectRefused(
      tally,
      () => query(at('jpegs-fifo')),
      'E_DATA_LAYOUT',
      /jpegs-fifo\/00002\.jpg: is not a regular file/,
    );
  });
});

// ---- bundles -------------------------------------------------------------------------------------------

describe('scoring bundles', () => {
  const cfg = modelConfig('mcore-tiny');
  const per = cfg.stages * cfg.tokensPerStage * featureDim(cfg);
  const records = [
    { key: 'x', actionType: '101a', score: 40, transitions: Array(cfg.stages - 1).fill(2) },
    { key: 'y', actionType: '101a', score: 55, transitions: Array(cfg.stages - 1).fill(3) },
  ];
  const stageNames = Array.from({ length: cfg.stages }, (_, i) => `s${i}`);
  const fakeGraphs = { backbone: Uint8Array.of(1), segmenter: Uint8Array.of(2), scorer: Uint8Array.of(3) };

  async function bundle(
    name: string,
    edit: { tokens?: (t: Float32Array) => void; manifest?: (m: Record<string, unknown>) => void } = {},
  ): Promise<string> {
    const dir = at('bundles', name);
    const tokens = new Float32Array(2 * per).fill(0.5);
    edit.tokens?.(tokens);
    const m = makeManifest(cfg, { stageNames, scoreScale: 1 });
    edit.manifest?.(m as unknown as Record<string, unknown>);
    await writeBundle(dir, { manifest: m, graphs: fakeGraphs, exemplars: { records, tokens } });
    return dir;
  }

  it('hostile bundles are E_INPUT naming the file at fault', async () => {
    const nan = await bundle('nan', { tokens: (t) => t.fill(Number.NaN, per + 3, per + 4) });
    await expectRefused(
      tally,
      () => readBundle(nan),
      'E_INPUT',
      /exemplars\.safetensors: token value \d+ \(exemplar 'y'\) is NaN/,
    );
    const inf = await bundle('inf', { tokens: (t) => t.fill(Number.POSITIVE_INFINITY, 0, 1) });
    await expectRefused(tally, () => readBundle(inf), 'E_INPUT', /exemplar 'x'\) is Infinity/);
    const big = await bundle('big');
    const index = path.join(big, BUNDLE_FILES.exemplarIndex);
    const text = (await import('node:fs/promises')).readFile;
    await writeFile(index, (await text(index, 'utf8')).replace('"score": 55', '"score": 1e308'));
    await expectRefused(
      tally,
      () => readBundle(big),
      'E_INPUT',
      /exemplars\.json: invalid exemplar index: .*exemplars\.1\.score/,
    );
    const manifestEdits: [string, (m: Record<string, unknown>) => void, RegExp][] = [
      ['size', (m) => Object.assign(m, { imageSize: 1e9 }), /imageSize/],
      ['frames', (m) => Object.assign(m, { frames: 1e12 }), /frames/],
      ['crop', (m) => Object.assign(m, { transform: { ...(m.transform as object), crop: 7 } }), /crop 7/],
      ['scale', (m) => Object.assign(m, { scoreScale: 1e300 }), /scoreScale/],
    ];
    for (const [name, edit, message] of manifestEdits) {
      const dir = at('bundles', `m-${name}`);
      await mkdir(dir, { recursive: true });
      const m = makeManifest(cfg, { stageNames, scoreScale: 1 }) as unknown as Record<string, unknown>;
      edit(m);
      await writeFile(path.join(dir, BUNDLE_FILES.manifest), JSON.stringify(m));
      for (const f of Object.values(BUNDLE_FILES).filter((f) => f !== BUNDLE_FILES.manifest)) {
        await writeFile(path.join(dir, f), 'x');
      }
      await expectRefused(tally, () => readBundle(dir), 'E_INPUT', message);
    }
    const folder = await bundle('manifest-folder');
    await rm(path.join(folder, BUNDLE_FILES.manifest));
    await mkdir(path.join(folder, BUNDLE_FILES.manifest));
    await expectRefused(
      tally,
      () => readBundle(folder),
      'E_INPUT',
      /manifest\.json: is a folder, not a file; this is not a valid scoring bundle/,
    );
    const pipe = await bundle('manifest-pipe');
    await rm(path.join(pipe, BUNDLE_FILES.manifest));
    mkfifo(path.join(pipe, BUNDLE_FILES.manifest));
    await expectRefused(tally, () => readBundle(pipe), 'E_INPUT', /manifest\.json: is a named pipe/);
    const deep = await bundle('deep-index');
    await writeFile(
      path.join(deep, BUNDLE_FILES.exemplarIndex),
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    );
    await expectRefused(tally, () => readBundle(deep), 'E_INPUT', /exemplars\.json: invalid exemplar index/);
    const header = await bundle('bad-tokens');
    await writeFile(path.join(header, BUNDLE_FILES.exemplarTokens), Buffer.alloc(64, 0xff));
    await expectRefused(
      tally,
      () => readBundle(header),
      'E_INPUT',
      /exemplars\.safetensors: .*header length/,
    );
  });
});

// ---- configs and dataset specs -------------------------------------------------------------------------

describe('configs and dataset specs', () => {
  it('--set refuses unknown keys, prototype names and values out of range; Object.prototype stays clean', async () => {
    const cases: [string, RegExp][] = [
      ['__proto__.toString=1', /'__proto__' is not a configuration key/],
      ['__proto__.polluted=1', /prototype/],
      ['constructor.prototype.polluted=1', /'constructor' is not a configuration key/],
      ['train.__proto__.x=1', /prototype/],
      ['train.epochz=3', /unknown key 'train\.epochz'/],
      ['model.imageSize=100000000', /at model\.imageSize/],
      ['model.frames=1e12', /at model\.frames/],
      ['train.epochs=1e15', /at train\.epochs/],
      ['train.lr=NaN', /at train\.lr/],
      ['train.lr=-1', /at train\.lr/],
      ['train.seed=1e300', /at train\.seed/],
      ['eval.exemplars=1e9', /at eval\.exemplars/],
      ['loss.tau=0', /at loss\.tau/],
      ['nokey', /--set expects key=value/],
    ];
    for (const [set, message] of cases) {
      await expectRefused(tally, () => resolveConfig({}, [set]), 'E_CONFIG', message);
    }
    await expectRefused(
      tally,
      () => resolveConfig(JSON.parse(`{"train": ${'{"a": '.repeat(1000)}1${'}'.repeat(1000)}}`)),
      'E_CONFIG',
      /invalid configuration/,
    );
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
    expect(String({})).toBe('[object Object]');
  });

  it('dataset specs bound clips, size, judges and stages', async () => {
    const cases: [string, RegExp][] = [
      ['synthdive:clips=1000000000', /clips must be an integer in \[1, 100000\]/],
      ['synthdive:clips=0', /clips must be/],
      ['synthdive:clips=2.5', /clips must be/],
      ['synthdive:size=100000', /size must be an integer in \[8, 1024\]/],
      ['synthdive:size=-1', /size must be/],
      ['synthdive:judges=6', /judges must be 5 or 7/],
      ['synthdive:seed=1e300', /seed must be/],
      ['synthdive:clips=Infinity', /not key=number/],
      ['synthdive:__proto__=1', /unknown option '__proto__'/],
      ['finediving:root=a,annotations=b,stages=1000000', /stages must be an integer in \[2, 32\]/],
    ];
    for (const [spec, message] of cases) {
      await expectRefused(tally, () => parseDatasetSpec(spec), 'E_INPUT', message);
    }
  });
});

// ---- the commands, in-process and as real processes ----------------------------------------------------

describe('commands (in-process, the CLI error mapping)', () => {
  let annotations: string;
  beforeAll(async () => {
    annotations = at('annotations');
    await mkdir(annotations);
    await mkdir(at('fd-root'));
    for (const f of [
      'FineDiving_coarse_annotation.pkl',
      'FineDiving_fine-grained_annotation.pkl',
      'train_split.pkl',
      'test_split.pkl',
    ]) {
      await writeFile(path.join(annotations, f), billionLaughs(4));
    }
    await writeFile(at('true.npy'), Buffer.from('not numpy'));
    await writeFile(
      at('evil.pth'),
      zip([
        { name: 'archive/data.pkl', data: reducePayload(2, 'os', 'system', at('PWNED')) },
        { name: 'archive/data/0', data: new Uint8Array(4) },
      ]),
    );
    await writeFile(at('deep.config.json'), `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  });

  it(
    'every hostile command line exits 2 with one line and no stack trace',
    async () => {
      const out = at('run-out');
      const cases: [string[], RegExp][] = [
        [['metrics', '--pred', at('pipe.npy'), '--true', at('true.npy')], /pipe\.npy: is a named pipe/],
        [['metrics', '--pred', '/dev/zero', '--true', at('true.npy')], /\/dev\/zero: is a character device/],
        [
          ['data', 'check', 'finediving', '--root', at('fd-root'), '--annotations', annotations],
          /expands to more than 10000000 objects/,
        ],
        [['import', at('evil.pth'), '--out', at('imported')], /forbidden global 'os\.system'/],
        [['import', at('pipe'), '--out', at('imported')], /is a named pipe/],
        [
          ['train', '--dataset', 'synthdive:clips=1000000000', '--out', out],
          /clips must be an integer in \[1, 100000\]/,
        ],
        [
          ['train', '--dataset', 'synthdive', '--out', out, '--set', '__proto__.toString=1'],
          /'__proto__' is not a configuration key/,
        ],
        [
          ['train', '--dataset', 'synthdive', '--out', out, '--set', 'model.imageSize=1000000'],
          /model\.imageSize/,
        ],
        [
          ['train', '--dataset', 'synthdive', '--out', out, '--config', at('pipe.json')],
          /--config .*pipe\.json: is a named pipe/,
        ],
        [
          ['train', '--dataset', 'synthdive', '--out', out, '--config', at('deep.config.json')],
          /a config file must hold a JSON object/,
        ],
        [['train', '--dataset', at('pipe.json'), '--out', out], /pipe\.json: is a named pipe/],
      ];
      for (const [args, message] of cases) {
        await expectCliRefused(tally, await mcoreInProcess(...args), message);
      }
      expect(String({})).toBe('[object Object]');
    },
    6 * CASE_TIMEOUT_MS,
  );

  it(
    'a handful as real mcore processes: exit 2, one line, no hang on a pipe',
    async () => {
      const runs = await Promise.all([
        mcore('metrics', '--pred', at('pipe.npy'), '--true', at('true.npy')),
        mcore('data', 'check', 'finediving', '--root', at('fd-root'), '--annotations', annotations),
        mcore('import', at('evil.pth'), '--out', at('imported')),
        mcore('train', '--dataset', 'synthdive', '--out', at('run-out'), '--set', '__proto__.polluted=1'),
      ]);
      const messages = [
        /is a named pipe/,
        /expands to more than/,
        /forbidden global 'os\.system'/,
        /'__proto__'/,
      ];
      for (const [i, run] of runs.entries()) await expectCliRefused(tally, run, messages[i]);
    },
    6 * CASE_TIMEOUT_MS,
  );
});
