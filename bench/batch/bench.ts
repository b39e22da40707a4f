/**
 * Memory of a long batch score: `scoreBatch` (src/score/batch.ts) over COUNT inputs with one open
 * bundle, printing the process's RSS and heap after 10%, 50% and 100% of them (100, 500 and 1,000
 * with the default count): a flat RSS means nothing accumulates per input. The model is the tiny
 * one (mcore-tiny, T = 16, 32 px, random weights, 8 exemplars); the inputs are COUNT symbolic links
 * to one SynthDive clip, as MP4 (default) or as a frame folder, so each is decoded afresh by
 * ffmpeg or sharp exactly as distinct files would be.
 *
 *   npx tsx bench/batch/bench.ts [--count 1000] [--kind mp4|frames] [--jobs 2]
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { useBackend } from '../../src/backend.ts';
import { sampleClips } from '../../src/data/clips.ts';
import { writeJpeg } from '../../src/data/images.ts';
import { createSynthDive } from '../../src/data/synthdive/index.ts';
import type { Frame } from '../../src/data/types.ts';
import { encodeMp4 } from '../../src/data/video.ts';
import { modelConfig } from '../../src/model/config.ts';
import { mcoreSpecs } from '../../src/model/mcore.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import { scoreBatch } from '../../src/score/batch.ts';
import { listBatchInputs } from '../../src/score/batch-inputs.ts';
import { exportBundle } from '../../src/score/export.ts';
import { loadBundle } from '../../src/score/scorer.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const COUNT = Number(arg('--count', '1000'));
const KIND = arg('--kind', 'mp4');
const JOBS = Number(arg('--jobs', '2'));
const log = (s: string) => process.stdout.write(`${s}\n`);
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  await useBackend('wasm');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-bench-batch-'));
  try {
    const base = modelConfig('mcore-tiny');
    const cfg = { ...base, frames: 16, imageSize: 32 };
    const params = initParams(mcoreSpecs(cfg, { backbone: true }), createRng(1));
    const ds = createSynthDive({ seed: 3, clips: 12, width: 32, height: 32 });
    const train = sampleClips(ds, cfg.frames)
      .filter((c) => c.info.split === 'train')
      .slice(0, 8);
    const frames = new Map<string, Frame[]>();
    for (const c of train) frames.set(c.key, await Promise.all(c.frames.map((i) => ds.loadFrame(c.key, i))));
    const bundleDir = path.join(dir, 'bundle');
    await exportBundle(bundleDir, params, {
      model: cfg,
      scoreScale: 1,
      stageNames: ds.stageNames,
      exemplars: train,
      loadFrames: async (key) => frames.get(key)!,
    });
    disposeParams(params);

    // One clip, as an MP4 or a frame folder; COUNT links to it.
    const clip = ds.clips[0];
    const all: Frame[] = [];
    for (let i = 0; i < clip.numFrames; i++) all.push(await ds.loadFrame(clip.key, i));
    let source: string;
    if (KIND === 'frames') {
      source = path.join(dir, 'clip');
      await mkdir(source);
      await Promise.all(
        all.map((f, i) => writeJpeg(path.join(source, `${String(i).padStart(5, '0')}.jpg`), f)),
      );
    } else {
      source = path.join(dir, 'clip.mp4');
      await encodeMp4(all, 25, source);
    }
    const inDir = path.join(dir, 'in');
    await mkdir(inDir);
    const ext = KIND === 'frames' ? '' : '.mp4';
    for (let i = 0; i < COUNT; i++)
      await symlink(source, path.join(inDir, `${String(i).padStart(5, '0')}${ext}`));
    const inputs = await listBatchInputs([inDir]);

    const marks = new Set([Math.round(COUNT / 10), Math.round(COUNT / 2), COUNT]);
    const bundle = await loadBundle(bundleDir);
    const start = process.memoryUsage();
    log(
      `batch of ${COUNT} ${KIND} inputs (${clip.numFrames} frames of 32x32 each), jobs ${JOBS}, node ${process.version}`,
    );
    log(`before: rss ${mib(start.rss)}, heap ${mib(start.heapUsed)}`);
    log('inputs   rss         heap        videos/min');
    const summary = await scoreBatch(bundle, inputs, {
      out: path.join(dir, 'results.jsonl'),
      jobs: JOBS,
      exemplars: 8,
      onProgress: (e) => {
        if (e.kind !== 'input') return;
        const n = e.done + e.failed;
        if (!marks.has(n)) return;
        const m = process.memoryUsage();
        const perMin = (n * 60_000) / e.elapsedMs;
        log(
          `${String(n).padEnd(8)} ${mib(m.rss).padEnd(11)} ${mib(m.heapUsed).padEnd(11)} ${perMin.toFixed(0)}`,
        );
      },
    });
    await bundle.dispose();
    log(
      `done ${summary.done}, failed ${summary.failed}, mean ${summary.meanMs.toFixed(0)} ms/input, ` +
        `${(summary.elapsedMs / 1000) | 0} s`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
