import { beforeAll, describe, expect, it } from 'vitest';
import { tf, useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { McoreError } from '../../src/errors.ts';
import { aqaLoss, contrastiveLoss, tasLoss, totalLoss } from '../../src/model/losses.ts';
import { createRng } from '../../src/rng.ts';

/** The paper's losses: the defaults (test/config.test.ts pins them). */
const PAPER = resolveConfig().loss;

beforeAll(async () => {
  await useBackend('wasm');
});

const value = (t: tf.Tensor): number => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

describe('aqaLoss', () => {
  it('is MSE(dQE, yQ - yE) + MSE(dEQ, yE - yQ)', () => {
    // yQ - yE = [1, -3]: ((1-1)^2 + (2+3)^2)/2 = 12.5; yE - yQ = [-1, 3]: (0 + 9)/2 = 4.5.
    const l = aqaLoss(tf.tensor1d([1, 2]), tf.tensor1d([-1, 0]), [80, 70], tf.tensor1d([79, 73]));
    expect(value(l)).toBeCloseTo(17, 5);
  });
});

describe('tasLoss', () => {
  const lse = (xs: number[]) => Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));
  // logits [V = 2][T = 3][C = 2]
  const logits = [
    [
      [0, 1],
      [1, 1],
      [2, 1],
    ],
    [
      [3, 0],
      [0, 0],
      [0, -1],
    ],
  ];
  const transitions = [
    [2, 0],
    [1, 2],
  ];
  // -log softmax over time at the target frame, per video and channel.
  const nll = [
    [lse([0, 1, 2]) - 2, lse([1, 1, 1]) - 1],
    [lse([3, 0, 0]) - 0, lse([0, 0, -1]) + 1],
  ];

  it('weights the second transition by 2 and averages channels and videos', () => {
    const want = ((nll[0][0] + 2 * nll[0][1]) / 2 + (nll[1][0] + 2 * nll[1][1]) / 2) / 2;
    expect(value(tasLoss(tf.tensor3d(logits), transitions))).toBeCloseTo(want, 5);
    // The uniform channel of video 0 costs log 3.
    expect(nll[0][1]).toBeCloseTo(Math.log(3), 12);
  });

  it('takes other weights and checks their number', () => {
    const want = ((nll[0][0] + nll[0][1]) / 2 + (nll[1][0] + nll[1][1]) / 2) / 2;
    expect(value(tasLoss(tf.tensor3d(logits), transitions, [1, 1]))).toBeCloseTo(want, 5);
    expect(() => tasLoss(tf.tensor3d(logits), transitions, [1])).toThrow(McoreError);
    expect(() => tasLoss(tf.tensor3d(logits), [[3, 0], transitions[1]])).toThrow(/not a frame/);
  });
});

/** Scalar reference of the matched-set loss over rows zq[j], ze[j] (spec section 3). */
function refMatched(zq: number[][], ze: number[][], tau: number): number {
  const unit = (v: number[]) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const a = zq.map(unit);
  const b = ze.map(unit);
  const cos = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * v[i], 0);
  const side = (x: number[][], y: number[][]) => {
    let total = 0;
    for (let j = 0; j < x.length; j++) {
      let denom = 0;
      for (let k = 0; k < x.length; k++) denom += Math.exp(cos(x[j], y[k]) / tau);
      for (let k = 0; k < x.length; k++) if (k !== j) denom += Math.exp(cos(x[j], x[k]) / tau);
      total += -Math.log(Math.exp(cos(x[j], y[j]) / tau) / denom);
    }
    return total / x.length;
  };
  return (side(a, b) + side(b, a)) / 2;
}

describe('contrastiveLoss', () => {
  it("'token' on orthonormal matched tokens is 10 log(1 + 2 e^-2) (tau 0.5)", () => {
    // B = 1, K = 1, L = 2: positives have cos 1, every negative cos 0.
    const tokens = tf.tensor3d([
      [
        [1, 0],
        [0, 1],
      ],
      [
        [3, 0],
        [0, 0.5],
      ],
    ]);
    expect(value(contrastiveLoss(tokens, 'token', { stages: 1 }))).toBeCloseTo(
      10 * Math.log(1 + 2 * Math.exp(-2)),
      5,
    );
  });

  it("'stage' averages each stage first (hand case, tau 1)", () => {
    // B = 1, K = 2, L = 2. Query stage means [1, 0], [0, 1]; exemplar stage means [2, 0], [0, 2].
    const tokens = tf.tensor3d([
      [
        [1, 0],
        [1, 0],
        [0, 2],
        [0, 0],
      ],
      [
        [3, 0],
        [1, 0],
        [0, 1],
        [0, 3],
      ],
    ]);
    const got = value(contrastiveLoss(tokens, 'stage', { stages: 2, tau: 1 }));
    expect(got).toBeCloseTo(10 * Math.log(1 + 2 * Math.exp(-1)), 5);
  });

  it('matches the scalar reference on random tokens (B = 2, K = 3, L = 2, D = 3)', () => {
    const rng = createRng(4);
    const B = 2;
    const K = 3;
    const L = 2;
    const vals = Array.from({ length: 2 * B }, () =>
      Array.from({ length: K * L }, () => [0, 1, 2].map(() => rng.normal())),
    );
    const tokens = tf.tensor3d(vals);
    // token: mean over (b, s) of the per-stage matched loss (itself a mean over j), x10, tau 0.5.
    let tokenWant = 0;
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < K; s++) {
        const zq = vals[b].slice(s * L, (s + 1) * L);
        const ze = vals[B + b].slice(s * L, (s + 1) * L);
        tokenWant += refMatched(zq, ze, 0.5) / (B * K);
      }
    }
    expect(value(contrastiveLoss(tokens, 'token', { stages: K }))).toBeCloseTo(10 * tokenWant, 4);
    // stage: stage means, matched over the K stages of each pair, tau 0.1.
    const means = (v: number[][]) =>
      Array.from({ length: K }, (_, s) => [0, 1, 2].map((d) => (v[s * L][d] + v[s * L + 1][d]) / 2));
    let stageWant = 0;
    for (let b = 0; b < B; b++) stageWant += refMatched(means(vals[b]), means(vals[B + b]), 0.1) / B;
    expect(value(contrastiveLoss(tokens, 'stage', { stages: K }))).toBeCloseTo(10 * stageWant, 3);
    // Weight and tau options.
    expect(value(contrastiveLoss(tokens, 'token', { stages: K, weight: 1, tau: 0.2 }))).toBeCloseTo(
      (() => {
        let w = 0;
        for (let b = 0; b < B; b++) {
          for (let s = 0; s < K; s++) {
            w +=
              refMatched(vals[b].slice(s * L, s * L + L), vals[B + b].slice(s * L, s * L + L), 0.2) / (B * K);
          }
        }
        return w;
      })(),
      4,
    );
    tokens.dispose();
  });
});

describe('loss gradients', () => {
  it('equal central finite differences (contrastive token and stage, tas)', () => {
    const tokens = tf.randomNormal([4, 6, 3], 0, 1, 'float32', 3);
    const logits = tf.randomNormal([2, 5, 2], 0, 1, 'float32', 4);
    const fns: [string, tf.Tensor, (t: tf.Tensor) => tf.Scalar][] = [
      ['token', tokens, (t) => contrastiveLoss(t as tf.Tensor3D, 'token', { stages: 3 })],
      ['stage', tokens, (t) => contrastiveLoss(t as tf.Tensor3D, 'stage', { stages: 3 })],
      [
        'tas',
        logits,
        (t) =>
          tasLoss(t as tf.Tensor3D, [
            [1, 3],
            [0, 4],
          ]),
      ],
    ];
    for (const [name, x, f] of fns) {
      const g = tf.grad(f)(x).dataSync();
      const base = x.dataSync();
      const eps = 1e-2;
      for (let i = 0; i < base.length; i += 2) {
        const at = (d: number) => {
          const c = base.slice();
          c[i] += d;
          return value(f(tf.tensor(c, x.shape)));
        };
        const num = (at(eps) - at(-eps)) / (2 * eps);
        expect(Math.abs(g[i] - num), `${name}[${i}]`).toBeLessThan(5e-3 * Math.max(1, Math.abs(num)));
      }
      expect(g.every(Number.isFinite)).toBe(true);
    }
    tf.dispose([tokens, logits]);
  });
});

describe('totalLoss', () => {
  it('sums the named terms; contrastive none adds 0', () => {
    const rng = createRng(8);
    const out = {
      deltaQE: tf.tensor1d([0.5]),
      deltaEQ: tf.tensor1d([-1]),
      logits: tf.tensor3d(
        Array.from({ length: 2 }, () => Array.from({ length: 4 }, () => [rng.normal(), rng.normal()])),
      ),
      tokens: tf.tensor3d(
        Array.from({ length: 2 }, () => Array.from({ length: 6 }, () => [rng.normal(), rng.normal()])),
      ),
    };
    const targets = {
      scores: [70, 71],
      transitions: [
        [1, 2],
        [2, 3],
      ],
    };
    const terms = totalLoss(out, targets, PAPER);
    const aqa = value(aqaLoss(out.deltaQE, out.deltaEQ, [70], [71]));
    const tas = value(tasLoss(out.logits, targets.transitions));
    const cont = value(contrastiveLoss(out.tokens, 'token', { stages: 3 }));
    expect(value(terms.aqa)).toBeCloseTo(aqa, 5);
    expect(aqa).toBeCloseTo((0.5 + 1) ** 2 + (-1 - 1) ** 2, 5);
    expect(value(terms.tas)).toBeCloseTo(tas, 5);
    expect(value(terms.cont)).toBeCloseTo(cont, 5);
    expect(value(terms.total)).toBeCloseTo(aqa + tas + cont, 4);
    const none = totalLoss(out, targets, { ...PAPER, contrastive: 'none' });
    expect(value(none.cont)).toBe(0);
    expect(value(none.total)).toBeCloseTo(aqa + tas, 4);
    const weighted = totalLoss(out, targets, { ...PAPER, contrastive: 'none', aqaWeight: 2.5 });
    expect(value(weighted.aqa)).toBeCloseTo(2.5 * aqa, 3);
    expect(value(weighted.total)).toBeCloseTo(2.5 * aqa + tas, 3);
    const stage = totalLoss(out, targets, { ...PAPER, contrastive: 'stage', contWeight: 3, tau: 0.7 });
    expect(value(stage.cont)).toBeCloseTo(
      value(contrastiveLoss(out.tokens, 'stage', { stages: 3, tau: 0.7, weight: 3 })),
      5,
    );
    tf.dispose([...Object.values(out), ...Object.values(stage), none.aqa, none.tas]);
  });
});
