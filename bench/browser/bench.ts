/**
 * `npx tsx bench/browser/bench.ts`: scoring one 96-frame clip in the page (onnxruntime-web, wasm,
 * threads on: the page is cross-origin isolated) against onnxruntime-node on the same bundle, in the
 * same run. The bundle is full size with random weights (modelConfig('mcore-regnety002'): T = 96
 * frames of 112 x 112, 10 exemplars); the clip is a 96-frame 320 x 180 H.264 MP4 (SynthDive), so every
 * frame is sampled.
 *
 * The model part (backbone + segmenter + pooling + scorer, the core's own timings) is compared; decoding
 * is reported separately (ffmpeg in Node, WebCodecs in the page). Target: the page within 2x of Node's
 * model time. Both sides run 2 threads on a 2-core machine (the page: min(4, hardwareConcurrency)).
 * Needs Chromium (MCORE_CHROMIUM, default /usr/bin/chromium). Options: --runs N (default 5).
 *
 * The ceiling: a 2048 x 2048 x 2048 MatMul (the op that runs nearest each engine's float32 peak) timed in
 * the page (bench/browser/peak-page.ts) and in onnxruntime-node, same run, 2 threads each. The model
 * part cannot come nearer Node than that ratio unless the page's kernels beat onnxruntime-web's own GEMM.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import * as ortNode from 'onnxruntime-node';
import { type BrowserContext, chromium } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.mjs';
import { useBackend } from '../../src/backend.ts';
import { sampleClips } from '../../src/data/clips.ts';
import { createSynthDive } from '../../src/data/synthdive/index.ts';
import type { Frame } from '../../src/data/types.ts';
import { encodeMp4 } from '../../src/data/video.ts';
import { modelConfig } from '../../src/model/config.ts';
import { mcoreSpecs } from '../../src/model/mcore.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { backboneMacs } from '../../src/model/summary.ts';
import { GraphBuilder } from '../../src/onnx/graph.ts';
import { createRng } from '../../src/rng.ts';
import { exportBundle } from '../../src/score/export.ts';
import { loadBundle, type ScoreResult } from '../../src/score/scorer.ts';
import { startServer } from '../../src/serve/server.ts';

const THREADS = 2;
const CHROMIUM = process.env.MCORE_CHROMIUM ?? '/usr/bin/chromium';
const argv = process.argv.slice(2);
const RUNS = Number(argv[argv.indexOf('--runs') + 1] ?? 5) || 5;

const log = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const modelMs = (t: ScoreResult['timings']) => t.backboneMs + t.segmenterMs + t.poolMs + t.scorerMs;
const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

// Browser globals inside page.evaluate callbacks (this file is type-checked with Node's lib).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  getElementById(
    id: string,
  ): { textContent: string | null; dataset: Record<string, string | undefined> } | null;
};

const PEAK_N = 2048;

/** The MatMul probe: ms per run in the page and in onnxruntime-node (medians of RUNS), 2 threads each. */
async function peakGemm(dir: string, context: BrowserContext): Promise<{ page: number; node: number }> {
  const root = path.join(dir, 'peak');
  await mkdir(root, { recursive: true });
  const g = new GraphBuilder('matmul');
  const x = g.input('x', [PEAK_N, PEAK_N]);
  const w = g.initializer(
    'w',
    Float32Array.from({ length: PEAK_N * PEAK_N }, (_, i) => Math.cos(i) * 0.01),
    [PEAK_N, PEAK_N],
  );
  g.output(g.node('MatMul', [x, w], {}, 'y'), [PEAK_N, PEAK_N]);
  const model = path.join(root, 'matmul.onnx');
  await writeFile(model, g.toModel());

  const session = await ortNode.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const input = new ortNode.Tensor(
    'float32',
    Float32Array.from({ length: PEAK_N * PEAK_N }, (_, i) => Math.sin(i)),
    [PEAK_N, PEAK_N],
  );
  const nodeTimes: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const t0 = performance.now();
    await session.run({ x: input });
    if (i > 0) nodeTimes.push(performance.now() - t0);
  }
  await session.release();

  await esbuild.build({
    entryPoints: [path.join(import.meta.dirname, 'peak-page.ts')],
    outfile: path.join(root, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    conditions: ['onnxruntime-web-use-extern-wasm'],
    logLevel: 'warning',
  });
  await writeFile(
    path.join(root, 'index.html'),
    '<!doctype html><script type="module" src="main.js"></script>\n',
  );
  const server = await startServer({ bundleDir: root, webRoot: root, port: 0 });
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}?n=${PEAK_N}&runs=${RUNS}&threads=${THREADS}`);
    await page.waitForFunction(() => document.body.dataset.times ?? document.body.dataset.error, null, {
      timeout: 300_000,
    });
    const got = await page.evaluate(() => ({ ...document.body.dataset }));
    if (got.error) throw new Error(`the peak probe failed in the page: ${got.error}`);
    await page.close();
    return { page: median(JSON.parse(got.times!) as number[]), node: median(nodeTimes) };
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  await useBackend('wasm');
  log(`mcore bench/browser — ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}`);
  log(`load average before: ${loadavg()}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-bench-browser-'));
  const cfg = modelConfig('mcore-regnety002');
  const T = cfg.frames;
  const S = cfg.imageSize;

  // The clip: 96 frames of a SynthDive dive at 320 x 180 (looped if the dive is shorter).
  const clipDs = createSynthDive({ seed: 7, clips: 1, width: 320, height: 180 });
  const c0 = clipDs.clips[0];
  const video = path.join(dir, 'clip-96.mp4');
  await encodeMp4(
    Array.from({ length: T }, (_, i): Frame => clipDs.loadFrameSync(c0.key, i % c0.numFrames)),
    25,
    video,
    { crf: 23 },
  );

  // The bundle: full-size random weights, 10 exemplars.
  const params = initParams(mcoreSpecs(cfg, { backbone: true }), createRng(0));
  const ds = createSynthDive({ seed: 3, clips: 16, width: S, height: S });
  const train = sampleClips(ds, T)
    .filter((c) => c.info.split === 'train')
    .slice(0, 10);
  const bundleDir = path.join(dir, 'bundle');
  await exportBundle(bundleDir, params, {
    model: cfg,
    scoreScale: 1,
    stageNames: ds.stageNames,
    exemplars: train,
    loadFrames: (key) =>
      Promise.all(train.find((c) => c.key === key)!.frames.map((i) => ds.loadFrame(key, i))),
    threads: THREADS,
  });
  disposeParams(params);

  // Node: onnxruntime-node, 2 threads.
  const bundle = await loadBundle(bundleDir, { threads: THREADS });
  await bundle.score(video, { exemplars: 10 });
  const nodeRuns: ScoreResult[] = [];
  for (let i = 0; i < RUNS; i++) nodeRuns.push(await bundle.score(video, { exemplars: 10 }));
  await bundle.dispose();

  // The page: onnxruntime-web in Chromium, the same bundle and clip.
  const webRoot = await buildWeb({ outdir: path.join(dir, 'web') });
  const server = await startServer({ bundleDir, webRoot, port: 0 });
  const context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const pageRuns: ScoreResult[] = [];
  let runtime = '';
  let peak = { page: Number.NaN, node: Number.NaN };
  try {
    const page = await context.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => ['ready', 'broken'].includes(document.body.dataset.state ?? ''), null, {
      timeout: 300_000,
    });
    runtime = (await page.textContent('#runtime')) ?? '';
    for (let i = 0; i <= RUNS; i++) {
      await page.evaluate(() => {
        document.body.dataset.state = 'submitted';
      });
      await page.setInputFiles('#video', video);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, {
        timeout: 300_000,
      });
      const out = await page.evaluate(() => ({
        state: document.body.dataset.state,
        message: document.getElementById('message')!.textContent,
        result: document.getElementById('result')!.dataset.result,
      }));
      if (out.state !== 'done') throw new Error(`the page did not score the clip: ${out.message}`);
      if (i > 0) pageRuns.push(JSON.parse(out.result!) as ScoreResult); // run 0 warms up
    }
    await page.close();
    peak = await peakGemm(dir, context);
  } finally {
    await context.close();
    await server.close();
  }

  const node = median(nodeRuns.map((r) => modelMs(r.timings)));
  const web = median(pageRuns.map((r) => modelMs(r.timings)));
  const part = (rs: ScoreResult[], k: keyof ScoreResult['timings']) =>
    median(rs.map((r) => r.timings[k])).toFixed(0);
  const row = (name: string, rs: ScoreResult[]) =>
    `  ${name}: model ${median(rs.map((r) => modelMs(r.timings))).toFixed(0)} ms (backbone ${part(rs, 'backboneMs')}, ` +
    `segmenter ${part(rs, 'segmenterMs')}, pool ${part(rs, 'poolMs')}, scorer ${part(rs, 'scorerMs')}); ` +
    `decode ${part(rs, 'decodeMs')} ms; score ${rs[0].score.toFixed(4)}`;
  log(`\none ${T}-frame 320x180 H.264 clip, T = ${T} at ${S}x${S}, 10 exemplars; medians of ${RUNS} runs`);
  log(row(`Node (onnxruntime-node, ${THREADS} threads)`, nodeRuns));
  log(row(`page (${runtime})`, pageRuns));
  log(`  model part page / Node: ${(web / node).toFixed(2)}x (target <= 2x)`);
  log(
    `  transitions Node ${JSON.stringify(nodeRuns[0].transitions)}, page ${JSON.stringify(pageRuns[0].transitions)}; ` +
      `|score difference| ${Math.abs(nodeRuns[0].score - pageRuns[0].score).toExponential(2)}`,
  );
  const gflops = (ms: number) => ((2 * PEAK_N ** 3) / 1e9 / (ms / 1000)).toFixed(0);
  log(
    `  ceiling: ${PEAK_N}^3 MatMul, page ${peak.page.toFixed(0)} ms (${gflops(peak.page)} GFLOP/s), ` +
      `Node ${peak.node.toFixed(0)} ms (${gflops(peak.node)} GFLOP/s): page / Node ${(peak.page / peak.node).toFixed(2)}x`,
  );
  // What the page's backbone would need for the model part to be within 2x of Node's, against the page's
  // MatMul rate (the fastest float32 work onnxruntime-web does here).
  const macs = backboneMacs(cfg.backbone, S);
  const backboneGflop = (2 * T * (macs.convs + macs.gsm)) / 1e9;
  const pageRest = web - median(pageRuns.map((r) => r.timings.backboneMs));
  const budget = 2 * node - pageRest;
  log(
    `  within 2x the page's backbone (${backboneGflop.toFixed(2)} GFLOP) would have ${budget.toFixed(0)} ms: ` +
      `${budget > 0 ? `${(backboneGflop / (budget / 1000)).toFixed(0)} GFLOP/s` : 'no time left'}, against the page's ` +
      `MatMul ${gflops(peak.page)} GFLOP/s`,
  );
  log(`load average after: ${loadavg()}`);
  await rm(dir, { recursive: true, force: true });
}

await main();
