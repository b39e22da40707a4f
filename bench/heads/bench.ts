/**
 * bench/heads: one training step of the full-size MCoRe head (BiGRU 368, decoder 3 x 368 x 8 heads,
 * regressor, all three losses, gradients, Adam; 8 pairs x 96 frames of given features) in mcore (tfjs
 * wasm, one thread) and in the PyTorch peer (CPU, 2 threads), in the same run. Prints both medians and
 * the ratio; and the same step data-parallel on two threads (`train.threads=2`: two gradient workers,
 * 4 pairs each). Run: npm run bench:heads [-- --steps 10]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.ts';
import { resolveConfig } from '../../src/config.ts';
import { openGradientPool } from '../../src/methods/gradient-pool.ts';
import { mcoreMethod } from '../../src/methods/mcore-method.ts';
import { initParams } from '../../src/model/params.ts';
import { createRng } from '../../src/rng.ts';
import { createAdamState, DEFAULT_ADAM } from '../../src/train/adam.ts';
import { parallelTrainStep } from '../../src/train/parallel.ts';
import { trainStep } from '../../src/train/step.ts';

const stepsAt = process.argv.indexOf('--steps');
const steps = stepsAt > 0 ? Number(process.argv[stepsAt + 1]) : 10;
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer`);
await useBackend('wasm');
const cfg = resolveConfig({ variant: 'mcore-regnety002' });
const method = mcoreMethod(cfg.model, { backbone: false, loss: cfg.loss });
const params = initParams(method.specs, createRng(0));
const V = 16;
const T = 96;
const D = 368;
const rng = createRng(1);
const input = tf.randomNormal([V, T, D], 0, 1, 'float32', 1);
const batch = {
  input,
  transitions: Array.from({ length: V }, () => [10 + rng.int(30), 50 + rng.int(30)]),
  scores: Array.from({ length: V }, () => 50 + 40 * rng.next()),
};
const adam = createAdamState();
const times: number[] = [];
for (let i = 0; i < steps + 2; i++) {
  const t0 = performance.now();
  trainStep(method, params, method.specs, batch, adam, DEFAULT_ADAM, i);
  if (i >= 2) times.push(performance.now() - t0);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ours = median(times);
const options = { backbone: false, loss: cfg.loss, scoreScale: cfg.train.scoreScale };
const pool = await openGradientPool({ method: 'mcore', model: cfg.model, options, params, threads: 2 });
const parallelTimes: number[] = [];
for (let i = 0; i < steps + 2; i++) {
  const t0 = performance.now();
  await parallelTrainStep(method, params, method.specs, batch, adam, DEFAULT_ADAM, i, pool);
  if (i >= 2) parallelTimes.push(performance.now() - t0);
}
await pool.close();
const two = median(parallelTimes);
const peer = JSON.parse(
  execFileSync(
    '/usr/bin/python3',
    [path.join(import.meta.dirname, '../peer/bench_heads.py'), '--steps', String(steps)],
    {
      encoding: 'utf8',
    },
  )
    .trim()
    .split('\n')
    .pop()!,
) as { ms_per_step: number };
console.log(
  JSON.stringify({
    mcore_ms_per_step: +ours.toFixed(1),
    mcore_two_threads_ms_per_step: +two.toFixed(1),
    two_threads_speedup: +(ours / two).toFixed(2),
    pytorch_ms_per_step: +peer.ms_per_step.toFixed(1),
    ratio: +(ours / peer.ms_per_step).toFixed(2),
    steps,
  }),
);
