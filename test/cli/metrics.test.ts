import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/io/npy.ts';
import { mcore, repoRoot } from '../helpers/cli.ts';

const official = path.resolve(repoRoot, '../shared/data/mcore-official');
const predNpy = path.join(official, 'pred.npy');
const trueNpy = path.join(official, 'true.npy');

let dir: string;
const file = (name: string) => path.join(dir, name);
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-'));
  await writeFile(file('pred.json'), JSON.stringify([1, 2, 3, 4]));
  await writeFile(file('true.txt'), '# ground truth\n10\n20\n\n40\n30\n');
  await writeFile(file('three.txt'), '1\n2\n3\n');
  await writeFile(file('nan.txt'), '1\nnan\n3\n4\n');
  await writeFile(file('empty.txt'), '\n\n');
  await writeFile(file('const.txt'), '5\n5\n5\n');
  await writeFile(file('bad.json'), '[1, "x", 3, 4]');
  await writeFile(file('garbage.npy'), 'this is not numpy');
  await writeNpy(file('nan.npy'), new Float32Array([1, 2, Number.NaN, 4]), [4]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!existsSync(official))(
  `mcore metrics on the official predictions (skipped when ${official} is absent)`,
  () => {
    it('prints the table with SRCC 0.927014', async () => {
      const r = await mcore('metrics', '--pred', predNpy, '--true', trueNpy);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      const rows = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/)),
      );
      expect(rows).toEqual({
        SRCC: '0.927014',
        'R-l2': '0.0032757',
        'R-l2x100': '0.3276',
        MSE: '35.7025',
        n: '749',
      });
      // aligned: every value starts in the same column
      const cols = new Set(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.search(/\s\S+$/) + 1),
      );
      expect(cols.size).toBe(1);
    });

    it('prints JSON with --json', async () => {
      const r = await mcore('metrics', '--pred', predNpy, '--true', trueNpy, '--json');
      expect(r.code).toBe(0);
      const m = JSON.parse(r.stdout) as { srcc: number; rl2: number; mse: number; n: number };
      expect(Object.keys(m)).toEqual(['srcc', 'rl2', 'mse', 'n']);
      expect(m.srcc).toBeCloseTo(0.927014, 6);
      expect(m.rl2).toBeCloseTo(0.0032757, 6);
      expect(m.mse).toBeCloseTo(35.702523, 5);
      expect(m.n).toBe(749);
    });

    it('mismatched lengths exit 2 naming both files', async () => {
      const r = await mcore('metrics', '--pred', file('three.txt'), '--true', trueNpy);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        `mcore: ${file('three.txt')} holds 3 scores but ${trueNpy} holds 749; pass one prediction per ground-truth score`,
      );
    });
  },
);

describe('mcore metrics inputs and errors', () => {
  it('reads .json arrays and one-number-per-line text', async () => {
    // ranks [1, 2, 3, 4] vs [1, 2, 4, 3] -> SRCC 0.8; range 30 -> R-l2 = mean(((t - p) / 30)^2)
    const r = await mcore('metrics', '--pred', file('pred.json'), '--true', file('true.txt'), '--json');
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(m.srcc).toBeCloseTo(0.8, 12);
    expect(m.rl2).toBeCloseTo((9 ** 2 + 18 ** 2 + 37 ** 2 + 26 ** 2) / 900 / 4, 12);
    expect(m.n).toBe(4);
  });

  const cases: [string, string[], RegExp][] = [
    [
      'NaN in text',
      ['--pred', 'nan.txt', '--true', 'true.txt'],
      /nan\.txt: line 2 is 'nan', not a finite number/,
    ],
    ['NaN in .npy', ['--pred', 'nan.npy', '--true', 'true.txt'], /nan\.npy: value 2 is NaN/],
    ['empty file', ['--pred', 'empty.txt', '--true', 'true.txt'], /empty\.txt: holds no scores/],
    ['bad JSON item', ['--pred', 'bad.json', '--true', 'true.txt'], /bad\.json: item 1 is "x", not a number/],
    ['not numpy', ['--pred', 'garbage.npy', '--true', 'true.txt'], /garbage\.npy: not a \.npy file/],
    [
      'missing file',
      ['--pred', 'missing.txt', '--true', 'true.txt'],
      /missing\.txt: cannot read the score file \(ENOENT\)/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    it(`${name}: exit 2 with one line naming the file`, async () => {
      const r = await mcore('metrics', ...args.map((a) => (a.startsWith('--') ? a : file(a))));
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^mcore: /);
      expect(r.stderr).toMatch(pattern);
    });
  }

  it('usage errors exit 2: unknown command, missing option', async () => {
    const unknown = await mcore('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const missing = await mcore('metrics', '--pred', file('pred.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--true <file>' not specified/);
  });

  it('--version prints the package version and exits 0', async () => {
    const r = await mcore('--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('reportError (src/cli/errors.ts)', () => {
  it('maps McoreError to one line + 2, commander errors to 2 or 0, anything else to stack + 1', async () => {
    const { reportError } = await import('../../src/cli/errors.ts');
    const { McoreError } = await import('../../src/errors.ts');
    const { CommanderError } = await import('commander');
    const out: string[] = [];
    const write = (t: string) => {
      out.push(t);
    };
    expect(reportError(new McoreError('E_WEIGHTS', 'w.safetensors: key a.b\nmissing'), write)).toBe(2);
    expect(out.pop()).toBe('mcore: w.safetensors: key a.b missing\n');
    expect(reportError(new CommanderError(1, 'commander.unknownOption', 'x'), write)).toBe(2);
    expect(reportError(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), write)).toBe(0);
    expect(out).toEqual([]);
    expect(reportError(new TypeError('boom'), write)).toBe(1);
    expect(out.pop()).toMatch(/^mcore: internal error \(please report it\)\nTypeError: boom\n\s+at /);
  });
});
