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
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/mcore.js', ...args],
      { cwd: repoRoot, env: { ...process.env, CI: '1' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `mcore(...args)` with extra environment variables (e.g. the test seams of src/io/faults.ts). */
export function mcoreEnv(
  env: Record<string, string>,
  ...args: string[]
): Promise<Run & { signal: string | null }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/mcore.js', ...args],
      { cwd: repoRoot, env: { ...process.env, CI: '1', ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr, signal: err?.signal ?? null });
      },
    );
  });
}

/** Starts `mcore ...args` in the background; `done` settles when it exits. */
export function spawnMcore(...args: string[]): {
  pid: number;
  kill(signal: NodeJS.Signals): void;
  done: Promise<Run>;
} {
  let child: ReturnType<typeof execFile> | undefined;
  const done = new Promise<Run>((resolve) => {
    child = execFile(
      process.execPath,
      ['bin/mcore.js', ...args],
      { cwd: repoRoot, env: { ...process.env, CI: '1' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
  return { pid: child!.pid!, kill: (signal) => child!.kill(signal), done };
}
