/** Runs the real `mcore` command (node bin/mcore.js) in the repository root, for CLI tests. */
import { execFile } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function mcore(...args: string[]): Promise<Run> {
  return mcoreWithEnv({}, ...args);
}

/** `mcore(...args)` with extra environment variables (e.g. a scheduler's shard index). */
export function mcoreWithEnv(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/mcore.js', ...args],
      { cwd: repoRoot, env: { ...process.env, CI: '1', ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
