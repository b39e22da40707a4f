/**
 * Runs the `mcore` command from its TypeScript sources (node --import tsx src/cli/main.ts) in the
 * repository root, for CLI tests. The compiled bin/mcore.js is checked on the packed tarball
 * (scripts/pack-check.sh).
 */
import { type ExecFileException, execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

/** node arguments that run the CLI from source; append the command's arguments. */
export const MCORE_ARGV: readonly string[] = [
  '--import',
  pathToFileURL(path.join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href,
  path.join(repoRoot, 'src/cli/main.ts'),
];

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** The signal that ended the process (e.g. SIGKILL from a test seam), else null. */
  signal: NodeJS.Signals | null;
}

/** `mcore ARGS` run in the repository root. */
export function mcore(...args: string[]): Promise<Run> {
  return mcoreIn(repoRoot, ...args);
}

/** Runs the CLI with `cwd` as the current directory (e.g. so that a default cache lands there). */
export function mcoreIn(cwd: string, ...args: string[]): Promise<Run> {
  return runCli(cwd, {}, args);
}

/** `mcore(...args)` with extra environment variables (e.g. a scheduler's shard index, the test seams of src/io/faults.ts). */
export function mcoreWithEnv(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return runCli(repoRoot, env, args);
}

function runCli(cwd: string, env: Record<string, string>, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...MCORE_ARGV, ...args],
      { cwd, env: { ...process.env, CI: '1', ...env } },
      (err, stdout, stderr) => resolve(result(err, stdout, stderr)),
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
      [...MCORE_ARGV, ...args],
      { cwd: repoRoot, env: { ...process.env, CI: '1' } },
      (err, stdout, stderr) => resolve(result(err, stdout, stderr)),
    );
  });
  return { pid: child!.pid!, kill: (signal) => child!.kill(signal), done };
}

function result(err: ExecFileException | null, stdout: string, stderr: string): Run {
  const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
  return { code, stdout, stderr, signal: err?.signal ?? null };
}
