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
import { type BackendName, readInto } from '../backend.ts';
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
  backend: BackendName;
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
  /** The tfjs backend the workers use (this thread's: `tf.getBackend()`). */
  backend?: BackendName;
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
    backend: opts.backend ?? (tf.getBackend() === 'cpu' ? 'cpu' : 'wasm'),
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
  const workers: WorkerHandle[] = [];
  const close = async () => {
    await Promise.all(workers.map((h) => h.close()));
  };
  try {
    for (const grads of gradBuffers) workers.push(new WorkerHandle(startWorker({ ...init, grads })));
    await Promise.all(workers.map((h) => h.next()));
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
      const replies = shares.map((share, i) =>
        workers[i].next({ share, seed: seeds[i] }, [share.input.data.buffer as ArrayBuffer]),
      );
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

/**
 * A worker with listeners for its whole life: its next message answers the request in flight; a crash
 * or exit (between steps too) marks it dead, fails the request in flight and every later one at once.
 */
class WorkerHandle {
  private dead: Error | undefined;
  private closing = false;
  private pending:
    | { resolve: (m: GradientWorkerReply | { ready: true }) => void; reject: (e: Error) => void }
    | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (m: GradientWorkerReply | { ready: true }) => {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(m);
    });
    worker.on('error', (err: Error) => this.fail(new Error(`gradient worker failed: ${err.message}`)));
    worker.on('exit', (code: number) => this.fail(new Error(`gradient worker exited (code ${code})`)));
  }

  private fail(err: Error): void {
    if (this.closing) return;
    this.dead ??= new Error(`${err.message}; train on this thread alone with --set train.threads=1`);
    const p = this.pending;
    this.pending = undefined;
    p?.reject(this.dead);
  }

  /** Posts `request` (if any) and resolves with the worker's next message. */
  next(
    request?: GradientWorkerRequest,
    transfer: ArrayBuffer[] = [],
  ): Promise<GradientWorkerReply | { ready: true }> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      if (request) this.worker.postMessage(request, transfer);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
