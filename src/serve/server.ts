/**
 * The local server of `mcore serve`: the scoring page (dist/web, built from web/ by
 * scripts/build-web.mjs), one bundle's files and onnxruntime-web's wasm files, all from this machine,
 * so the page works offline. Every response carries the cross-origin isolation headers
 * (COOP same-origin + COEP require-corp) under which a browser lets onnxruntime-web run threads.
 *
 *   GET /                 -> <webRoot>/index.html
 *   GET /<file>           -> <webRoot>/<file>            (the built page's scripts and styles)
 *   GET /bundle/<name>    -> <bundleDir>/<name>          (the six files of BUNDLE_FILES only)
 *   GET /ort/<name>       -> onnxruntime-web's dist/     (ort-wasm*.wasm / ort-wasm*.mjs only)
 *
 * Paths that leave their folder (`..`, encoded or not), NUL bytes and unknown names are refused (403,
 * 400, 404); methods other than GET and HEAD get 405. Nothing is listed.
 *
 * @example
 * const s = await startServer({ bundleDir: 'mcore-demo/bundle', port: 0 });
 * s.url;            // 'http://127.0.0.1:41234/'
 * await s.close();
 */
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { McoreError } from '../errors.ts';
import { BUNDLE_FILES } from '../score/bundle-format.ts';

export interface ServeOptions {
  /** The scoring bundle folder (mcore export); validated by the caller. */
  bundleDir: string;
  /** The built page (default: the package's dist/web, see packageWebRoot). */
  webRoot?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** Interface (default 127.0.0.1, loopback only). */
  host?: string;
}

export interface RunningServer {
  /** The page's address, e.g. 'http://127.0.0.1:8080/'. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/** Headers of every response: cross-origin isolation (threads in onnxruntime-web), no sniffing. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

const ORT_FILE = /^ort-wasm[\w.-]*\.(wasm|mjs)$/;
const BUNDLE_NAMES: ReadonlySet<string> = new Set(Object.values(BUNDLE_FILES));

/** The root of the installed mcore package (the folder holding its package.json). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('mcore: package.json not found above the server module');
    dir = up;
  }
  return dir;
}

/** Where the built page lives: <package>/dist/web (shipped in the npm package; `npm run build` makes it). */
export function packageWebRoot(): string {
  return path.join(packageRoot(), 'dist', 'web');
}

/** onnxruntime-web's dist/ folder (its wasm binaries and their loaders). */
export function ortDistDir(): string {
  try {
    const wasm = createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
    return path.dirname(wasm);
  } catch {
    throw new McoreError(
      'E_BACKEND',
      'onnxruntime-web is not installed (the page runs the bundle with it); reinstall mcore or `npm install onnxruntime-web`',
    );
  }
}

/** `rel` (already URL-decoded) inside `root`, or undefined when it would leave it. */
function inside(root: string, rel: string): string | undefined {
  const abs = path.resolve(root, `.${path.posix.sep}${rel}`);
  return abs === root || abs.startsWith(root + path.sep) ? abs : undefined;
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${text}\n`);
}

async function sendFile(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) return send(res, 404, 'not found');
    size = st.size;
  } catch {
    return send(res, 404, 'not found');
  }
  res.writeHead(200, {
    ...ISOLATION_HEADERS,
    'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': String(size),
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/** Starts the server; resolves once it listens. A port in use or an address that cannot be bound: E_INPUT. */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const bundleDir = path.resolve(o.bundleDir);
  const webRoot = path.resolve(o.webRoot ?? packageWebRoot());
  const ortDir = ortDistDir();
  const host = o.host ?? '127.0.0.1';
  const wantPort = o.port ?? 8080;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'method not allowed');
    }
    const raw = (req.url ?? '/').split('?')[0].split('#')[0];
    let rel: string;
    try {
      rel = decodeURIComponent(raw);
    } catch {
      return send(res, 400, 'bad request path');
    }
    if (rel.includes('\0') || !rel.startsWith('/')) return send(res, 400, 'bad request path');
    if (rel.split(/[\\/]/).includes('..')) return send(res, 403, 'forbidden');
    if (rel.startsWith('/bundle/')) {
      const name = rel.slice('/bundle/'.length);
      if (!BUNDLE_NAMES.has(name)) return send(res, 404, 'not a bundle file');
      return sendFile(req, res, path.join(bundleDir, name));
    }
    if (rel.startsWith('/ort/')) {
      const name = rel.slice('/ort/'.length);
      if (!ORT_FILE.test(name)) return send(res, 404, 'not an onnxruntime-web file');
      return sendFile(req, res, path.join(ortDir, name));
    }
    const file = inside(webRoot, rel === '/' ? '/index.html' : rel);
    if (file === undefined) return send(res, 403, 'forbidden');
    return sendFile(req, res, file);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, 'internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'EADDRINUSE'
          ? `port ${wantPort} on ${host} is in use; pass another --port (0 picks a free one)`
          : `cannot listen on ${host}:${wantPort} (${e.message}); check --host and --port`;
      reject(new McoreError('E_INPUT', why));
    });
    server.listen(wantPort, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}/`,
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
