/**
 * The bundle in the page: its six files fetched from the server (`/bundle/<name>`), validated by the
 * scoring core, the three graphs opened in onnxruntime-web (wasm; threads when the page is
 * cross-origin isolated, which `mcore serve`'s headers make it). The wasm binaries come from the same
 * server (`/ort/`), never from a CDN.
 */
import * as ort from 'onnxruntime-web/wasm';
import {
  BUNDLE_FILES,
  createScoringCore,
  McoreError,
  type OnnxSession,
  parseExemplarBank,
  parseManifest,
  type ScoringCore,
  type TensorConstructor,
  wrapSession,
} from '../src/score/core.ts';

export interface RuntimeInfo {
  /** Threads onnxruntime-web runs with. */
  threads: number;
  crossOriginIsolated: boolean;
}

/** Configures onnxruntime-web: local wasm files, threads when isolated. */
export function configureRuntime(base: URL): RuntimeInfo {
  const isolated = globalThis.crossOriginIsolated === true;
  const threads = isolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.wasmPaths = new URL('ort/', base).href;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return { threads, crossOriginIsolated: isolated };
}

async function fetchBytes(url: URL, name: string, onBytes: (n: number) => void): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `bundle file ${name}: cannot fetch it (${(e as Error).message}); is mcore serve still running?`,
    );
  }
  if (!res.ok) throw new McoreError('E_INPUT', `bundle file ${name}: the server answered ${res.status}`);
  const reader = res.body!.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
    onBytes(value.length);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Loads the bundle under `base` (the page's address) and opens its sessions; reports fetched bytes. */
export async function loadBundle(base: URL, onBytes: (n: number) => void): Promise<ScoringCore> {
  const url = (name: string) => new URL(`bundle/${name}`, base);
  const text = async (name: string) => new TextDecoder().decode(await fetchBytes(url(name), name, onBytes));
  const manifest = parseManifest(await text(BUNDLE_FILES.manifest), BUNDLE_FILES.manifest);
  const [index, tokens, backbone, segmenter, scorer] = await Promise.all([
    text(BUNDLE_FILES.exemplarIndex),
    fetchBytes(url(BUNDLE_FILES.exemplarTokens), BUNDLE_FILES.exemplarTokens, onBytes),
    fetchBytes(url(BUNDLE_FILES.backbone), BUNDLE_FILES.backbone, onBytes),
    fetchBytes(url(BUNDLE_FILES.segmenter), BUNDLE_FILES.segmenter, onBytes),
    fetchBytes(url(BUNDLE_FILES.scorer), BUNDLE_FILES.scorer, onBytes),
  ]);
  const exemplars = parseExemplarBank(index, tokens, manifest, {
    index: BUNDLE_FILES.exemplarIndex,
    tokens: BUNDLE_FILES.exemplarTokens,
  });
  const opened: OnnxSession[] = [];
  const open = async (bytes: Uint8Array, name: string): Promise<OnnxSession> => {
    try {
      const s = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
      const wrapped = wrapSession(s, ort.Tensor as unknown as TensorConstructor);
      opened.push(wrapped);
      return wrapped;
    } catch (e) {
      throw new McoreError(
        'E_INPUT',
        `bundle file ${name}: onnxruntime-web cannot open the graph (${String((e as Error).message ?? e).split('\n')[0]}); export the bundle again with 'mcore export'`,
      );
    }
  };
  try {
    const sessions = {
      backbone: await open(backbone, BUNDLE_FILES.backbone),
      segmenter: await open(segmenter, BUNDLE_FILES.segmenter),
      scorer: await open(scorer, BUNDLE_FILES.scorer),
    };
    return createScoringCore({ manifest, exemplars, sessions, where: BUNDLE_FILES.scorer });
  } catch (e) {
    for (const s of opened) await s.session.release();
    throw e;
  }
}

/** Total bytes of the bundle's files (for the load progress bar), from HEAD requests. */
export async function bundleSize(base: URL): Promise<number> {
  const sizes = await Promise.all(
    Object.values(BUNDLE_FILES).map(async (name) => {
      try {
        const res = await fetch(new URL(`bundle/${name}`, base), { method: 'HEAD' });
        return Number(res.headers.get('content-length') ?? 0);
      } catch {
        return 0;
      }
    }),
  );
  return sizes.reduce((a, b) => a + b, 0);
}
