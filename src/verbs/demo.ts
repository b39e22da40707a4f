/**
 * `mcore demo`: the first thing a new user runs. On SynthDive (embedded, no download) it
 *   1. starts from a tiny RegNetY + GSM backbone pretrained once on SynthDive clips of another seed
 *      (assets/synthdive-backbone.safetensors, made by scripts/pretrain-backbone.ts: our "ImageNet"),
 *   2. fine-tunes MCoRe end to end, and its two ablations the same way, so that each differs from it
 *      in one thing only: MCoRe without L_cont (the contrastive loss only acts through the backbone, so
 *      that ablation must train it too) and MCoRe with fixed equal stages instead of the segmenter,
 *   3. trains MCoRe's head and the baselines head-only on the same frozen features of the pretrained
 *      backbone (MCoRe head only, CoRe-style whole-video contrastive regression, plain regression),
 *   4. evaluates every method with the exemplar protocol (10 exemplars of the same dive type) and writes
 *      results.json, report.html and a scoring bundle of the fine-tuned MCoRe.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { type RunConfig, resolveConfig } from '../config.ts';
import { featureSource, frameSource, type SampledClip, sampleClips } from '../data/clips.ts';
import { openSynthDive } from '../data/open.ts';
import type { StagedDataset } from '../data/types.ts';
import { McoreError } from '../errors.ts';
import { type EvalMetrics, type EvalResult, evaluate, type Prediction } from '../eval/evaluate.ts';
import {
  honestyWarnings,
  oracleReference,
  type ReferencePoints,
  referencePoints,
} from '../eval/reference.ts';
import { pickTimelineKeys, reportFromDemo, writeEvalReport } from '../eval/report.ts';
import type { DemoMetrics, DemoResults, MethodResult } from '../eval/results.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { coreMethod, regressionMethod } from '../methods/baselines.ts';
import { mcoreMethod } from '../methods/mcore-method.ts';
import { featureDim } from '../model/config.ts';
import { assignParams, disposeParams, initParams, type Params } from '../model/params.ts';
import { backboneSpecs } from '../model/regnet.ts';
import { loadWeights } from '../model/weights.ts';
import { createRng } from '../rng.ts';
import { exportBundle } from '../score/export.ts';
import { disposeAdamState } from '../train/adam.ts';
import { extractFeatures } from '../train/features.ts';
import type { Method } from '../train/method.ts';
import { type EpochRecord, type TrainEvent, train } from '../train/trainer.ts';
import { type RunRecord, trainOptionsOf } from './run.ts';

export type { DemoMetrics, DemoResults, MethodResult };

/** The shipped pretrained backbone of the demo (scripts/pretrain-backbone.ts writes it). */
export const DEMO_BACKBONE = path.resolve(import.meta.dirname, '../../assets/synthdive-backbone.safetensors');

export interface DemoOptions {
  out: string;
  seed: number;
  /** A smoke-test size: about 30 s on 2 cores. */
  quick: boolean;
  /** Backbone weights to start from (default: the shipped DEMO_BACKBONE), e.g. one pretrained without L_q. */
  backbone?: string;
  /** The methods to run (default: all of DEMO_METHODS); 'mcore' is always among them (the bundle). */
  methods?: readonly string[];
  onProgress?: (e: DemoEvent) => void;
}

export type DemoEvent =
  | { kind: 'phase'; name: string; detail: string }
  | { kind: 'train'; method: string; event: TrainEvent }
  | { kind: 'features'; done: number; total: number }
  | { kind: 'result'; method: string; metrics: EvalMetrics; seconds: number; warnings: string[] }
  | { kind: 'references'; references: ReferencePoints };

export interface DemoSettings {
  clips: number;
  size: number;
  /** Epochs of end-to-end fine-tuning (MCoRe, MCoRe without L_cont, MCoRe with equal stages). */
  e2eEpochs: number;
  /** Epochs of head-only training on the frozen features. */
  headEpochs: number;
  config: RunConfig;
}

/** The demo model: mcore-tiny at 16 frames of 32 x 32, scores in units of 10 points inside the losses. */
function demoConfig(seed: number, epochs: number): RunConfig {
  return resolveConfig({
    variant: 'mcore-tiny',
    model: { frames: 16, imageSize: 32 },
    train: {
      seed,
      epochs,
      batchPairs: 8,
      lr: 3e-3,
      backboneLrScale: 0.1,
      scoreScale: 10,
      schedule: 'cosine',
    },
    eval: { exemplars: 10, dn: true, batchVideos: 32 },
  });
}

/** The demo's defaults, tuned to finish in <= 10 minutes (quick: <= 2) on 2 CPU cores. */
export function demoSettings(seed: number, quick: boolean): DemoSettings {
  const e2eEpochs = quick ? 1 : 16;
  return {
    clips: quick ? 144 : 600,
    size: 32,
    e2eEpochs,
    headEpochs: quick ? 4 : 40,
    config: demoConfig(seed, e2eEpochs),
  };
}

/**
 * The demo backbone's pretraining run (scripts/pretrain-backbone.ts): the demo's model on SynthDive
 * clips of a seed the demo never uses, end to end with the full MCoRe objective plus the auxiliary
 * stage-quality loss L_q (loss.qualityWeight): on these clips, and only on them, the backbone is also
 * taught to read each stage's hidden quality, as an ImageNet backbone is taught to see before it is
 * fine-tuned. The demo itself trains with scores only.
 */
export const PRETRAIN_RECORD: RunRecord = {
  dataset: 'synthdive:seed=1000,clips=1800,size=32',
  config: {
    ...demoConfig(1000, 80),
    train: { ...demoConfig(1000, 80).train, backboneLrScale: 1, schedule: 'constant' },
    loss: { ...demoConfig(1000, 80).loss, qualityWeight: 100 },
  },
};

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
    ...trainOptionsOf(cfg),
    epochs,
    onProgress: (event) => onProgress?.({ kind: 'train', method: method.name, event }),
  });
  disposeAdamState(state.adam);
  const result = await evaluate(method, params, source.clips, test, {
    exemplars: cfg.eval.exemplars,
    dn: cfg.eval.dn,
    seed: cfg.train.seed + 1,
    batchVideos: cfg.eval.batchVideos,
    load: (keys) => source.loadTest(keys),
  });
  return { result, history: state.history, seconds: (performance.now() - t0) / 1000 };
}

/** Every method of the demo, in its order. */
export const DEMO_METHODS = [
  'mcore',
  'mcore-no-cont',
  'mcore-equal-stages',
  'mcore-head',
  'core',
  'regression',
];

async function loadDemoBackbone(cfg: RunConfig, file = DEMO_BACKBONE): Promise<Params> {
  if (file !== DEMO_BACKBONE)
    return (await loadWeights(file, backboneSpecs(cfg.model.backbone, 'backbone'))).params;
  if (!existsSync(DEMO_BACKBONE)) {
    throw new McoreError(
      'E_INPUT',
      `${DEMO_BACKBONE} is missing; recreate it with: npx tsx scripts/pretrain-backbone.ts`,
    );
  }
  return (await loadWeights(DEMO_BACKBONE, backboneSpecs(cfg.model.backbone, 'backbone'))).params;
}

export async function runDemo(opts: DemoOptions): Promise<DemoResults> {
  const t0 = performance.now();
  const settings = demoSettings(opts.seed, opts.quick);
  const cfg = settings.config;
  const scoreScale = cfg.train.scoreScale;
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
  const wanted = new Set(opts.methods ?? DEMO_METHODS);
  const unknown = [...wanted].filter((m) => !DEMO_METHODS.includes(m));
  if (unknown.length > 0 || !wanted.has('mcore')) {
    throw new McoreError(
      'E_INPUT',
      `demo methods: ${unknown.length > 0 ? `unknown ${unknown.join(', ')}` : "'mcore' missing"}; choose from ${DEMO_METHODS.join(', ')}, mcore included`,
    );
  }
  const pretrained = await loadDemoBackbone(cfg, opts.backbone);
  // Reference points on the same split: what a model must clearly beat (src/eval/reference.ts).
  const references = await referencePoints(frames.clips, test, {
    load: (keys) => frames.loadTest(keys),
    batchVideos: cfg.eval.batchVideos,
    seed: cfg.train.seed,
  });
  opts.onProgress?.({ kind: 'references', references });
  const oracle = oracleReference(frames.clips, test, cfg.train.seed);

  const details: Record<string, MethodResult> = {};
  const predictions: Record<string, Prediction[]> = {};
  const report = (name: string, r: { result: EvalResult; history: EpochRecord[]; seconds: number }) => {
    const warnings = honestyWarnings(r.result.metrics, references);
    details[name] = { metrics: r.result.metrics, history: r.history, seconds: r.seconds, warnings };
    predictions[name] = r.result.predictions;
    opts.onProgress?.({
      kind: 'result',
      method: name,
      metrics: r.result.metrics,
      seconds: r.seconds,
      warnings,
    });
  };

  // 1-2. End-to-end fine-tuning from the pretrained backbone: MCoRe and its two ablations.
  const e2eMethods = [
    mcoreMethod(cfg.model, { name: 'mcore', backbone: true, loss: cfg.loss, scoreScale }),
    mcoreMethod(cfg.model, {
      name: 'mcore-no-cont',
      backbone: true,
      loss: { ...cfg.loss, contrastive: 'none' },
      scoreScale,
    }),
    mcoreMethod(cfg.model, {
      name: 'mcore-equal-stages',
      backbone: true,
      loss: cfg.loss,
      fixedStages: true,
      scoreScale,
    }),
  ];
  let bundleParams: Params | undefined;
  for (const m of e2eMethods.filter((x) => wanted.has(x.name))) {
    opts.onProgress?.({
      kind: 'phase',
      name: m.name,
      detail: `${m.name}: end to end, ${settings.e2eEpochs} epochs`,
    });
    const params = assignParams(initParams(m.specs, createRng(cfg.train.seed)), pretrained);
    report(m.name, await trainAndEvaluate(m, params, frames, test, cfg, settings.e2eEpochs, opts.onProgress));
    if (m.name === 'mcore') bundleParams = params;
    else disposeParams(params);
  }

  // 3. The frozen pretrained backbone's features, shared by every head-only method.
  const headNames = ['mcore-head', 'core', 'regression'].filter((n) => wanted.has(n));
  if (headNames.length > 0) {
    opts.onProgress?.({
      kind: 'phase',
      name: 'features',
      detail: 'encoding every clip once with the pretrained backbone',
    });
    const features = await extractFeatures(
      pretrained,
      cfg.model,
      clips.map((c) => c.key),
      (keys) => frames.loadTest(keys),
      {
        batch: cfg.eval.batchVideos,
        onProgress: (done, total) => opts.onProgress?.({ kind: 'features', done, total }),
      },
    );
    const feats = featureSource(clips, features, cfg.model.frames, featureDim(cfg.model));
    const headMethods: Method[] = [
      mcoreMethod(cfg.model, { name: 'mcore-head', backbone: false, loss: cfg.loss, scoreScale }),
      coreMethod(cfg.model, { backbone: false, scoreScale }),
      regressionMethod(cfg.model, { backbone: false, scoreScale }),
    ];
    for (const m of headMethods) {
      opts.onProgress?.({
        kind: 'phase',
        name: m.name,
        detail: `${m.name}: head only on the shared features, ${settings.headEpochs} epochs`,
      });
      if (!wanted.has(m.name)) continue;
      const params = initParams(m.specs, createRng(cfg.train.seed + 1));
      report(
        m.name,
        await trainAndEvaluate(m, params, feats, test, cfg, settings.headEpochs, opts.onProgress),
      );
      disposeParams(params);
    }
  }
  disposeParams(pretrained);

  const results: DemoResults = {
    methods: Object.fromEntries(
      Object.entries(details).map(([k, { metrics: m }]) => [
        k,
        {
          srcc: m.srcc,
          srccDn: m.srccDn,
          srccNoDn: m.srccNoDn,
          withinTypeSrcc: m.withinTypeSrcc,
          rl2: m.rl2,
          aiou50: m.aiou50,
          aiou75: m.aiou75,
        },
      ]),
    ),
    references,
    ...(oracle ? { oracle } : {}),
    seed: opts.seed,
    config: {
      ...cfg,
      clips: settings.clips,
      size: settings.size,
      e2eEpochs: settings.e2eEpochs,
      headEpochs: settings.headEpochs,
      ...(opts.backbone ? { backbone: path.resolve(opts.backbone) } : {}),
    },
    details,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFileAtomic(path.join(opts.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

  // Report: metrics, scatter plots, training curves, stage timelines of 4 test clips.
  const keys = pickTimelineKeys(predictions.mcore, 4);
  const shown = await Promise.all(keys.map(async (key) => ({ key, frames: await frames.cache.frames(key) })));
  await writeEvalReport(
    opts.out,
    reportFromDemo(results, predictions, shown, { stageNames: dataset.stageNames }),
  );

  // Scoring bundle of the fine-tuned MCoRe: mcore score VIDEO --model <out>/bundle
  if (bundleParams) {
    await exportBundle(path.join(opts.out, 'bundle'), bundleParams, {
      model: cfg.model,
      scoreScale,
      stageNames: dataset.stageNames,
      source: { dataset: `synthdive:seed=${opts.seed},clips=${settings.clips},size=${settings.size}` },
      exemplars: frames.clips,
      loadFrames: (key) => frames.cache.frames(key),
    });
    disposeParams(bundleParams);
  }
  return results;
}
