/**
 * The scoring page of `mcore serve`: loads the bundle the server hands out, takes a video file or a
 * folder of frames (picked or dropped), samples T frames as Node does (./decode.ts), runs backbone,
 * segmenter and scorer in onnxruntime-web through the runtime-neutral scoring core, and shows the
 * result (./render.ts). Every failure is a message on the page; the page takes the next file.
 *
 * For tests and scripts: `document.body.dataset.state` is loading | ready | busy | done | error |
 * broken (the bundle did not load); `#result[data-result]` holds the last result as JSON (ScoreResult
 * without the frames), `#message` the last message.
 */
import { McoreError, type ScoreResult, type ScoreStep, type ScoringCore } from '../src/score/core.ts';
import { bundleSize, configureRuntime, loadBundle, type RuntimeInfo } from './bundle.ts';
import { InputProblem, type PickedFile, readFrameFolder, readVideo } from './decode.ts';
import { renderResult } from './render.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const STEPS: readonly ScoreStep[] = ['decode', 'backbone', 'segmenter', 'pool', 'scorer'];
const IMAGE = /\.(jpe?g|png|bmp|gif|webp|tiff?)$/i;

let core: ScoringCore | undefined;
let runtime: RuntimeInfo;
let busy = false;

function setState(state: 'loading' | 'ready' | 'busy' | 'done' | 'error' | 'broken'): void {
  document.body.dataset.state = state;
}

function message(kind: 'error' | 'warning' | 'info' | '', text: string): void {
  const m = $('message');
  m.className = kind;
  m.textContent = text;
}

function describe(e: unknown): string {
  if (e instanceof McoreError || e instanceof InputProblem) return e.message;
  console.error(e);
  return `unexpected error (please report it): ${e instanceof Error ? e.message : String(e)}`;
}

function stepBar(step: ScoreStep, value: number, note = ''): void {
  $<HTMLProgressElement>(`p-${step}`).value = value;
  $(`t-${step}`).textContent = note;
}

function setInputsEnabled(on: boolean): void {
  for (const id of ['video', 'folder', 'action-type', 'exemplars']) {
    $<HTMLInputElement>(id).disabled = !on;
  }
  $('drop').classList.toggle('disabled', !on);
}

async function start(): Promise<void> {
  setState('loading');
  setInputsEnabled(false);
  const base = new URL('.', location.href);
  runtime = configureRuntime(base);
  $('runtime').textContent =
    `onnxruntime-web (wasm), ${runtime.threads} thread(s)` +
    (runtime.crossOriginIsolated ? '' : ' — the page is not cross-origin isolated, so threads are off');
  const bar = $<HTMLProgressElement>('p-load');
  try {
    const total = await bundleSize(base);
    let got = 0;
    bar.max = Math.max(1, total);
    core = await loadBundle(base, (n) => {
      got += n;
      bar.value = got;
    });
  } catch (e) {
    bar.value = 0;
    message('error', `the bundle failed to load: ${describe(e)}`);
    $('bundle').textContent = 'no bundle loaded';
    setState('broken');
    return;
  }
  bar.value = bar.max;
  const m = core.manifest;
  $('bundle').textContent =
    `${m.source?.dataset ?? 'bundle'}: T = ${m.frames} frames at ${m.transform.resize.width}x${m.transform.resize.height}, ` +
    `${m.stages} stages (${m.stageNames.join(', ')}), ${core.exemplars.records.length} exemplars`;
  const select = $<HTMLSelectElement>('action-type');
  for (const t of core.actionTypes) {
    const o = document.createElement('option');
    o.value = t;
    o.textContent = t;
    select.append(o);
  }
  setInputsEnabled(true);
  setState('ready');
  message('info', 'drop a video (MP4, WebM) or a folder of frames, or pick one above');
}

type Query = { kind: 'video'; file: File } | { kind: 'folder'; files: PickedFile[] };

async function score(q: Query): Promise<void> {
  if (!core || busy) return;
  busy = true;
  setInputsEnabled(false);
  setState('busy');
  message('info', 'scoring…');
  for (const s of STEPS) stepBar(s, 0);
  const resultEl = $('result');
  try {
    const exemplars = Number($<HTMLInputElement>('exemplars').value || '10');
    const actionType = $<HTMLSelectElement>('action-type').value || undefined;
    const opts = { actionType, exemplars, keepFrames: true };
    core.checkOptions(opts);
    const m = core.manifest;
    const target = { ...m.transform.resize };
    const onDecode = (done: number, total: number) => stepBar('decode', done / total, `${done}/${total}`);
    const t0 = performance.now();
    let query: Awaited<ReturnType<typeof readVideo>>;
    if (q.kind === 'video') {
      if (IMAGE.test(q.file.name)) {
        throw new InputProblem(
          `${q.file.name}: is a single image; give a video file or the folder holding the clip's frames`,
        );
      }
      query = await readVideo(q.file, m.frames, target, onDecode);
    } else {
      query = await readFrameFolder(q.files, m.frames, target, onDecode);
    }
    const decodeMs = performance.now() - t0;
    stepBar('decode', 1, `${decodeMs.toFixed(0)} ms`);
    const result: ScoreResult = await core.scoreQuery(
      query,
      { ...opts, onProgress: (e) => stepBar(e.step, 1, `${e.ms.toFixed(0)} ms`) },
      decodeMs,
    );
    const { frames: _frames, ...plain } = result;
    resultEl.dataset.result = JSON.stringify(plain);
    await renderResult(resultEl, result, runtime);
    if (result.warnings.length > 0) message('warning', `scored with warnings: ${result.warnings.join('; ')}`);
    else message('info', `scored ${query.path}`);
    setState('done');
  } catch (e) {
    resultEl.replaceChildren();
    delete resultEl.dataset.result;
    message('error', describe(e));
    setState('error');
  } finally {
    busy = false;
    setInputsEnabled(true);
  }
}

/** The files of a dropped folder (top level and below, with paths relative to the drop). */
async function readDirectory(dir: FileSystemDirectoryEntry): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  const walk = async (d: FileSystemDirectoryEntry, prefix: string): Promise<void> => {
    const reader = d.createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (batch.length === 0) break;
      for (const e of batch) {
        if (e.isFile) {
          const file = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej));
          out.push({ file, path: `${prefix}/${e.name}` });
        } else if (e.isDirectory) {
          await walk(e as FileSystemDirectoryEntry, `${prefix}/${e.name}`);
        }
      }
    }
  };
  await walk(dir, dir.name);
  return out;
}

function wire(): void {
  const video = $<HTMLInputElement>('video');
  video.addEventListener('change', () => {
    const file = video.files?.[0];
    video.value = '';
    if (file) void score({ kind: 'video', file });
  });
  const folder = $<HTMLInputElement>('folder');
  folder.addEventListener('change', () => {
    const files = [...(folder.files ?? [])].map((file) => ({
      file,
      path: file.webkitRelativePath || file.name,
    }));
    folder.value = '';
    if (files.length > 0) void score({ kind: 'folder', files });
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const item = e.dataTransfer?.items[0];
    const entry = item?.webkitGetAsEntry();
    if (entry?.isDirectory) {
      readDirectory(entry as FileSystemDirectoryEntry).then(
        (files) => score({ kind: 'folder', files }),
        (err: unknown) => message('error', `cannot read the dropped folder: ${describe(err)}`),
      );
      return;
    }
    const file = e.dataTransfer?.files[0];
    if (file) void score({ kind: 'video', file });
  });
  window.addEventListener('unhandledrejection', (e) => {
    message('error', describe(e.reason));
    e.preventDefault();
  });
}

wire();
void start();
