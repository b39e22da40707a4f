import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { McoreError } from '../../src/errors.ts';
import { modelConfig } from '../../src/model/config.ts';
import { decoderForward } from '../../src/model/decoder.ts';
import { totalLoss } from '../../src/model/losses.ts';
import { mcoreForward, mcoreSpecs } from '../../src/model/mcore.ts';
import { countParams, disposeParams, initParams, type Params } from '../../src/model/params.ts';
import { regnetBlocks } from '../../src/model/regnet.ts';
import { regressorForward } from '../../src/model/regressor.ts';
import { stagePool } from '../../src/model/stage-pool.ts';
import { decodeTransitions } from '../../src/model/transitions.ts';
import { createRng } from '../../src/rng.ts';

/** The paper's losses: the defaults (test/config.test.ts pins them). */
const PAPER = resolveConfig().loss;

const cfg = modelConfig('mcore-tiny'); // D = 32, T = 16, K = 3, L = 5, 1 decoder layer of 4 heads
const D = 32;
const T = 16;
const B = 2;
const V = 2 * B;
const gt = [
  [4, 9],
  [3, 11],
  [5, 8],
  [2, 12],
];
const scores = [80.5, 72, 78, 75.5];

let params: Params;
let feats: tf.Tensor3D;

beforeAll(async () => {
  await useBackend('wasm');
  params = initParams(mcoreSpecs(cfg), createRng(1));
  feats = tf.randomNormal([V, T, D], 0, 1, 'float32', 7) as tf.Tensor3D;
});

/** Gradients by parameter name (variables are unnamed; variableGrads keys them by variable name). */
function namedGrads(p: Params, grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(p)) {
    if (t instanceof tf.Variable && grads[t.name] !== undefined) out[name] = grads[t.name];
  }
  return out;
}

function disposeOut(out: ReturnType<typeof mcoreForward>): void {
  tf.dispose([out.deltaQE, out.deltaEQ, out.logits, out.features, out.tokens]);
}

describe('mcoreSpecs', () => {
  it('counts the head at full size and includes the backbone on request', () => {
    const full = modelConfig('mcore-regnety002');
    const head = mcoreSpecs(full);
    expect(countParams(head, 'segmenter.')).toBe(1_630_978);
    expect(countParams(head, 'decoder.')).toBe(4_888_512);
    expect(countParams(head, 'regressor.')).toBe(110_977);
    expect(countParams(head)).toBe(6_630_467);
    expect(Object.keys(head).some((k) => k.startsWith('backbone.'))).toBe(false);
    const all = mcoreSpecs(full, { backbone: true });
    expect(countParams(all) - countParams(head)).toBe(countParams(all, 'backbone.'));
    // Spec section 2.1b: backbone 2,793,996 + GSMs 21,602; total in use 9,446,065.
    expect(countParams(all, 'backbone.')).toBe(2_815_598);
    expect(countParams(all)).toBe(9_446_065);
  });
});

describe('mcoreForward', () => {
  it('returns the documented shapes in training and uses the ground truth', () => {
    const out = mcoreForward(params, cfg, { features: feats }, { training: true, transitions: gt, seed: 1 });
    expect(out.deltaQE.shape).toEqual([B]);
    expect(out.deltaEQ.shape).toEqual([B]);
    expect(out.logits.shape).toEqual([V, T, 2]);
    expect(out.features.shape).toEqual([V, T, D]);
    expect(out.tokens.shape).toEqual([V, 15, D]);
    expect(out.transitions).toEqual(gt);
    const pooled = stagePool(feats, gt, 5);
    const a = out.tokens.dataSync();
    const b = pooled.dataSync();
    for (let i = 0; i < a.length; i += 7) expect(a[i]).toBeCloseTo(b[i], 6);
    pooled.dispose();
    disposeOut(out);
    expect(() => mcoreForward(params, cfg, { features: feats }, { training: true })).toThrow(McoreError);
  });

  it('decodes transitions in test mode and pools tokens with the ground truth when given', () => {
    const out = mcoreForward(params, cfg, { features: feats }, { training: false, transitions: gt });
    const decoded = decodeTransitions(out.logits.dataSync() as Float32Array, T, 3);
    expect(out.transitions).toEqual(decoded);
    const pooledGt = stagePool(feats, gt, 5);
    const a = out.tokens.dataSync();
    const b = pooledGt.dataSync();
    for (let i = 0; i < a.length; i += 5) expect(a[i]).toBeCloseTo(b[i], 6);
    // Without ground truth the tokens are the decoder input.
    const out2 = mcoreForward(params, cfg, { features: feats }, { training: false });
    const pooledDec = stagePool(feats, decoded, 5);
    const c = out2.tokens.dataSync();
    const d = pooledDec.dataSync();
    for (let i = 0; i < c.length; i += 5) expect(c[i]).toBeCloseTo(d[i], 6);
    // Test mode is deterministic and the deltas do not depend on the ground truth.
    expect(Array.from(out2.deltaQE.dataSync())).toEqual(Array.from(out.deltaQE.dataSync()));
    tf.dispose([pooledGt, pooledDec]);
    disposeOut(out);
    disposeOut(out2);
  });

  it('scores each stage of q against the same stage of e, and e against q', () => {
    const out = mcoreForward(params, cfg, { features: feats }, { training: true, transitions: gt, seed: 2 });
    const pooled = stagePool(feats, gt, 5); // [V, 15, D]
    for (let b = 0; b < B; b++) {
      for (const [self, other, got] of [
        [b, B + b, out.deltaQE],
        [B + b, b, out.deltaEQ],
      ] as const) {
        let sum = 0;
        for (let s = 0; s < 3; s++) {
          const q = tf.slice(pooled, [self, 5 * s, 0], [1, 5, D]) as tf.Tensor3D;
          const m = tf.slice(pooled, [other, 5 * s, 0], [1, 5, D]) as tf.Tensor3D;
          const dec = decoderForward(params, cfg, q, m);
          const r = regressorForward(params, cfg, tf.reshape(dec, [5, D]) as tf.Tensor2D);
          sum += tf.sum(r).dataSync()[0];
          tf.dispose([q, m, dec, r]);
        }
        expect(got.dataSync()[b]).toBeCloseTo(sum / 15, 5);
      }
    }
    pooled.dispose();
    disposeOut(out);
  });

  it('gives every head parameter a nonzero gradient and keeps the tensor count flat', () => {
    const vars = Object.values(params) as tf.Variable[];
    const step = (seed: number): Record<string, number> => {
      const { value, grads } = tf.variableGrads(() => {
        const out = mcoreForward(params, cfg, { features: feats }, { training: true, transitions: gt, seed });
        return totalLoss(out, { scores, transitions: gt }, PAPER).total;
      }, vars);
      const norms: Record<string, number> = {};
      for (const [k, g] of Object.entries(namedGrads(params, grads)))
        norms[k] = Math.max(...Array.from(g.dataSync()).map(Math.abs));
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
      return norms;
    };
    const norms = step(0);
    expect(Object.keys(norms).sort()).toEqual(Object.keys(mcoreSpecs(cfg)).sort());
    for (const [k, n] of Object.entries(norms)) expect(n, k).toBeGreaterThan(0);
    const before = tf.memory().numTensors;
    for (let i = 1; i <= 3; i++) {
      step(i);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('runs end to end from frames through the backbone', () => {
    const withBackbone = initParams(mcoreSpecs(cfg, { backbone: true }), createRng(3));
    expect(regnetBlocks(cfg.backbone).length).toBeGreaterThan(0);
    const frames = tf.randomNormal([2, T, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor5D;
    const tr = [
      [4, 9],
      [6, 12],
    ];
    const vars = Object.values(withBackbone).filter((t) => t instanceof tf.Variable) as tf.Variable[];
    const { value, grads } = tf.variableGrads(() => {
      const out = mcoreForward(withBackbone, cfg, { frames }, { training: true, transitions: tr, seed: 1 });
      expect(out.features.shape).toEqual([2, T, D]);
      expect(out.deltaQE.shape).toEqual([1]);
      return totalLoss(out, { scores: [80, 77], transitions: tr }, PAPER).total;
    }, vars);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    // The segmenter's gradient reaches the backbone: its last block's weights move.
    const named = namedGrads(withBackbone, grads);
    const last = Object.keys(named).filter(
      (k) => k.startsWith('backbone.') && k.endsWith('conv3.conv.weight'),
    );
    expect(last.length).toBeGreaterThan(0);
    for (const k of last)
      expect(Math.max(...Array.from(named[k].dataSync()).map(Math.abs)), k).toBeGreaterThan(0);
    tf.dispose([value, frames, ...Object.values(grads)]);
    disposeParams(withBackbone);
  });
});
