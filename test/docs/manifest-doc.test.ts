import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkManifest } from '../../src/data/manifest.ts';
import { repoRoot } from '../helpers/cli.ts';

describe('docs/manifest.md worked example', () => {
  it('its conversion script turns the judging sheet into the manifest it shows, which the loader reads', async () => {
    const doc = await readFile(path.join(repoRoot, 'docs', 'manifest.md'), 'utf8');
    const blocks = [...doc.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] }));
    const [sheet, script, expected, json] = blocks;
    expect([sheet.lang, script.lang, expected.lang, json.lang]).toEqual(['csv', 'js', 'csv', 'json']);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-doc-'));
    await writeFile(path.join(dir, 'sheet.csv'), sheet.text);
    await writeFile(path.join(dir, 'convert.mjs'), script.text);
    execFileSync(process.execPath, ['convert.mjs'], { cwd: dir });
    expect(await readFile(path.join(dir, 'vaults.csv'), 'utf8')).toBe(expected.text);
    // Without the videos, the only problems are the three missing files: every field parsed, K = 4.
    for (const file of ['vaults.csv', 'vaults.json']) {
      if (file === 'vaults.json') await writeFile(path.join(dir, file), json.text);
      const check = await checkManifest(path.join(dir, file), { width: 16, height: 16 });
      expect(check.problems.length, check.problems.join('\n')).toBe(file === 'vaults.csv' ? 3 : 1);
      for (const p of check.problems)
        expect(p).toMatch(/: video: file not found: \S+clips\/20\d\d-\d\d-\d\d_[abc]\.mp4 /);
    }
  });
});
