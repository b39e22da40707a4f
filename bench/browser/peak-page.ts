/**
 * The peak probe of bench/browser: one MatMul graph (`matmul.onnx`, beside this page) run in
 * onnxruntime-web (wasm, 2 threads, cross-origin isolated), timed; the times go to
 * `document.body.dataset.times` (JSON, ms), or `dataset.error`.
 */
import * as ort from 'onnxruntime-web/wasm';

declare const document: { body: { dataset: Record<string, string> } };
declare const location: { search: string; href: string };

async function main(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const n = Number(q.get('n'));
  const runs = Number(q.get('runs'));
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  ort.env.wasm.numThreads = Number(q.get('threads'));
  ort.env.wasm.proxy = false;
  const bytes = new Uint8Array(await (await fetch('matmul.onnx')).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)),
    [n, n],
  );
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    const out = await session.run({ x });
    times.push(performance.now() - t0);
    out.y.dispose();
  }
  await session.release();
  document.body.dataset.times = JSON.stringify(times.slice(1)); // the first run warms up
}

main().catch((e: unknown) => {
  document.body.dataset.error = String(e);
});
