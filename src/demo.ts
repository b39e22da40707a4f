/**
 * `mcore demo`: the first thing a new user runs. On SynthDive (embedded, no download) it
 *   1. trains MCoRe end to end (tiny RegNetY + GSM backbone, segmenter, decoder, regressor),
 *   2. encodes every clip once with that backbone (the shared features),
 *   3. trains MCoRe and the baselines head-only on the same features (plain regression, CoRe-style
 *      whole-video contrastive regression, MCoRe without L_cont, MCoRe with equal stages),
 *   4. evaluates all of them with the exemplar protocol and writes results.json and a report.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { type RunConfig, resolveConfig } from './config.ts';
import { featureSource, frameSource, type SampledClip, sampleClips } from './data/clips.ts';
import { openSynthDive } from './data/open.ts';
import type { StagedDataset } from './data/types.ts';
import { type EvalMetrics, type EvalResult, evaluate } from './eval/evaluate.ts';
import { coreMethod, regressionMethod } from './methods/baselines.ts';
import { mcoreMethod } from './methods/mcore.ts';
import { featureDim } from './model/config.ts';
import { disposeParams, initParams, type Params } from './model/params.ts';
import { createRng } from './rng.ts';
import { writeFileAtomic } from './train/checkpoint.ts';
import { extractFeatures } from './train/features.ts';
import type { Method } from './train/method.ts';
import { type EpochRecord, type TrainEvent, train } from './train/trainer.ts';

export interface DemoOptions {
  out: string;
  seed: number;
  /** A smoke-test size: about 2 minutes on 2 cores. */
  quick: boolean;
  onProgress?: (e: DemoEvent) => void;
}

export type DemoEvent =
  | { kind: 'phase'; name: string; detail: string }
  | { kind: 'train'; method: string; event: TrainEvent }
  | { kind: 'features'; done: number; total: number }
  | { kind: 'result'; method: string; metrics: EvalMetrics; seconds: number };

export interface DemoSettings {
  clips: number;
  size: number;
  e2eEpochs: number;
  headEpochs: number;
  config: RunConfig;
}

/** The demo's defaults, tuned to finish in <= 10 minutes (quick: <= 2) on 2 CPU cores. */
export function demoSettings(seed: number, quick: boolean): DemoSettings {
  const size = 32;
  const config = resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: size },
    train: { seed, epochs: quick ? 2 : 12, batchPairs: 8, lr: 3e-3, backboneLrScale: 0.1 },
    eval: { exemplars: 10, dn: true, batchVideos: 32 },
  });
  return { clips: quick ? 144 : 600, size, e2eEpochs: quick ? 2 : 12, headEpochs: quick ? 6 : 40, config };
}

export interface MethodResult {
  metrics: EvalMetrics;
  history: EpochRecord[];
  seconds: number;
}

export interface DemoResults {
  methods: Record<string, { srcc: number; rl2: number; aiou50: number; aiou75: number }>;
  seed: number;
  config: Record<string, unknown>;
  details: Record<string, MethodResult>;
  seconds: number;
}

async function trainAndEvaluate(
  method: Method,
  params: Params,
  source: Parameters<typeof train>[2] & { loadTest(keys: string[]): Promise<tf.Tensor> },
  test: SampledClip[],
  cfg: RunConfig,
  epochs: number,
  onProgress: DemoOptions['onProgress'],
): Promise<{ result: EvalResult; history: EpochRecord[]; seconds: number }> {
  const t0 = performance.now();
  const state = await train(method, params, source, {
    epochs,
    batchPairs: cfg.train.batchPairs,
    seed: cfg.train.seed,
    dn: cfg.train.dn,
    adam: {
      lr: cfg.train.lr,
      backboneLrScale: cfg.train.backboneLrScale,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
    },
    onProgress: (event) => onProgress?.({ kind: 'train', method: method.name, event }),
  });
  for (const t of [...Object.values(state.adam.m), ...Object.values(state.adam.v)]) t.dispose();
  const result = await evaluate(method, params, source.clips, test, {
    exemplars: cfg.eval.exemplars,
    dn: cfg.eval.dn,
    seed: cfg.train.seed + 1,
    batchVideos: cfg.eval.batchVideos,
    load: (keys) => source.loadTest(keys),
  });
  return { result, history: state.history, seconds: (performance.now() - t0) / 1000 };
}

export async function runDemo(opts: DemoOptions): Promise<DemoResults> {
  const t0 = performance.now();
  const settings = demoSettings(opts.seed, opts.quick);
  const cfg = settings.config;
  await mkdir(opts.out, { recursive: true });
  const dataset: StagedDataset = openSynthDive({
    seed: opts.seed,
    clips: settings.clips,
    size: settings.size,
  });
  const clips = sampleClips(dataset, cfg.model.frames);
  const test = clips.filter((c) => c.info.split === 'test');
  const frames = frameSource(dataset, clips, (trainMode) => ({
    crop: settings.size,
    train: trainMode,
    flipProb: 0.5,
  }));
  opts.onProgress?.({
    kind: 'phase',
    name: 'data',
    detail: `SynthDive seed ${opts.seed}: ${frames.clips.length} train / ${test.length} test clips, ${cfg.model.frames} frames of ${settings.size}x${settings.size}`,
  });

  const details: Record<string, MethodResult> = {};
  const report = (name: string, r: { result: EvalResult; history: EpochRecord[]; seconds: number }) => {
    details[name] = { metrics: r.result.metrics, history: r.history, seconds: r.seconds };
    opts.onProgress?.({ kind: 'result', method: name, metrics: r.result.metrics, seconds: r.seconds });
  };

  // 1. MCoRe end to end: backbone + GSM + head.
  opts.onProgress?.({
    kind: 'phase',
    name: 'end-to-end',
    detail: `MCoRe end to end, ${settings.e2eEpochs} epochs`,
  });
  const e2e = mcoreMethod(cfg.model, { name: 'mcore-e2e', backbone: true, loss: cfg.loss });
  const e2eParams = initParams(e2e.specs, createRng(cfg.train.seed));
  report(
    'mcore-e2e',
    await trainAndEvaluate(e2e, e2eParams, frames, test, cfg, settings.e2eEpochs, opts.onProgress),
  );

  // 2. Shared features from the trained backbone.
  opts.onProgress?.({
    kind: 'phase',
    name: 'features',
    detail: 'encoding every clip once with the trained backbone',
  });
  const features = await extractFeatures(
    e2eParams,
    cfg.model,
    clips.map((c) => c.key),
    (keys) => frames.loadTest(keys),
    {
      batch: cfg.eval.batchVideos,
      onProgress: (done, total) => opts.onProgress?.({ kind: 'features', done, total }),
    },
  );
  disposeParams(e2eParams);
  const feats = featureSource(clips, features, cfg.model.frames, featureDim(cfg.model));

  // 3-4. Every method head-only on the same features.
  const methods: Method[] = [
    mcoreMethod(cfg.model, { name: 'mcore', backbone: false, loss: cfg.loss }),
    mcoreMethod(cfg.model, {
      name: 'mcore-no-cont',
      backbone: false,
      loss: { ...cfg.loss, contrastive: 'none' },
    }),
    mcoreMethod(cfg.model, {
      name: 'mcore-equal-stages',
      backbone: false,
      loss: cfg.loss,
      fixedStages: true,
    }),
    coreMethod(cfg.model, { backbone: false }),
    regressionMethod(cfg.model, { backbone: false }),
  ];
  for (const m of methods) {
    opts.onProgress?.({
      kind: 'phase',
      name: m.name,
      detail: `${m.name} on the shared features, ${settings.headEpochs} epochs`,
    });
    const params = initParams(m.specs, createRng(cfg.train.seed + 1));
    report(m.name, await trainAndEvaluate(m, params, feats, test, cfg, settings.headEpochs, opts.onProgress));
    disposeParams(params);
  }

  const results: DemoResults = {
    methods: Object.fromEntries(
      Object.entries(details).map(([k, v]) => [
        k,
        { srcc: v.metrics.srcc, rl2: v.metrics.rl2, aiou50: v.metrics.aiou50, aiou75: v.metrics.aiou75 },
      ]),
    ),
    seed: opts.seed,
    config: {
      ...cfg,
      clips: settings.clips,
      size: settings.size,
      e2eEpochs: settings.e2eEpochs,
      headEpochs: settings.headEpochs,
    },
    details,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFileAtomic(path.join(opts.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  return results;
}
