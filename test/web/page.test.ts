/**
 * The scoring page in a real browser: Debian's Chromium driven by playwright-core (no downloaded
 * browser). `mcore serve` (from source, on the page freshly built into a temporary folder, handed over
 * by MCORE_WEB_ROOT) serves a tiny bundle; the test
 * uploads a PNG frame folder and an MP4, reads the result from `#result[data-result]`, compares it with
 * `mcore score --json`, feeds bad inputs (each must leave a message and a usable page), a bundle that
 * fails to load, and checks that no page error or console error happened. Saves a screenshot
 * (MCORE_SCREENSHOT=path copies it there, e.g. docs/score-in-browser.png).
 *
 * Skipped, saying so, when there is no Chromium (MCORE_CHROMIUM, default /usr/bin/chromium; install
 * it with `apt-get install -y chromium`).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.mjs';
import { resultTimelineLayout, thumbnailFrames } from '../../src/charts/specs.ts';
import { openSynthDive } from '../../src/data/open.ts';
import { encodeMp4, ffmpegPath } from '../../src/data/video.ts';
import { type ScoreResult, signed } from '../../src/score/core.ts';
import { makeTestBundle, type TestBundle } from '../helpers/bundle.ts';
import { MCORE_ARGV, mcore, repoRoot } from '../helpers/cli.ts';
import { checkDeltaBars } from '../helpers/vega-svg.ts';

// Browser globals used inside page.evaluate callbacks (this file is type-checked with Node's lib).
interface PageElement {
  textContent: string | null;
  title: string;
  dataset: Record<string, string | undefined>;
  value: string;
}
declare const document: {
  body: PageElement;
  getElementById(id: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};
declare const crossOriginIsolated: boolean;
declare class DataTransfer {
  items: { add(file: unknown): void };
}
declare class File {
  constructor(parts: unknown[], name: string, o: { type: string });
}
declare function atob(s: string): string;

const CHROMIUM = process.env.MCORE_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  console.warn(`test/web/page.test.ts: skipped, no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
}

/** The launch flags of the issue: headless, no sandbox (root in CI), nothing from the network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const run = promisify(execFile);

type Plain = Omit<ScoreResult, 'frames'>;

/** Starts `mcore serve --port 0` from source; resolves with the printed address. */
function serve(bundleDir: string, webRoot: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...MCORE_ARGV, 'serve', '--model', bundleDir, '--port', '0'], {
    cwd: repoRoot,
    env: { ...process.env, MCORE_WEB_ROOT: webRoot },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], child });
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code) => reject(new Error(`mcore serve exited with ${code}: ${err}`)));
  });
}

function stop(child: ChildProcess | undefined): Promise<number | null> {
  if (!child || child.exitCode !== null) return Promise.resolve(child?.exitCode ?? null);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

let tmp: string;
let tb: TestBundle;
let server: { url: string; child: ChildProcess } | undefined;
let broken: { url: string; child: ChildProcess } | undefined;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];

/** Hands `files` to the page's input `selector` and waits for the outcome. */
async function submit(selector: '#video' | '#folder', files: string | string[]) {
  await page.evaluate(() => {
    document.body.dataset.state = 'submitted';
  });
  await page.setInputFiles(selector, files);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, {
    timeout: 60_000,
  });
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    message: document.getElementById('message')!.textContent ?? '',
    result: document.getElementById('result')!.dataset.result,
  }));
}

async function nodeScore(input: string): Promise<Plain> {
  const r = await mcore('score', input, '--model', tb.bundleDir, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Plain;
}

describe.skipIf(!HAVE_CHROMIUM)('the scoring page in Chromium', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'mcore-page-'));
    tb = await makeTestBundle(tmp);
    // The page as the sources are now, in a folder of its own (dist/web may be in use by another test).
    const webRoot = await buildWeb({ outdir: path.join(tmp, 'web') });
    server = await serve(tb.bundleDir, webRoot);
    // A bundle whose backbone graph is not ONNX: files present, so `mcore serve` starts; the page fails.
    const bad = path.join(tmp, 'broken');
    await mkdir(bad);
    for (const f of [
      'manifest.json',
      'segmenter.onnx',
      'scorer.onnx',
      'exemplars.json',
      'exemplars.safetensors',
    ]) {
      await copyFile(path.join(tb.bundleDir, f), path.join(bad, f));
    }
    await writeFile(path.join(bad, 'backbone.onnx'), 'not an onnx graph');
    broken = await serve(bad, webRoot);
    context = await chromium.launchPersistentContext(await mkdtemp(path.join(tmpdir(), 'mcore-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 900 },
    });
    page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
    });
    await page.goto(server.url);
    await page.waitForFunction(() => ['ready', 'broken'].includes(document.body.dataset.state ?? ''), null, {
      timeout: 60_000,
    });
  });

  afterAll(async () => {
    await context?.close();
    await stop(server?.child);
    await stop(broken?.child);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loads the bundle cross-origin isolated, with onnxruntime-web threads', async () => {
    const s = await page.evaluate(() => ({
      state: document.body.dataset.state,
      isolated: crossOriginIsolated,
      runtime: document.getElementById('runtime')!.textContent,
      types: [...document.querySelectorAll('#action-type option')].map((o) => o.value),
    }));
    expect(s.state).toBe('ready');
    expect(s.isolated).toBe(true);
    expect(s.runtime).toMatch(/onnxruntime-web \(wasm\), \d+ thread/);
    const bank = JSON.parse(await readFile(path.join(tb.bundleDir, 'exemplars.json'), 'utf8')) as {
      exemplars: { actionType: string }[];
    };
    expect(s.types).toEqual(['', ...[...new Set(bank.exemplars.map((e) => e.actionType))].sort()]);
  });

  it('scores a PNG frame folder as mcore score --json does (score within 1e-4, same transitions)', async () => {
    const node = await nodeScore(tb.folder);
    const out = await submit('#folder', tb.folder);
    expect(out.state, out.message).toBe('done');
    const r = JSON.parse(out.result!) as Plain;
    expect(r.input.sampled).toEqual(node.input.sampled);
    expect(r.input.sourceFrames).toBe(node.input.sourceFrames);
    expect(r.transitions).toEqual(node.transitions);
    expect(r.exemplars.map((e) => e.key)).toEqual(node.exemplars.map((e) => e.key));
    expect(Math.abs(r.score - node.score)).toBeLessThan(1e-4);
    for (let s = 0; s < r.perStage.length; s++) {
      expect(r.perStage[s].mean).toBeCloseTo(node.perStage[s].mean, 4);
    }
    // The page shows what the result says.
    expect(await page.textContent('#score-value')).toBe(r.score.toFixed(2));
    // The charts, drawn by vega in the page: per stage one bar per exemplar (heights proportional to the
    // deltas) and the mean; the stages over the frames, above thumbnails of every stride-th frame.
    const K = r.perStage.length;
    const perStage = await page.innerHTML('.stagechart');
    expect(await page.locator('.stagechart g.deltaBars_marks > path').count()).toBe(r.exemplars.length * K);
    expect(checkDeltaBars(perStage, r.perStage)).toBeGreaterThan(0);
    expect(await page.locator('.stagechart g.deltaMeans_marks > line').count()).toBe(K);
    expect(await page.locator('.stagebar g.stageBars_marks > path').count()).toBe(K);
    const T = r.input.sampled.length;
    const thumbs = thumbnailFrames(T, resultTimelineLayout(T)).length;
    expect(thumbs).toBeLessThanOrEqual(16);
    expect(await page.locator('.stagebar g.thumbnails_marks > image').count()).toBe(thumbs);
    // vega's tooltip: hovering the tallest bar names its stage, exemplar and delta.
    const deltas = r.perStage.flatMap((s) => s.deltas.map((d) => ({ ...d, stage: s.stage })));
    const tallest = deltas.reduce((a, d, i) => (Math.abs(d.delta) > Math.abs(deltas[a].delta) ? i : a), 0);
    await page.locator('.stagechart g.deltaBars_marks > path').nth(tallest).hover();
    const tip = `${deltas[tallest].stage} vs ${deltas[tallest].exemplar}: ${signed(deltas[tallest].delta)}`;
    await page.waitForFunction(
      (t: string) =>
        [...document.querySelectorAll('.stagechart[title], .stagechart [title]')].some((e) => e.title === t),
      tip,
      { timeout: 5_000 },
    );
    expect(await page.locator('.exemplars tr').count()).toBe(r.exemplars.length + 1);
  });

  it('scores an MP4 with the transitions of Node within 1 sampled frame', async () => {
    const node = await nodeScore(tb.mp4);
    const out = await submit('#video', tb.mp4);
    expect(out.state, out.message).toBe('done');
    const r = JSON.parse(out.result!) as Plain;
    expect(r.input.sampled).toEqual(node.input.sampled);
    expect(r.input.fps).toBe(node.input.fps);
    r.transitions.forEach((t, k) => {
      expect(Math.abs(t - node.transitions[k])).toBeLessThanOrEqual(1);
    });
    const diff = Math.abs(r.score - node.score);
    console.log(
      `MP4: page ${r.score.toFixed(5)} vs node ${node.score.toFixed(5)} (|diff| ${diff.toExponential(2)})`,
    );
    expect(diff).toBeLessThan(0.5);
    const shot = path.join(tmp, 'page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(20_000);
    if (process.env.MCORE_SCREENSHOT) await copyFile(shot, process.env.MCORE_SCREENSHOT);
  });

  it('scores a VP9 WebM with the transitions of Node within 1 sampled frame', async () => {
    const webm = path.join(tmp, 'clip.webm');
    await run(ffmpegPath(), [
      '-v',
      'error',
      '-y',
      '-i',
      tb.mp4,
      '-c:v',
      'libvpx-vp9',
      '-b:v',
      '0',
      '-crf',
      '20',
      webm,
    ]);
    const node = await nodeScore(webm);
    const out = await submit('#video', webm);
    expect(out.state, out.message).toBe('done');
    const r = JSON.parse(out.result!) as Plain;
    expect(r.input.sampled).toEqual(node.input.sampled);
    r.transitions.forEach((t, k) => {
      expect(Math.abs(t - node.transitions[k])).toBeLessThanOrEqual(1);
    });
    const diff = Math.abs(r.score - node.score);
    console.log(
      `WebM: page ${r.score.toFixed(5)} vs node ${node.score.toFixed(5)} (|diff| ${diff.toExponential(2)})`,
    );
    expect(diff).toBeLessThan(0.5);
  });

  it('scores a dropped video with an action type and an exemplar count, as Node does with those options', async () => {
    const bank = JSON.parse(await readFile(path.join(tb.bundleDir, 'exemplars.json'), 'utf8')) as {
      exemplars: { actionType: string }[];
    };
    const type = bank.exemplars[0].actionType;
    const r0 = await mcore(
      'score',
      tb.mp4,
      '--model',
      tb.bundleDir,
      '--json',
      '--action-type',
      type,
      '--exemplars',
      '3',
    );
    expect(r0.code, r0.stderr).toBe(0);
    const node = JSON.parse(r0.stdout) as Plain;
    await page.selectOption('#action-type', type);
    await page.fill('#exemplars', '3');
    await page.evaluate(() => {
      document.body.dataset.state = 'submitted';
    });
    const bytes = (await readFile(tb.mp4)).toString('base64');
    const dt = await page.evaluateHandle((b64: string) => {
      const raw = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const t = new DataTransfer();
      t.items.add(new File([raw], 'dropped.mp4', { type: 'video/mp4' }));
      return t;
    }, bytes);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, {
      timeout: 60_000,
    });
    const out = await page.evaluate(() => document.getElementById('result')!.dataset.result);
    const r = JSON.parse(out!) as Plain;
    expect(r.input.path).toBe('dropped.mp4');
    expect(r.protocol).toEqual(node.protocol);
    expect(r.exemplars.map((e) => e.key)).toEqual(node.exemplars.map((e) => e.key));
    expect(r.exemplars.every((e) => e.actionType === type)).toBe(true);
    expect(Math.abs(r.score - node.score)).toBeLessThan(0.5);
    // Back to the defaults for the next tests.
    await page.selectOption('#action-type', '');
    await page.fill('#exemplars', '10');
  });

  it('says what is wrong with bad input and takes the next file', async () => {
    const bytes = await readFile(tb.mp4);
    const files = {
      text: path.join(tmp, 'notes.mp4'),
      corrupt: path.join(tmp, 'corrupt.mp4'),
      truncated: path.join(tmp, 'truncated.mp4'),
      damaged: path.join(tmp, 'damaged.mp4'),
      image: path.join(tb.folder, '00003.png'),
      empty: path.join(tmp, 'no-frames'),
    };
    await writeFile(files.text, 'this is not a video\n'.repeat(50));
    const corrupt = Buffer.from(bytes);
    corrupt.fill(0x5a, 0, 200);
    await writeFile(files.corrupt, corrupt);
    await writeFile(files.truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const damaged = Buffer.from(bytes);
    for (let i = Math.floor(bytes.length * 0.4); i < Math.floor(bytes.length * 0.45); i++)
      damaged[i] = (i * 7919) & 255;
    await writeFile(files.damaged, damaged);
    await mkdir(files.empty);
    await writeFile(path.join(files.empty, 'readme.txt'), 'no frames here');
    const cases: ['#video' | '#folder', string, RegExp][] = [
      ['#video', files.text, /notes\.mp4: not a readable video/],
      ['#video', files.corrupt, /corrupt\.mp4: not a readable video/],
      ['#video', files.truncated, /truncated\.mp4: the file is truncated or damaged/],
      [
        '#video',
        files.damaged,
        /damaged\.mp4: the file is truncated or damaged: frame \d+ of \d+ could not be decoded/,
      ],
      ['#video', files.image, /00003\.png: is a single image/],
      ['#folder', files.empty, /no-frames: no \.jpg\/\.jpeg\/\.png frames/],
    ];
    for (const [selector, file, message] of cases) {
      const out = await submit(selector, file);
      expect(out.state, file).toBe('error');
      expect(out.message).toMatch(message);
      expect(out.result).toBeUndefined();
    }
    // A clip shorter than T is scored with repeated frames, as in Node, and the page says so.
    const dataset = openSynthDive({ seed: 1, clips: 36, size: tb.imageSize });
    const short = path.join(tmp, 'short.mp4');
    const few = await Promise.all(
      Array.from({ length: 7 }, (_, i) => dataset.loadFrame('synthdive-0002', i * 5)),
    );
    await encodeMp4(few, 25, short);
    const node = await nodeScore(short);
    const out = await submit('#video', short);
    expect(out.state).toBe('done');
    expect(out.message).toMatch(/short\.mp4: only 7 frames in 0-6 for 16 samples; frames are repeated/);
    const r = JSON.parse(out.result!) as Plain;
    expect(r.input.sampled).toEqual(node.input.sampled);
    expect(new Set(r.input.sampled).size).toBe(7);
    // Still usable: the folder scores again.
    const again = await submit('#folder', tb.folder);
    expect(again.state).toBe('done');
  });

  it('a bundle that fails to load leaves a message, not an error', async () => {
    const p = await context.newPage();
    const own: string[] = [];
    p.on('pageerror', (e) => own.push(e.message));
    await p.goto(broken!.url);
    await p.waitForFunction(() => ['ready', 'broken'].includes(document.body.dataset.state ?? ''), null, {
      timeout: 60_000,
    });
    expect(await p.evaluate(() => document.body.dataset.state)).toBe('broken');
    expect(await p.textContent('#message')).toMatch(
      /the bundle failed to load: bundle file backbone\.onnx: onnxruntime-web cannot open the graph/,
    );
    expect(await p.isDisabled('#video')).toBe(true);
    expect(own).toEqual([]);
    await p.close();
  });

  it('no page error and no console error on the way', () => {
    expect(problems).toEqual([]);
  });

  it('mcore serve stops on SIGINT with exit code 0', async () => {
    expect(await stop(broken?.child)).toBe(0);
    broken = undefined;
  });
});
