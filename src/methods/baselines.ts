/**
 * Baselines in the same framework and on the same features as MCoRe (issue 4):
 *   - `regression`: plain regression of the score from features averaged over time (USDL-like, no exemplars);
 *   - `core`: CoRe-style whole-video contrastive regression: an MLP on [f_q; f_e; y_e / scale] of
 *     time-pooled features predicts delta(q, e); no stages (CoRe's regression tree is replaced by a plain
 *     MLP head, as its paper's ablation without the tree).
 * The MCoRe ablations (no L_cont, equal stages) are options of `mcoreMethod`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { featureDim, type ModelConfig } from '../model/config.ts';
import { linear, linearSpecs } from '../model/layers.ts';
import type { ParamSpecs, Params } from '../model/params.ts';
import { backboneSpecs } from '../model/regnet.ts';
import type { Encoding, Exemplar, LossTerms, Method, PairBatch } from '../train/method.ts';
import { featuresOf } from './mcore-method.ts';

/** Exemplar scores (already divided by scoreScale) are divided by this in the CoRe pair feature (y_e / theta). */
const SCORE_SCALE = 10;

function mlpSpecs(prefix: string, widths: number[]): ParamSpecs {
  let out: ParamSpecs = {};
  for (let i = 0; i + 1 < widths.length; i++)
    out = { ...out, ...linearSpecs(`${prefix}.layer${i + 1}`, widths[i], widths[i + 1]) };
  return out;
}

/** x: [N, widths[0]] -> [N] through Linear/ReLU layers. */
function mlp(params: Params, prefix: string, layers: number, x: tf.Tensor2D): tf.Tensor1D {
  let h: tf.Tensor = x;
  for (let i = 1; i <= layers; i++) {
    h = linear(params, `${prefix}.layer${i}`, h);
    if (i < layers) h = tf.relu(h);
  }
  return tf.reshape(h, [-1]) as tf.Tensor1D;
}

/** Time-averaged features: input [V, ...] -> [V, D]. */
function pooled(params: Params, cfg: ModelConfig, input: tf.Tensor): tf.Tensor2D {
  return tf.mean(featuresOf(params, cfg, input), 1) as tf.Tensor2D;
}

function encodePooled(params: Params, cfg: ModelConfig, input: tf.Tensor): Encoding[] {
  const f = tf.tidy(() => pooled(params, cfg, input));
  const data = f.dataSync() as Float32Array;
  f.dispose();
  const D = featureDim(cfg);
  return Array.from({ length: input.shape[0] }, (_, v) => ({ data: data.slice(v * D, (v + 1) * D) }));
}

export function regressionMethod(cfg: ModelConfig, opts: { backbone: boolean; scoreScale?: number }): Method {
  const scale = opts.scoreScale ?? 1;
  const D = featureDim(cfg);
  const widths = [D, ...cfg.regressor.hidden, 1];
  const specs: ParamSpecs = {
    ...(opts.backbone ? backboneSpecs(cfg.backbone, 'backbone') : {}),
    ...mlpSpecs('baseline.regression', widths),
  };
  return {
    name: 'regression',
    specs,
    pairwise: false,
    loss(params: Params, batch: PairBatch): LossTerms {
      const pred = mlp(params, 'baseline.regression', widths.length - 1, pooled(params, cfg, batch.input));
      const total = tf.losses.meanSquaredError(
        tf.tensor1d(batch.scores.map((y) => y / scale)),
        pred,
      ) as tf.Scalar;
      return { total, mse: total };
    },
    encode: (params, input) => encodePooled(params, cfg, input),
    predict(params: Params, query: Encoding): number {
      const y = tf.tidy(() =>
        mlp(params, 'baseline.regression', widths.length - 1, tf.tensor2d(query.data, [1, D])),
      );
      const v = y.dataSync()[0];
      y.dispose();
      return v * scale;
    },
  };
}

export function coreMethod(cfg: ModelConfig, opts: { backbone: boolean; scoreScale?: number }): Method {
  const scale = opts.scoreScale ?? 1;
  const D = featureDim(cfg);
  const widths = [2 * D + 1, ...cfg.regressor.hidden, 1];
  const layers = widths.length - 1;
  const specs: ParamSpecs = {
    ...(opts.backbone ? backboneSpecs(cfg.backbone, 'backbone') : {}),
    ...mlpSpecs('baseline.core', widths),
  };
  /** fq, fe [N, D], ye [N] -> delta(q, e) [N]. */
  const delta = (params: Params, fq: tf.Tensor2D, fe: tf.Tensor2D, ye: tf.Tensor1D): tf.Tensor1D =>
    mlp(
      params,
      'baseline.core',
      layers,
      tf.concat([fq, fe, tf.reshape(tf.div(ye, SCORE_SCALE), [-1, 1])], 1) as tf.Tensor2D,
    );
  return {
    name: 'core',
    specs,
    pairwise: true,
    loss(params: Params, batch: PairBatch): LossTerms {
      const B = batch.scores.length / 2;
      const f = pooled(params, cfg, batch.input);
      const fq = tf.slice(f, [0, 0], [B, D]);
      const fe = tf.slice(f, [B, 0], [B, D]);
      const yq = tf.tensor1d(batch.scores.slice(0, B).map((y) => y / scale));
      const ye = tf.tensor1d(batch.scores.slice(B).map((y) => y / scale));
      const dqe = delta(params, fq, fe, ye);
      const deq = delta(params, fe, fq, yq);
      const total = tf.add(
        tf.losses.meanSquaredError(tf.sub(yq, ye), dqe),
        tf.losses.meanSquaredError(tf.sub(ye, yq), deq),
      ) as tf.Scalar;
      return { total, aqa: total };
    },
    encode: (params, input) => encodePooled(params, cfg, input),
    predict(params: Params, query: Encoding, exemplars: Exemplar[]): number {
      const M = exemplars.length;
      const d = tf.tidy(() => {
        const fq = tf.tile(tf.tensor2d(query.data, [1, D]), [M, 1]) as tf.Tensor2D;
        const eData = new Float32Array(M * D);
        exemplars.forEach((ex, i) => {
          eData.set(ex.encoding.data, i * D);
        });
        return delta(
          params,
          fq,
          tf.tensor2d(eData, [M, D]),
          tf.tensor1d(exemplars.map((e) => e.score / scale)),
        );
      });
      const values = d.dataSync();
      d.dispose();
      let sum = 0;
      for (let i = 0; i < M; i++) sum += exemplars[i].score + values[i] * scale;
      return sum / M;
    },
  };
}
