/** Locating and running ffmpeg (a child process, never a shell), and naming the decoder in cache keys. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';
import { McoreError } from '../../errors.ts';
import { spawnViaHelper } from './spawner.ts';

/**
 * The ffmpeg binary. By default the one pinned by the npm package `@ffmpeg-installer/ffmpeg` (the same
 * build on every machine, so decoded frames, and the caches and features made from them, do not differ
 * by machine). `MCORE_FFMPEG=system` uses `ffmpeg` from PATH instead; `MCORE_FFMPEG=/path/to/ffmpeg` that
 * binary. Which one decoded a clip is part of the clip and feature-cache keys (`decoderId`). Throws
 * McoreError('E_BACKEND') saying how to get one.
 */
export function ffmpegPath(): string {
  const choice = process.env.MCORE_FFMPEG ?? '';
  if (choice === '' || choice === 'bundled') {
    try {
      const installer = createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string };
      return installer.path;
    } catch {
      throw new McoreError(
        'E_BACKEND',
        'the pinned ffmpeg (npm package @ffmpeg-installer/ffmpeg) is not installed: reinstall mcore (npm ci), ' +
          'or set MCORE_FFMPEG=system to use ffmpeg from PATH',
      );
    }
  }
  if (choice !== 'system') {
    if (!isFile(choice)) {
      throw new McoreError(
        'E_BACKEND',
        `MCORE_FFMPEG=${choice}: no such file (use 'system', 'bundled' or a path)`,
      );
    }
    return resolve(choice);
  }
  const exe = process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg';
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isFile(join(dir, exe))) return join(dir, exe);
  }
  throw new McoreError(
    'E_BACKEND',
    'MCORE_FFMPEG=system but no ffmpeg on PATH: install one (e.g. `apt install ffmpeg`) or unset MCORE_FFMPEG',
  );
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const decoderIds = new Map<string, string>();

/**
 * The decoder that turns videos into frames, e.g. 'ffmpeg N-47683-g0e8eb07980-static' (its version line):
 * part of the clip-cache and feature-cache keys, so frames decoded by another ffmpeg are never served
 * from a cache. Run once per binary and process.
 */
export function decoderId(): string {
  const bin = ffmpegPath();
  let id = decoderIds.get(bin);
  if (id === undefined) {
    let version = 'unknown';
    try {
      const out = execFileSync(bin, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000 });
      version = /^ffmpeg version (\S+)/m.exec(out)?.[1] ?? 'unknown';
    } catch {
      // decoding will report the problem with the binary
    }
    id = `ffmpeg ${version}`;
    decoderIds.set(bin, id);
  }
  return id;
}

interface FfmpegRun {
  code: number;
  stderr: string;
  stdout: string;
}

/**
 * Runs ffmpeg with `args`; `onStdout` takes stdout chunks (else stdout is collected as text). Without
 * `feed` (decoding, probing) ffmpeg is started by the helper process (spawner.ts: a fork of this process
 * would slow its next inference); with `feed` (encoding, which writes frames to ffmpeg's stdin) by this
 * process.
 */
export function runFfmpeg(
  args: string[],
  opts: { onStdout?: (chunk: Buffer) => void; feed?: (child: ChildProcess) => Promise<void> } = {},
): Promise<FfmpegRun> {
  const bin = ffmpegPath();
  let stderr = '';
  let stdout = '';
  const onStderr = (chunk: Buffer | string): void => {
    stderr = (stderr + chunk.toString()).slice(-65536);
  };
  const onStdout = (chunk: Buffer): void => {
    if (opts.onStdout) opts.onStdout(chunk);
    else stdout += chunk.toString('utf8');
  };
  const cannotRun = (e: NodeJS.ErrnoException): McoreError => {
    const fix = e.code === 'EACCES' ? ` (make it executable: chmod +x ${bin})` : '';
    return new McoreError('E_BACKEND', `cannot run ffmpeg at ${bin}: ${e.message}${fix}`);
  };
  if (!opts.feed) {
    return spawnViaHelper(bin, args, { onStdout, onStderr }).closed.then(
      (code) => ({ code: code ?? 1, stderr, stdout }),
      (e: NodeJS.ErrnoException) => Promise.reject(cannotRun(e)),
    );
  }
  const feed = opts.feed;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr!.on('data', onStderr);
    child.stdout!.on('data', onStdout);
    child.on('error', (e: NodeJS.ErrnoException) => reject(cannotRun(e)));
    const fed = feed(child).catch((e: unknown) => {
      child.kill('SIGKILL');
      return e;
    });
    child.on('close', (code) => {
      void fed.then((e) => {
        if (e instanceof McoreError) reject(e);
        else resolvePromise({ code: code ?? 1, stderr, stdout });
      });
    });
  });
}

/** ffmpeg's reason in one line: the last distinct error lines, without '[demuxer @ 0x..]' and path prefixes. */
export function ffmpegReason(stderr: string, path: string): string {
  const lines: string[] = [];
  for (const raw of stderr.split(/[\r\n]+/)) {
    const line = raw
      .replace(/\[[^\]]* @ 0x[0-9a-f]+\] ?/g, '')
      .replace(/^\[(error|fatal|panic)\] ?/, '')
      .replaceAll(`${path}: `, '')
      .trim();
    if (line && !lines.includes(line)) lines.push(line);
  }
  return lines.slice(-2).join('; ') || 'ffmpeg failed without a message';
}
