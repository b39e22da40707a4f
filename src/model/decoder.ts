/**
 * The scoring decoder (spec section 2.2): `cfg.decoder.layers` pre-norm cross-attention layers of width
 * D with `cfg.decoder.heads` heads, no positional encoding and no dropout:
 *
 *   q = q + proj(MHA(LN_q(q), LN_m(m)))      q/k/v maps: Linear without bias; keys and values from LN_m(m)
 *   q = q + MLP(LN_2(q))                     MLP: D -> mlpRatio*D -> GELU(erf) -> D
 *
 * Names per layer i: `decoder.layers.{i}.norm_q.*`, `norm_v.*` (the memory norm), `attn.q_map.weight`,
 * `attn.k_map.weight`, `attn.v_map.weight`, `attn.proj.{weight,bias}`, `norm2.*`, `mlp.fc1.*`,
 * `mlp.fc2.*` (reference: `module.model.{i}.*`).
 *
 * Attention scores and the weighted sum of values are broadcast products summed over one axis (the
 * token counts are tiny, 5 x 5), which avoids batched matmuls (slow on wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertShape, McoreError } from '../errors.ts';
import { featureDim, type ModelConfig } from './config.ts';
import { gelu, layerNorm, layerNormSpecs, linear, linearSpecs } from './layers.ts';
import type { ParamSpecs, Params } from './params.ts';

/** Specs of the decoder: `${prefix}.layers.{i}.*` for i < cfg.decoder.layers. */
export function decoderSpecs(cfg: ModelConfig, prefix = 'decoder'): ParamSpecs {
  const D = featureDim(cfg);
  const hidden = cfg.decoder.mlpRatio * D;
  let out: ParamSpecs = {};
  for (let i = 0; i < cfg.decoder.layers; i++) {
    const p = `${prefix}.layers.${i}`;
    out = {
      ...out,
      ...layerNormSpecs(`${p}.norm_q`, D),
      ...layerNormSpecs(`${p}.norm_v`, D),
      ...linearSpecs(`${p}.attn.q_map`, D, D, { bias: false }),
      ...linearSpecs(`${p}.attn.k_map`, D, D, { bias: false }),
      ...linearSpecs(`${p}.attn.v_map`, D, D, { bias: false }),
      ...linearSpecs(`${p}.attn.proj`, D, D),
      ...layerNormSpecs(`${p}.norm2`, D),
      ...linearSpecs(`${p}.mlp.fc1`, D, hidden),
      ...linearSpecs(`${p}.mlp.fc2`, hidden, D),
    };
  }
  return out;
}

/**
 * Multi-head cross-attention of one layer, before `proj`.
 * qn: [N*Lq, D], mn: [N*Lm, D] (already normalised) -> [N*Lq, D].
 */
function crossAttention(
  params: Params,
  p: string,
  qn: tf.Tensor,
  mn: tf.Tensor,
  dims: { N: number; Lq: number; Lm: number; heads: number; D: number },
): tf.Tensor {
  const { N, Lq, Lm, heads, D } = dims;
  const dh = D / heads;
  const q = tf.mul(linear(params, `${p}.attn.q_map`, qn), 1 / Math.sqrt(dh));
  const k = linear(params, `${p}.attn.k_map`, mn);
  const v = linear(params, `${p}.attn.v_map`, mn);
  // scores [N, Lq, Lm, h] = sum_d q[N, Lq, 1, h, d] * k[N, 1, Lm, h, d]
  const scores = tf.sum(
    tf.mul(tf.reshape(q, [N, Lq, 1, heads, dh]), tf.reshape(k, [N, 1, Lm, heads, dh])),
    4,
  );
  // softmax over the memory tokens (tf.softmax works on the last axis) -> [N, Lq, Lm, h]
  const attn = tf.transpose(tf.softmax(tf.transpose(scores, [0, 1, 3, 2])), [0, 1, 3, 2]);
  // out [N, Lq, h, d] = sum_m attn[N, Lq, m, h, 1] * v[N, 1, m, h, d]
  const out = tf.sum(
    tf.mul(tf.reshape(attn, [N, Lq, Lm, heads, 1]), tf.reshape(v, [N, 1, Lm, heads, dh])),
    2,
  );
  return tf.reshape(out, [N * Lq, D]);
}

/** q: [N, Lq, D] (queries), m: [N, Lm, D] (memory) -> [N, Lq, D]. */
export function decoderForward(
  params: Params,
  cfg: ModelConfig,
  q: tf.Tensor3D,
  m: tf.Tensor3D,
  prefix = 'decoder',
): tf.Tensor3D {
  const D = featureDim(cfg);
  const heads = cfg.decoder.heads;
  if (D % heads !== 0) {
    throw new McoreError('E_CONFIG', `decoder: width ${D} is not divisible by ${heads} heads`);
  }
  const [N, Lq] = q.shape;
  const Lm = m.shape[1];
  assertShape('decoder query', q.shape, [-1, -1, D]);
  assertShape('decoder memory', m.shape, [N, -1, D]);
  return tf.tidy(() => {
    let x: tf.Tensor = tf.reshape(q, [N * Lq, D]);
    const mem = tf.reshape(m, [N * Lm, D]);
    for (let i = 0; i < cfg.decoder.layers; i++) {
      const p = `${prefix}.layers.${i}`;
      const qn = layerNorm(params, `${p}.norm_q`, x);
      const mn = layerNorm(params, `${p}.norm_v`, mem);
      const att = crossAttention(params, p, qn, mn, { N, Lq, Lm, heads, D });
      x = tf.add(x, linear(params, `${p}.attn.proj`, att));
      const hidden = gelu(linear(params, `${p}.mlp.fc1`, layerNorm(params, `${p}.norm2`, x)));
      x = tf.add(x, linear(params, `${p}.mlp.fc2`, hidden));
    }
    return tf.reshape(x, [N, Lq, D]) as tf.Tensor3D;
  });
}
