#!/usr/bin/env node
// Builds the package into dist/: the TypeScript compiler emits ESM + .d.ts for every file of src/,
// then esbuild replaces dist/model/stock-gradients.js with a bundle of the tfjs-core gradient modules
// it imports (their extensionless relative imports resolve only under a bundler; see that file).
// Run by `npm run build` and by `prepare` (so `npm ci` on a clone builds it).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);

rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

await esbuild.build({
  entryPoints: [path.join(root, 'src/model/stock-gradients.ts')],
  outfile: path.join(root, 'dist/model/stock-gradients.js'),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  allowOverwrite: true,
  plugins: [
    {
      // tfjs-core's public entry stays an import (one engine); its deep modules are bundled.
      name: 'tfjs-core-entry-external',
      setup(build) {
        build.onResolve({ filter: /^@tensorflow\/tfjs-core$/ }, (a) => ({ path: a.path, external: true }));
      },
    },
  ],
});

// ---- The scoring page of `mcore serve` (web/ -> dist/web/; issue 12): see scripts/build-web.mjs.
async function buildPage() {
  const { buildWeb } = await import('./build-web.mjs');
  await buildWeb({ root, outdir: path.join(root, 'dist', 'web') });
}
await buildPage();
