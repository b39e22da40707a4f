import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBatchInputs } from '../../src/score/batch-inputs.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

let tmp: string;
const at = (...p: string[]) => path.join(tmp, ...p);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-batch-inputs-'));
  await mkdir(at('videos', 'clip-b'), { recursive: true });
  await mkdir(at('videos', '.hidden'));
  await writeFile(at('videos', 'clip-b', '00001.jpg'), 'x');
  await writeFile(at('videos', 'B.mp4'), 'x');
  await writeFile(at('videos', 'a.MOV'), 'x');
  await writeFile(at('videos', 'readme.txt'), 'x');
  await writeFile(at('videos', 'still.jpg.bak'), 'x');
  await mkdir(at('frames'));
  await writeFile(at('frames', '00001.png'), 'x');
  await writeFile(
    at('list.txt'),
    `# dives of day 2\n${at('videos', 'B.mp4')}\n\n  ${at('missing.mp4')}  \r\n${at('frames')}\n`,
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('listBatchInputs', () => {
  it('expands folders one level (videos by extension, sub-folders), keeps frame folders whole', async () => {
    expect(await listBatchInputs([at('videos')])).toEqual([
      at('videos', 'B.mp4'),
      at('videos', 'a.MOV'),
      at('videos', 'clip-b'),
    ]);
    expect(await listBatchInputs([at('frames')])).toEqual([at('frames')]);
  });

  it('reads @lists (comments, blanks, CRLF), keeps missing paths for their error line, sorts and de-duplicates', async () => {
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      const got = await listBatchInputs(['videos/B.mp4', `@${at('list.txt')}`], [at('list.txt')]);
      expect(got).toEqual([at('frames'), at('missing.mp4'), at('videos', 'B.mp4')]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses an unreadable list and an empty result', async () => {
    await expectMcoreRejection(
      listBatchInputs([`@${at('nope.txt')}`]),
      'E_INPUT',
      'nope.txt: cannot read the list',
    );
    await mkdir(at('empty'));
    await expectMcoreRejection(listBatchInputs([at('empty')]), 'E_INPUT', 'no videos or frame folders in');
  });
});
