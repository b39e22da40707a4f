/**
 * `npm run bench:score`: mcore's ONNX Runtime scoring path against the PyTorch peer (bench/peer), both on
 * 2 threads, with the same full-size random weights (modelConfig('mcore-regnety002')):
 *
 *   (a) backbone throughput: RegNetY-200MF + 13 GSMs on 96 frames of 112x112, ONNX Runtime vs PyTorch
 *       (frames/s, ratio; the features of both are compared as a check that they run the same model);
 *   (b) end to end: a 5-second 1280x720 MP4 (SynthDive frames upscaled) scored against 10 exemplars from
 *       a full-size bundle: decode -> features -> segmentation -> 10 comparisons. mcore encodes the query
 *       once and batches the 10 comparisons in one scorer run. PyTorch runs twice: the same protocol
 *       (query encoded once, exemplar tokens cached, pairs batched: the engine speed-up) and the
 *       reference's way, the whole model on every (query, exemplar) pair (the protocol speed-up).
 *
 * Targets: (a) >= 5x PyTorch's frames/s; (b) < 0.5 s per video on 2 cores. (a) also prints the backbone's
 * float32 work, the GFLOP/s each engine reaches, and the machine's float32 peak (a 2048^2 matrix product in
 * PyTorch): the bound on any float32 speed-up over PyTorch here. Prints the load average
 * before and after (the machine may be shared). Options: --runs N (default 5), --no-peer.
 *
 *   npm run bench:score
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { useBackend } from '../../src/backend.ts';
import { sampleClips } from '../../src/data/clips.ts';
import { createSynthDive } from '../../src/data/synthdive/index.ts';
import type { Frame } from '../../src/data/types.ts';
import { encodeMp4, ffmpegPath } from '../../src/data/video.ts';
import { featureDim, modelConfig } from '../../src/model/config.ts';
import { mcoreSpecs } from '../../src/model/mcore.ts';
import { disposeParams, initParams, type Params } from '../../src/model/params.ts';
import { backboneMacs } from '../../src/model/summary.ts';
import { saveWeights } from '../../src/model/weights.ts';
import { exportBackbone } from '../../src/onnx/export.ts';
import { createSession, dispose, runBackbone } from '../../src/onnx/runtime.ts';
import { createRng } from '../../src/rng.ts';
import { exportBundle } from '../../src/score/export.ts';
import { loadBundle, type ScoreResult } from '../../src/score/scorer.ts';
import { randomizeIdentityParts } from '../random-params.ts';

const THREADS = 2;
const PYTHON = '/usr/bin/python3';
const PEER = path.join(import.meta.dirname, 'peer_score.py');
const argv = process.argv.slice(2);
const RUNS = Number(argv[argv.indexOf('--runs') + 1] ?? 5) || 5;
const WITH_PEER = !argv.includes('--no-peer');

const log = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function peer(args: string[]): Record<string, number> {
  const r = spawnSync(PYTHON, [PEER, ...args, '--threads', String(THREADS)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch peer failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Full-size parameters with their spec'd init; GSM gates and BN statistics randomised (no identity parts). */
function randomParams(): Params {
  const cfg = modelConfig('mcore-regnety002');
  const specs = mcoreSpecs(cfg, { backbone: true });
  const params = initParams(specs, createRng(0));
  randomizeIdentityParts(params, specs);
  return params;
}

/** A 5 s, 25 fps, 1280x720 H.264 clip: a SynthDive dive rendered at 320x180, upscaled, looped to 125 frames. */
async function makeVideo(file: string): Promise<void> {
  const ds = createSynthDive({ seed: 7, clips: 1, width: 320, height: 180 });
  const clip = ds.clips[0];
  async function* frames(): AsyncGenerator<Frame> {
    for (let i = 0; i < 125; i++) {
      const f = ds.loadFrameSync(clip.key, i % clip.numFrames);
      const data = await sharp(f.data, { raw: { width: f.width, height: f.height, channels: 3 } })
        .resize(1280, 720, { fit: 'fill' })
        .raw()
        .toBuffer();
      yield { width: 1280, height: 720, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    }
  }
  await encodeMp4(frames(), 25, file, { crf: 23 });
}

async function main(): Promise<void> {
  await useBackend('wasm');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  log(`mcore bench:score — ${os.cpus().length} x ${cpu}; ${THREADS} threads for ONNX Runtime and PyTorch`);
  log(`load average before: ${loadavg()}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-bench-score-'));
  const cfg = modelConfig('mcore-regnety002');
  const T = cfg.frames;
  const S = cfg.imageSize;
  const D = featureDim(cfg);
  const params = randomParams();
  const weights = path.join(dir, 'weights.safetensors');
  await saveWeights(weights, params, mcoreSpecs(cfg, { backbone: true }));

  // (a) backbone throughput -------------------------------------------------------------------------
  const session = await createSession(exportBackbone(params, cfg.backbone, { frames: T }), {
    threads: THREADS,
  });
  const rng = createRng(2);
  const frames = Float32Array.from({ length: T * 3 * S * S }, () => rng.normal());
  const framesFile = path.join(dir, 'frames.f32');
  await writeFile(framesFile, frames);
  let features = await runBackbone(session, { data: frames, dims: [T, 3, S, S] });
  await runBackbone(session, { data: frames, dims: [T, 3, S, S] });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    features = await runBackbone(session, { data: frames, dims: [T, 3, S, S] });
    times.push(performance.now() - t0);
  }
  await dispose(session);
  const ortMs = median(times);
  const ortFps = T / (ortMs / 1000);
  const featuresFile = path.join(dir, 'features.f32');
  await writeFile(featuresFile, features.data);
  log(`\n(a) backbone, ${T} frames ${S}x${S}, features [1, ${T}, ${D}]`);
  log(`  ONNX Runtime: ${ortMs.toFixed(1)} ms (median of ${RUNS}) = ${ortFps.toFixed(1)} frames/s`);
  let torchFps = Number.NaN;
  if (WITH_PEER) {
    const p = peer([
      'backbone',
      '--weights',
      weights,
      '--frames',
      framesFile,
      '--features',
      featuresFile,
      '--runs',
      '3',
    ]);
    torchFps = p.frames_per_s;
    log(`  PyTorch:      ${p.ms.toFixed(1)} ms (median of ${p.runs}) = ${torchFps.toFixed(1)} frames/s`);
    log(`  ratio ONNX Runtime / PyTorch: ${(ortFps / torchFps).toFixed(2)}x (target >= 5x)`);
    log(`  features max |ORT - PyTorch| = ${p.max_abs_diff.toExponential(2)}`);
    // Roofline: the float32 work of the backbone against this machine's float32 matrix-product peak.
    const macs = backboneMacs(cfg.backbone, S);
    const gflop = (2 * T * (macs.convs + macs.gsm)) / 1e9;
    const peak = peer(['gemm']).gflops;
    log(
      `  work ${gflop.toFixed(2)} GFLOP per ${T} frames: ONNX Runtime ${(gflop / (ortMs / 1000)).toFixed(0)} GFLOP/s, ` +
        `PyTorch ${(gflop / (p.ms / 1000)).toFixed(0)} GFLOP/s; float32 peak (2048^2 matmul, PyTorch) ${peak} GFLOP/s`,
    );
    log(
      `  at that peak the backbone would take ${((1000 * gflop) / peak).toFixed(1)} ms: ` +
        `at most ${(p.ms / ((1000 * gflop) / peak)).toFixed(2)}x PyTorch in float32 on this machine`,
    );
  }

  // (b) end to end ----------------------------------------------------------------------------------
  const video = path.join(dir, 'query-720p.mp4');
  await makeVideo(video);
  const ds = createSynthDive({ seed: 3, clips: 16, width: S, height: S });
  const train = sampleClips(ds, T)
    .filter((c) => c.info.split === 'train')
    .slice(0, 10);
  const exemplarFrames = new Map<string, Frame[]>();
  for (const c of train)
    exemplarFrames.set(c.key, await Promise.all(c.frames.map((i) => ds.loadFrame(c.key, i))));
  const bundleDir = path.join(dir, 'bundle');
  const t0 = performance.now();
  await exportBundle(bundleDir, params, {
    model: cfg,
    scoreScale: 1,
    stageNames: ds.stageNames,
    exemplars: train,
    loadFrames: async (key) => exemplarFrames.get(key)!,
    threads: THREADS,
  });
  const exportS = (performance.now() - t0) / 1000;
  disposeParams(params);
  const bundle = await loadBundle(bundleDir, { threads: THREADS });
  await bundle.score(video, { exemplars: 10 }); // warm-up
  const results: ScoreResult[] = [];
  const walls: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t1 = performance.now();
    results.push(await bundle.score(video, { exemplars: 10 }));
    walls.push(performance.now() - t1);
  }
  await bundle.dispose();
  const wall = median(walls);
  const r = results[walls.indexOf(wall)];
  log(
    `\n(b) end to end: 5 s 1280x720 H.264 (125 frames) -> ${T} frames -> 10 exemplars (bundle written in ${exportS.toFixed(1)} s)`,
  );
  log(
    `  mcore (ONNX Runtime): ${(wall / 1000).toFixed(3)} s per video (median of ${RUNS}; target < 0.5 s): ` +
      `decode ${r.timings.decodeMs.toFixed(0)} ms, backbone ${r.timings.backboneMs.toFixed(0)} ms, ` +
      `segmenter ${r.timings.segmenterMs.toFixed(0)} ms, pooling ${r.timings.poolMs.toFixed(1)} ms, ` +
      `scorer ${r.timings.scorerMs.toFixed(1)} ms; score ${r.score.toFixed(4)}`,
  );
  if (WITH_PEER) {
    const u8 = new Uint8Array(r.exemplars.length * T * S * S * 3);
    r.exemplars.forEach((e, i) => {
      exemplarFrames.get(e.key)!.forEach((f, t) => {
        u8.set(f.data, (i * T + t) * S * S * 3);
      });
    });
    const exFile = path.join(dir, 'exemplars.u8');
    await writeFile(exFile, u8);
    const job = path.join(dir, 'job.json');
    await writeFile(
      job,
      JSON.stringify({
        ffmpeg: ffmpegPath(),
        video,
        indices: r.input.sampled,
        exemplarScores: r.exemplars.map((e) => e.score),
        exemplarFrames: exFile,
      }),
    );
    const p = peer(['e2e', '--weights', weights, '--job', job]);
    log(
      `  PyTorch, reference protocol (pair re-encoded per exemplar): ${p.seconds.toFixed(2)} s per video ` +
        `(decode ${p.decode_s.toFixed(2)} s, model ${p.model_s.toFixed(2)} s); score ${p.score.toFixed(4)}`,
    );
    const fair = peer(['e2e-cached', '--weights', weights, '--job', job, '--runs', String(RUNS)]);
    log(
      `  PyTorch, mcore's protocol (query encoded once, exemplar tokens cached, pairs batched): ` +
        `${fair.seconds.toFixed(3)} s per video (median of ${RUNS}; decode ${fair.decode_s.toFixed(3)} s, ` +
        `model ${fair.model_s.toFixed(3)} s); score ${fair.score.toFixed(4)}`,
    );
    log(
      `  engine speed-up (same protocol): ${(fair.seconds / (wall / 1000)).toFixed(1)}x in all, ` +
        `${(fair.model_s / ((wall - r.timings.decodeMs) / 1000)).toFixed(1)}x for the model part; ` +
        `protocol speed-up (vs the reference's way): ${(p.seconds / (wall / 1000)).toFixed(1)}x; ` +
        `|score difference| = ${Math.abs(p.score - r.score).toExponential(2)} / ${Math.abs(fair.score - r.score).toExponential(2)}`,
    );
  }
  log(`\nload average after: ${loadavg()}`);
  await rm(dir, { recursive: true, force: true });
}

await main();
