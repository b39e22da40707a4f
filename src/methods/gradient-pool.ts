/**
 * The gradient pool of data-parallel training (`train.threads`, src/train/parallel.ts): `threads`
 * worker threads (node:worker_threads), each with its own tfjs wasm backend (tfjs's wasm build runs one
 * thread in Node, so a second core needs a second engine) and a copy of the method and parameters.
 * Each step sends the current trainable values and one share of the batch to each worker.
 *
 * @example
 * const pool = await openGradientPool({ method: 'mcore', model: cfg.model, options, params, threads: 2 });
 * try { await train(method, params, source, { ...opts, pool }); } finally { await pool.close(); }
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { readInto } from '../backend.ts';
import { McoreError, type McoreErrorCode } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Params } from '../model/params.ts';
import type { GradientPool, ShareBatch } from '../train/parallel.ts';
import type { MethodName, MethodOptions } from './registry.ts';

/**
 * Where each trainable parameter lies in the shared buffers: values (written by the pool before each
 * step, read by every worker) and each worker's gradients (written by the worker, read by the pool).
 * Shared memory, because structured cloning the ~26 MB of the full-size head's values costs ~150 ms
 * a message (measured), a quarter of the step it saves.
 */
export interface SharedLayout {
  names: string[];
  offsets: number[];
  sizes: number[];
  /** Float32 elements in all. */
  total: number;
}

/** What a worker starts from (its workerData). */
export interface GradientWorkerInit {
  method: MethodName;
  model: ModelConfig;
  options: MethodOptions;
  params: Record<string, { data: Float32Array; shape: number[]; trainable: boolean }>;
  layout: SharedLayout;
  /** Float32 values of the trainable parameters, by `layout` (shared by all workers). */
  values: SharedArrayBuffer;
  /** Float32 gradients of this worker's share, by `layout`. */
  grads: SharedArrayBuffer;
}

/** One step's request to a worker (the values are in the shared buffer). */
export interface GradientWorkerRequest {
  share: ShareBatch;
  seed: number;
}

export type GradientWorkerReply =
  | { ok: true; terms: Record<string, number> }
  | { ok: false; code: McoreErrorCode | undefined; message: string };

export interface GradientPoolOptions {
  method: MethodName;
  model: ModelConfig;
  options: MethodOptions;
  /** The parameters the workers start from (every one, trainable or not). */
  params: Params;
  /** Worker threads (>= 1). */
  threads: number;
}

/**
 * A worker running ./gradient-worker: the compiled .js beside this file, or, when this file runs from
 * source (tsx, vitest), the .ts source through tsx's module hooks registered in the worker first.
 */
function startWorker(workerData: GradientWorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./gradient-worker.js', import.meta.url), { workerData });
  }
  // tsx's ESM entry (its `import` condition); `require.resolve` gives the CommonJS twin beside it.
  const api = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const entry = new URL('./gradient-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** Starts `threads` workers with copies of `params`; resolves when every one is ready. */
export async function openGradientPool(opts: GradientPoolOptions): Promise<GradientPool> {
  const names = Object.keys(opts.params).filter((k) => {
    const t = opts.params[k];
    return t instanceof tf.Variable && t.trainable;
  });
  const sizes = names.map((k) => opts.params[k].size);
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  const layout: SharedLayout = { names, offsets, sizes, total: sizes.reduce((a, b) => a + b, 0) };
  const values = new SharedArrayBuffer(4 * layout.total);
  const valueView = new Float32Array(values);
  const gradBuffers = Array.from({ length: opts.threads }, () => new SharedArrayBuffer(4 * layout.total));
  const init: Omit<GradientWorkerInit, 'grads'> = {
    layout,
    values,
    method: opts.method,
    model: opts.model,
    options: opts.options,
    params: Object.fromEntries(
      Object.entries(opts.params).map(([k, t]) => [
        k,
        {
          data: t.dataSync() as Float32Array,
          shape: [...t.shape],
          trainable: t instanceof tf.Variable && t.trainable,
        },
      ]),
    ),
  };
  const workers = gradBuffers.map((grads) => startWorker({ ...init, grads }));
  const close = async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  };
  try {
    await Promise.all(workers.map((w) => nextReply(w)));
  } catch (err) {
    await close();
    throw new McoreError(
      'E_BACKEND',
      `train.threads=${opts.threads}: a gradient worker thread could not start (${(err as Error).message}); ` +
        'train on this thread alone with --set train.threads=1',
    );
  }
  return {
    workers: workers.length,
    async grads(current, shares, seeds) {
      names.forEach((k, i) => {
        const v = current[k];
        if (v?.size !== sizes[i]) {
          throw new Error(
            `gradient pool: parameter ${k} is ${v ? `${v.size} values` : 'missing'}, not ${sizes[i]}`,
          );
        }
        readInto(v, valueView, offsets[i]);
      });
      const replies = shares.map((share, i) => {
        const w = workers[i];
        const reply = nextReply(w);
        w.postMessage({ share, seed: seeds[i] } satisfies GradientWorkerRequest, [
          share.input.data.buffer as ArrayBuffer,
        ]);
        return reply;
      });
      const out = await Promise.allSettled(replies);
      const failed = out.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return out.map((r, i) => {
        const reply = (r as PromiseFulfilledResult<GradientWorkerReply | { ready: true }>).value;
        if (!('ok' in reply)) throw new Error('gradient worker: a second ready message');
        if (!reply.ok) {
          throw reply.code
            ? new McoreError(reply.code, reply.message)
            : new Error(`gradient worker: ${reply.message}`);
        }
        const view = new Float32Array(gradBuffers[i]);
        const grads = Object.fromEntries(
          names.map((k, j) => [k, view.subarray(offsets[j], offsets[j] + sizes[j])]),
        );
        return { terms: reply.terms, grads };
      });
    },
    close,
  };
}

/** The worker's next message, or its crash or exit as an error. */
function nextReply(w: Worker): Promise<GradientWorkerReply | { ready: true }> {
  return new Promise((resolve, reject) => {
    const off = () => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    const onMessage = (m: GradientWorkerReply | { ready: true }) => {
      off();
      resolve(m);
    };
    const onError = (err: Error) => {
      off();
      reject(new Error(`gradient worker failed: ${err.message}`));
    };
    const onExit = (code: number) => {
      off();
      reject(new Error(`gradient worker exited (code ${code})`));
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}
