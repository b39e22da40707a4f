/**
 * bench/heads/compare: the comparisons of `mcore eval` at FineDiving scale (749 test queries x 10
 * exemplars, once per protocol: 14,980 pairs of stage tokens through the full-size decoder and
 * regressor), in tfjs wasm (`Method.predict`, one query's exemplars at a time, one thread) and in ONNX
 * Runtime (`Method.openComparer`: the bundle's scorer graph, 32 queries a run, two threads), on the
 * same random weights and tokens. Prints both times and the largest score difference.
 * Run: npm run bench:compare [-- --queries 749]
 */
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { mcoreMethod } from '../../src/methods/mcore-method.ts';
import { featureDim } from '../../src/model/config.ts';
import { initParams } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import type { Comparison } from '../../src/train/method.ts';

const at = process.argv.indexOf('--queries');
const queries = at > 0 ? Number(process.argv[at + 1]) : 749;
if (!Number.isInteger(queries) || queries < 1) throw new Error('--queries must be a positive integer');
const M = 10;
const protocols = 2;
await useBackend('wasm');
const cfg = resolveConfig({ variant: 'mcore-regnety002' });
const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss });
const params = initParams(method.specs, createRng(0));
const per = cfg.model.stages * cfg.model.tokensPerStage * featureDim(cfg.model);
const rng = createRng(1);
const tokens = () => ({ data: Float32Array.from({ length: per }, () => rng.normal()) });
const bank = Array.from({ length: 64 }, tokens);
const comparisons: Comparison[] = Array.from({ length: queries * protocols }, (_, i) => ({
  query: bank[i % bank.length],
  exemplars: Array.from({ length: M }, (_, j) => ({
    encoding: bank[(i * 7 + j * 3 + 1) % bank.length],
    score: 50 + ((i + j) % 40),
  })),
}));

let t0 = performance.now();
const slow = comparisons.map((c) => method.predict(params, c.query, c.exemplars));
const tfjsSeconds = (performance.now() - t0) / 1000;

t0 = performance.now();
const comparer = await method.openComparer!(params);
const fast: number[] = [];
for (let i = 0; i < comparisons.length; i += 32)
  fast.push(...(await comparer.predict(comparisons.slice(i, i + 32))));
await comparer.dispose();
const ortSeconds = (performance.now() - t0) / 1000;

const maxDiff = Math.max(...fast.map((f, i) => Math.abs(f - slow[i])));
console.log(
  JSON.stringify({
    pairs: comparisons.length * M,
    tfjs_seconds: +tfjsSeconds.toFixed(2),
    onnxruntime_seconds: +ortSeconds.toFixed(2),
    speedup: +(tfjsSeconds / ortSeconds).toFixed(1),
    max_score_difference: maxDiff,
  }),
);
