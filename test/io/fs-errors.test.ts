import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { reportError } from '../../src/cli/errors.ts';
import { fsErrorMessage } from '../../src/io/fs-errors.ts';

/** What the CLI prints and returns for `err`. */
function report(err: unknown): { code: number; text: string } {
  let text = '';
  const code = reportError(err, (t) => {
    text += t;
  });
  return { code, text };
}

function errno(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${syscall} '${file}'`) as NodeJS.ErrnoException;
  Object.assign(e, { code, syscall, path: file });
  return e;
}

describe('file-system errors the user can fix', () => {
  it('are exit 2 with one line naming the path, what is wrong and how to fix it', () => {
    const cases: [string, string, RegExp][] = [
      [
        'ENOSPC',
        'write',
        /^mcore: cannot write \/r\/log\.jsonl: no space left on the device; free some space .*\(ENOSPC\)\n$/,
      ],
      ['EDQUOT', 'write', /^mcore: cannot write \/r\/log\.jsonl: disk quota exceeded.*\(EDQUOT\)\n$/],
      ['EACCES', 'open', /^mcore: cannot open \/r\/log\.jsonl: permission denied.*\(EACCES\)\n$/],
      [
        'EROFS',
        'open',
        /^mcore: cannot open \/r\/log\.jsonl: read-only file system; write to another folder \(EROFS\)\n$/,
      ],
      ['ENOTDIR', 'mkdir', /^mcore: cannot create the folder \/r\/log\.jsonl: a part of the path is a file/],
      ['EISDIR', 'open', /^mcore: cannot open \/r\/log\.jsonl: is a folder, not a file/],
    ];
    for (const [code, syscall, message] of cases) {
      const r = report(errno(code, syscall, '/r/log.jsonl'));
      expect(r.code, code).toBe(2);
      expect(r.text, code).toMatch(message);
    }
    // Anything else is a bug in mcore: its stack and exit 1.
    const bug = report(errno('ENOENT', 'open', '/r/x'));
    expect(bug.code).toBe(1);
    expect(bug.text).toMatch(/internal error \(please report it\)\n.*ENOENT/);
    expect(fsErrorMessage(new TypeError('x'))).toBeUndefined();
  });

  it('are recognised from real failures: a folder where a file goes, a file where a folder goes', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-fserr-'));
    const file = path.join(dir, 'file');
    await writeFile(file, 'x');
    const isDir = await writeFile(dir, 'x').catch((e: unknown) => e);
    expect(fsErrorMessage(isDir)).toMatch(
      new RegExp(`^cannot open ${dir}: is a folder, not a file.*\\(EISDIR\\)$`),
    );
    const notDir = await mkdir(path.join(file, 'sub'), { recursive: true }).catch((e: unknown) => e);
    expect(fsErrorMessage(notDir)).toMatch(
      /^cannot create the folder .*file\/sub: (a part of the path is a file|a file is in the way)/,
    );
    const inTheWay = await mkdir(file).catch((e: unknown) => e);
    expect(fsErrorMessage(inTheWay)).toMatch(
      /file: a file is in the way of the folder; give a folder path \(EEXIST\)$/,
    );
  });
});
