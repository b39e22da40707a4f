/**
 * The page's sources (web/) are type-checked against the DOM, which the project's tsconfig.json (Node's
 * lib) does not include: `tsc -p web/tsconfig.json` must pass. A type error in a file checked with the
 * same config shows the check can fail.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.ts';

const run = promisify(execFile);
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

async function check(project: string): Promise<{ code: number; out: string }> {
  try {
    await run(process.execPath, [tsc, '--noEmit', '-p', project], { cwd: repoRoot });
    return { code: 0, out: '' };
  } catch (e) {
    const err = e as { code?: number; stdout?: string };
    return { code: err.code ?? -1, out: err.stdout ?? '' };
  }
}

describe('the page type-checks against the DOM', () => {
  it('tsc -p web/tsconfig.json passes', async () => {
    const r = await check(path.join(repoRoot, 'web', 'tsconfig.json'));
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it('and fails on a type error (the check can fail)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mcore-typecheck-'));
    try {
      await writeFile(path.join(dir, 'bad.ts'), 'const n: number = document.title;\nexport { n };\n');
      await writeFile(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          extends: path.join(repoRoot, 'web', 'tsconfig.json'),
          compilerOptions: { types: [] },
          include: ['.'],
        }),
      );
      const r = await check(path.join(dir, 'tsconfig.json'));
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/bad\.ts.*Type 'string' is not assignable to type 'number'/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
