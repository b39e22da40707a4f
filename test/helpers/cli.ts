/** Runs the real `mcore` command (node bin/mcore.js) in the repository root, for CLI tests. */
import { execFile } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `mcore ARGS` run in the repository root. */
export function mcore(...args: string[]): Promise<Run> {
  return mcoreIn(repoRoot, ...args);
}

/** `mcore ARGS` run in the folder `cwd` (relative paths in ARGS are relative to it). */
export function mcoreIn(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(repoRoot, 'bin/mcore.js'), ...args],
      { cwd, env: { ...process.env, CI: '1' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
