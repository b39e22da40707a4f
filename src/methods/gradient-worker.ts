/**
 * The entry of a gradient worker thread (./gradient-pool.ts): its own tfjs backend (the pool's) and a copy of
 * the method and its parameters; per message it takes the current trainable values and a share of a
 * batch, and answers with the share's loss terms, its gradients written to its shared buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { readInto, useBackend } from '../backend.ts';
import { McoreError } from '../errors.ts';
import type { Params } from '../model/params.ts';
import type { ShareBatch } from '../train/parallel.ts';
import { stepGrads } from '../train/step.ts';
import type { GradientWorkerInit, GradientWorkerReply, GradientWorkerRequest } from './gradient-pool.ts';
import { createMethod } from './registry.ts';

const init = workerData as GradientWorkerInit;
const port = parentPort!;
await useBackend(init.backend);
const method = createMethod(init.method, init.model, init.options);
const params: Params = {};
for (const [name, p] of Object.entries(init.params)) {
  params[name] = tf.variable(tf.tensor(p.data, p.shape), p.trainable);
}

const { names, offsets, sizes } = init.layout;
const values = new Float32Array(init.values);
const gradsOut = new Float32Array(init.grads);

function grads(share: ShareBatch, seed: number): GradientWorkerReply {
  names.forEach((name, i) => {
    const v = values.subarray(offsets[i], offsets[i] + sizes[i]);
    tf.tidy(() => (params[name] as tf.Variable).assign(tf.tensor(v, params[name].shape)));
  });
  const input = tf.tensor(share.input.data, share.input.shape);
  try {
    const { terms, grads } = stepGrads(method, params, { ...share, input }, seed);
    names.forEach((name, i) => {
      readInto(grads[name], gradsOut, offsets[i]);
    });
    tf.dispose(Object.values(grads));
    return { ok: true, terms };
  } finally {
    input.dispose();
  }
}

port.on('message', (msg: GradientWorkerRequest) => {
  let reply: GradientWorkerReply;
  try {
    reply = grads(msg.share, msg.seed);
  } catch (err) {
    const code = err instanceof McoreError ? err.code : undefined;
    reply = { ok: false, code, message: (err as Error).message };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });
