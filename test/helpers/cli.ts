/**
 * Runs the `mcore` command from its TypeScript sources (node --import tsx src/cli/main.ts) in the
 * repository root, for CLI tests. The compiled bin/mcore.js is checked on the packed tarball
 * (scripts/pack-check.sh).
 */
import { execFile } from 'node:child_process';
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
}

/** `mcore ARGS` run in the repository root. */
export function mcore(...args: string[]): Promise<Run> {
  return mcoreIn(repoRoot, ...args);
}

/** Runs the CLI with `cwd` as the current directory (e.g. so that a default cache lands there). */
export function mcoreIn(cwd: string, ...args: string[]): Promise<Run> {
  return runCli(cwd, {}, args);
}

/** `mcore(...args)` with extra environment variables (e.g. a scheduler's shard index). */
export function mcoreWithEnv(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return runCli(repoRoot, env, args);
}

function runCli(cwd: string, env: Record<string, string>, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...MCORE_ARGV, ...args],
      { cwd, env: { ...process.env, CI: '1', ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
