/**
 * MCoRe as a scoring method of the shared framework (see src/train/method.ts), plus two ablations that
 * are MCoRe with one part switched off: `contrastive: 'none'` (no L_cont) and `fixedStages` (equal
 * stages instead of the segmenter; no L_tas).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LossConfig } from '../config.ts';
import { McoreError } from '../errors.ts';
import { featureDim, type ModelConfig } from '../model/config.ts';
import { totalLoss } from '../model/losses.ts';
import { compareTokens, mcoreForward, mcoreSpecs } from '../model/mcore.ts';
import type { ParamSpecs, Params } from '../model/params.ts';
import { qualityHeadForward, qualityHeadSpecs, qualityLoss } from '../model/quality-head.ts';
import { reconHeadSpecs, reconLoss } from '../model/recon-head.ts';
import { backboneForward } from '../model/regnet.ts';
import { segmenterForward } from '../model/segmenter.ts';
import { stagePool } from '../model/stage-pool.ts';
import { decodeTransitions } from '../model/transitions.ts';
import { exportScorer } from '../onnx/export.ts';
import { createSession, dispose, runScorer } from '../onnx/runtime.ts';
import type {
  Comparer,
  Comparison,
  Encoding,
  Exemplar,
  LossTerms,
  Method,
  PairBatch,
} from '../train/method.ts';

export interface McoreMethodOptions {
  name?: string;
  /** Train the backbone too (input frames) or only the head (input features). */
  backbone: boolean;
  loss: LossConfig;
  /** Ablation: equal stages instead of the segmenter's transitions. */
  fixedStages?: boolean;
  /**
   * Scores are divided by this in the losses and deltas multiplied by it at prediction (default 1: raw
   * dive scores, as the reference). A larger unit lets a small model from scratch fit faster.
   */
  scoreScale?: number;
}

/** K-1 transitions splitting T frames into K equal stages. */
export function equalTransitions(T: number, K: number): number[] {
  return Array.from({ length: K - 1 }, (_, k) => Math.round(((k + 1) * T) / K));
}

/** Backbone features of the input: features [V,T,D] pass through; frames [V,T,H,W,3] are encoded. */
export function featuresOf(params: Params, cfg: ModelConfig, input: tf.Tensor): tf.Tensor3D {
  return input.rank === 5
    ? backboneForward(params, cfg.backbone, input as tf.Tensor5D, 'backbone')
    : (input as tf.Tensor3D);
}

export function mcoreMethod(cfg: ModelConfig, opts: McoreMethodOptions): Method {
  const K = cfg.stages;
  const withQuality = opts.loss.qualityWeight > 0;
  const withRecon = opts.loss.reconWeight > 0;
  if (withRecon && !opts.backbone) {
    throw new McoreError(
      'E_CONFIG',
      'loss.reconWeight > 0 trains the backbone to keep what each stage looks like; head-only training has ' +
        'no frames to reconstruct and a fixed backbone: train end to end (train.mode=end-to-end) or set loss.reconWeight=0',
    );
  }
  const specs: ParamSpecs = {
    ...mcoreSpecs(cfg, { backbone: opts.backbone }),
    ...(withQuality ? qualityHeadSpecs(K, featureDim(cfg)) : {}),
    ...(withRecon ? reconHeadSpecs(featureDim(cfg), cfg.imageSize) : {}),
  };
  const scale = opts.scoreScale ?? 1;
  const loss: LossConfig = opts.fixedStages
    ? { ...opts.loss, tasWeights: opts.loss.tasWeights.map(() => 0) }
    : opts.loss;
  return {
    name: opts.name ?? 'mcore',
    specs,
    pairwise: true,
    loss(params: Params, batch: PairBatch, { seed }): LossTerms {
      const T = batch.input.shape[1] as number;
      const transitions = opts.fixedStages
        ? batch.transitions.map(() => equalTransitions(T, K))
        : batch.transitions;
      const input =
        batch.input.rank === 5
          ? { frames: batch.input as tf.Tensor5D }
          : { features: batch.input as tf.Tensor3D };
      const out = mcoreForward(params, cfg, input, { training: true, transitions, seed });
      const scores = batch.scores.map((y) => y / scale);
      let terms: LossTerms = { ...totalLoss(out, { scores, transitions }, loss) };
      if (withRecon) {
        const recon = tf.mul(
          reconLoss(params, out.tokens, batch.input as tf.Tensor5D, transitions),
          opts.loss.reconWeight,
        ) as tf.Scalar;
        terms = { ...terms, recon, total: tf.add(terms.total, recon) as tf.Scalar };
      }
      if (!withQuality) return terms;
      if (batch.stageQualities === undefined) {
        throw new McoreError(
          'E_CONFIG',
          'loss.qualityWeight > 0 needs the hidden stage qualities of every clip, which only SynthDive ' +
            'has; set loss.qualityWeight=0 for this dataset',
        );
      }
      const quality = tf.mul(
        qualityLoss(qualityHeadForward(params, out.tokens, K), batch.stageQualities),
        opts.loss.qualityWeight,
      ) as tf.Scalar;
      return { ...terms, quality, total: tf.add(terms.total, quality) as tf.Scalar };
    },
    encode(params: Params, input: tf.Tensor): Encoding[] {
      const V = input.shape[0];
      const T = input.shape[1] as number;
      let transitions: number[][] = [];
      const tokens = tf.tidy(() => {
        const F = featuresOf(params, cfg, input);
        if (opts.fixedStages) {
          transitions = Array.from({ length: V }, () => equalTransitions(T, K));
        } else {
          const logits = segmenterForward(params, cfg, F, { training: false, gradFeatures: false });
          transitions = decodeTransitions(logits.dataSync() as Float32Array, T, K);
        }
        return stagePool(F, transitions, cfg.tokensPerStage);
      });
      const data = tokens.dataSync() as Float32Array;
      tokens.dispose();
      const per = data.length / V;
      return transitions.map((t, v) => ({ transitions: t, data: data.slice(v * per, (v + 1) * per) }));
    },
    predict(params: Params, query: Encoding, exemplars: Exemplar[]): number {
      const M = exemplars.length;
      const shape: [number, number, number] = [M, K * cfg.tokensPerStage, featureDim(cfg)];
      const delta = tf.tidy(() => {
        const q = tf.tile(tf.tensor3d(query.data, [1, shape[1], shape[2]]), [M, 1, 1]) as tf.Tensor3D;
        const eData = new Float32Array(M * query.data.length);
        exemplars.forEach((ex, i) => {
          eData.set(ex.encoding.data, i * query.data.length);
        });
        return compareTokens(params, cfg, q, tf.tensor3d(eData, shape));
      });
      const d = delta.dataSync();
      delta.dispose();
      let sum = 0;
      for (let i = 0; i < M; i++) sum += exemplars[i].score + d[i] * scale;
      return sum / M;
    },
    /**
     * The scorer graph of `params` (exportScorer, the bundle's graph) in ONNX Runtime with two intra-op
     * threads (createSession's default): all pairs of a call in one run, q and e tokens [N, K*L, D] ->
     * delta [N]. 8.7x tfjs's wasm backend (one thread) on evaluation's comparisons at FineDiving scale
     * (`npm run bench:compare`).
     */
    async openComparer(params: Params): Promise<Comparer> {
      const session = await createSession(exportScorer(params, cfg));
      const tokens = K * cfg.tokensPerStage;
      const D = featureDim(cfg);
      return {
        async predict(comparisons: readonly Comparison[]): Promise<number[]> {
          const per = tokens * D;
          const N = comparisons.reduce((n, c) => n + c.exemplars.length, 0);
          const q = new Float32Array(N * per);
          const e = new Float32Array(N * per);
          let n = 0;
          for (const c of comparisons) {
            for (const ex of c.exemplars) {
              q.set(c.query.data, n * per);
              e.set(ex.encoding.data, n * per);
              n++;
            }
          }
          const dims = [N, tokens, D];
          const delta =
            N === 0
              ? new Float32Array(0)
              : (await runScorer(session, { data: q, dims }, { data: e, dims })).data;
          let at = 0;
          return comparisons.map((c) => {
            let sum = 0;
            for (const ex of c.exemplars) sum += ex.score + delta[at++] * scale;
            return sum / c.exemplars.length;
          });
        },
        dispose: () => dispose(session),
      };
    },
  };
}
