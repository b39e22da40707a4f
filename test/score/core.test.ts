/**
 * The scoring core is runtime-neutral: bundled for a browser by esbuild, it resolves no Node built-in
 * and pulls in no Node-only package (onnxruntime-node, tfjs, sharp, ffmpeg). The Node scorer, bundled the
 * same way, fails, which shows the check can fail.
 */
import path from 'node:path';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.ts';

const NODE_ONLY = /^(onnxruntime-node|@tensorflow\/|sharp|@img\/|@ffmpeg-installer\/|tsx)/;

async function browserBundle(entry: string) {
  return esbuild.build({
    entryPoints: [path.join(repoRoot, entry)],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
}

/** Packages (node_modules/<name>) among a build's inputs. */
function packagesOf(inputs: Record<string, unknown>): string[] {
  const names = Object.keys(inputs)
    .filter((f) => f.includes('node_modules/'))
    .map((f) => {
      const parts = f.slice(f.lastIndexOf('node_modules/') + 'node_modules/'.length).split('/');
      return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    });
  return [...new Set(names)].sort();
}

describe('runtime-neutral scoring core', () => {
  it('bundles for a browser with no Node built-in and no Node-only package', async () => {
    const r = await browserBundle('src/score/core.ts');
    expect(r.errors).toEqual([]);
    const packages = packagesOf(r.metafile.inputs);
    expect(packages.filter((p) => NODE_ONLY.test(p))).toEqual([]);
    // Only the schema library is bundled; onnxruntime-common is used for types alone.
    expect(packages).toEqual(['zod']);
    const own = Object.keys(r.metafile.inputs).filter((f) => f.startsWith('src/'));
    expect(own).toContain('src/score/scoring.ts');
    expect(own).not.toContain('src/score/scorer.ts');
  });

  it('the Node scorer does not bundle for a browser (the check can fail)', async () => {
    const failure = await browserBundle('src/score/scorer.ts').then(
      () => undefined,
      (e: { errors?: { text: string }[] }) => e.errors ?? [],
    );
    expect(failure).toBeDefined();
    expect(failure!.map((e) => e.text).join('\n')).toMatch(/node:(fs|path|child_process)|Could not resolve/);
  });
});
