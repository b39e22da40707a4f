/**
 * `mcore serve`: refuses a missing bundle and a bad port in one line (exit 2); on a real bundle it
 * prints its address (port 0: a free one), serves the page and the bundle with the cross-origin
 * isolation headers, and stops cleanly on SIGINT and on SIGTERM (exit 0). No browser needed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestBundle, type TestBundle } from '../helpers/bundle.ts';
import { MCORE_ARGV, mcore, repoRoot } from '../helpers/cli.ts';

let tmp: string;
let tb: TestBundle;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mcore-cli-serve-'));
  tb = await makeTestBundle(tmp);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs `mcore serve` on the bundle, calls `during(url)`, then sends `signal`; returns the exit and output. */
function serveOnce(
  signal: NodeJS.Signals,
  during: (url: string) => Promise<void>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...MCORE_ARGV, 'serve', '--model', tb.bundleDir, '--port', '0'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let started = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
      if (m && !started) {
        started = true;
        during(m[1]).then(
          () => child.kill(signal),
          (e: unknown) => {
            child.kill('SIGKILL');
            reject(e);
          },
        );
      }
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('mcore serve', () => {
  it('refuses a folder that is not a bundle, in one line', async () => {
    const r = await mcore('serve', '--model', path.join(tmp, 'nothing-here'), '--port', '0');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^mcore: .*nothing-here: not a scoring bundle .*mcore export/);
  });

  it('refuses a bad port, saying which ports are allowed', async () => {
    const r = await mcore('serve', '--model', tb.bundleDir, '--port', '70000');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "mcore: --port must be an integer from 0 to 65535 (0: any free port), got '70000'",
    );
  });

  it('serves the page and the bundle with isolation headers; SIGINT stops it (exit 0)', async () => {
    const r = await serveOnce('SIGINT', async (url) => {
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script type="module" src="main.js">');
      expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      const manifest = await fetch(new URL('bundle/manifest.json', url));
      expect(await manifest.text()).toBe(await readFile(path.join(tb.bundleDir, 'manifest.json'), 'utf8'));
      const js = await fetch(new URL('main.js', url));
      expect(js.status).toBe(200);
    });
    // (A checkout without dist/web says once that it builds the page.)
    expect(r.stderr).not.toMatch(/internal error|warning/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/serving .*bundle \(36 exemplars\) at http:\/\/127\.0\.0\.1:\d+\//);
    expect(r.stdout.trim().endsWith('stopped')).toBe(true);
  });

  it('stops on SIGTERM too', async () => {
    const r = await serveOnce('SIGTERM', async (url) => {
      expect((await fetch(url)).status).toBe(200);
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('stopped');
  });
});
