// Builds the scoring page of `mcore serve` (web/, TypeScript) into dist/web/: esbuild bundles
// web/main.ts with the scoring core, onnxruntime-web's wasm entry (its .wasm/.mjs binaries stay in
// node_modules and the server hands them out under /ort/) and mediabunny (MP4/WebM demuxing), and
// copies web/index.html. Called at the end of scripts/build.mjs, by `mcore serve` run from a source
// checkout without a built page, and by the browser tests (which build into a folder of their own).
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';

/**
 * Builds the page into `outdir` (default <root>/dist/web); returns the folder.
 * @param {{ root?: string, outdir?: string }} [o]
 */
export async function buildWeb(o = {}) {
  const root = o.root ?? path.resolve(import.meta.dirname, '..');
  const outdir = o.outdir ?? path.join(root, 'dist', 'web');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(root, 'web', 'main.ts')],
    outfile: path.join(outdir, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    // onnxruntime-web's entry that loads its wasm from env.wasm.wasmPaths (served locally) instead of
    // inlining a copy of the binary into the bundle.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(path.join(root, 'web', 'index.html'), path.join(outdir, 'index.html'));
  return outdir;
}
