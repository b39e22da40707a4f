/**
 * The local server of `mcore serve`: what it serves (page, bundle files, onnxruntime-web's wasm), the
 * cross-origin isolation headers on every answer, and what it refuses (paths leaving their folder,
 * unknown names, other methods). Raw request paths go through node:http so `..` reaches the server
 * unnormalised.
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/serve/server.ts';
import { expectMcoreRejection } from '../helpers/errors.ts';

let tmp: string;
let server: RunningServer;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(rawPath: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: rawPath, method }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'mcore-serve-'));
  await mkdir(path.join(tmp, 'web'));
  await mkdir(path.join(tmp, 'bundle'));
  await writeFile(path.join(tmp, 'web', 'index.html'), '<!doctype html><title>page</title>');
  await writeFile(path.join(tmp, 'web', 'main.js'), 'export {};');
  await writeFile(path.join(tmp, 'bundle', 'manifest.json'), '{"format":"mcore-bundle"}');
  await writeFile(path.join(tmp, 'bundle', 'secret.txt'), 'not a bundle file');
  await writeFile(path.join(tmp, 'outside.txt'), 'outside the web root');
  server = await startServer({
    bundleDir: path.join(tmp, 'bundle'),
    webRoot: path.join(tmp, 'web'),
    port: 0,
  });
});

afterAll(async () => {
  await server?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('startServer', () => {
  it('listens on loopback at a real port when asked for port 0', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
  });

  it('serves the page, the bundle and onnxruntime-web with cross-origin isolation headers', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<title>page</title>');
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const js = await get('/main.js?v=1');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    const manifest = await get('/bundle/manifest.json');
    expect(manifest.status).toBe(200);
    expect(manifest.body.toString()).toBe('{"format":"mcore-bundle"}');
    const wasm = await get('/ort/ort-wasm-simd-threaded.wasm', 'HEAD');
    expect(wasm.status).toBe(200);
    expect(wasm.headers['content-type']).toBe('application/wasm');
    expect(Number(wasm.headers['content-length'])).toBeGreaterThan(1_000_000);
    const loader = await get('/ort/ort-wasm-simd-threaded.mjs');
    expect(loader.status).toBe(200);
    expect(loader.body.length).toBeGreaterThan(1000);
    for (const a of [page, js, manifest, wasm, loader]) {
      expect(a.headers['cross-origin-opener-policy']).toBe('same-origin');
      expect(a.headers['cross-origin-embedder-policy']).toBe('require-corp');
      expect(a.headers['cross-origin-resource-policy']).toBe('same-origin');
    }
  });

  it('refuses paths that leave their folder, unknown names and other methods', async () => {
    for (const p of [
      '/../outside.txt',
      '/%2e%2e/outside.txt',
      '/bundle/../outside.txt',
      '/..%2foutside.txt',
    ]) {
      const a = await get(p);
      expect(a.status, p).toBe(403);
      expect(a.body.toString()).not.toContain('outside the web root');
    }
    expect((await get('/bundle/%2e%2e%2f..%2foutside.txt')).status).toBe(403);
    expect((await get('/bundle/secret.txt')).status).toBe(404);
    expect((await get('/ort/../../package.json')).status).toBe(403);
    expect((await get('/ort/package.json')).status).toBe(404);
    expect((await get('/missing.js')).status).toBe(404);
    expect((await get('/%00')).status).toBe(400);
    expect((await get('/%E0%A4%A')).status).toBe(400);
    const post = await get('/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    // Errors carry the isolation headers too.
    expect(post.headers['cross-origin-embedder-policy']).toBe('require-corp');
  });

  it('refuses a port in use with a coded error naming it', async () => {
    await expectMcoreRejection(
      startServer({ bundleDir: path.join(tmp, 'bundle'), port: server.port }),
      'E_INPUT',
      `port ${server.port} on 127.0.0.1 is in use`,
      '--port',
    );
  });

  it('close() stops listening', async () => {
    const other = await startServer({
      bundleDir: path.join(tmp, 'bundle'),
      webRoot: path.join(tmp, 'web'),
      port: 0,
    });
    const port = other.port;
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    await other.close();
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
