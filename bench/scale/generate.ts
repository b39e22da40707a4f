/**
 * A FineDiving-scale dataset for the rehearsal (bench/scale/run.ts): the real annotation pickles of
 * `../shared/data/finediving` copied to `OUT/Annotations`, and for every instance (every video key,
 * its real start..end frames) synthetic JPEG frames at FineDiving's resolution, 455 x 256, in the exact
 * layout the loader reads: `OUT/FINADiving_MTL_256s/<video_name>/<instance>/<absolute_frame:05d>.jpg`.
 *
 * The frames are cheap but not trivial, so that JPEG sizes and decode costs are like a broadcast's:
 * per video a seeded scene (sky/wall gradient with textured "crowd" blocks, a platform, a pool) wider
 * than the frame, panned by the camera over the instance; a diver (a rotating bar) on a parabola from
 * the platform to the water; a splash at the entry; and per-frame sensor noise. Everything is seeded by
 * the video and instance, so a rerun writes the same bytes.
 *
 * Resumable: each instance is written into `<video_name>/.tmp-<instance>` and renamed to `<instance>`
 * when complete; complete instances are skipped and left-over temporary folders removed.
 *
 *   npx tsx bench/scale/generate.ts [--out /work/scratch/finediving-scale] [--limit N]
 *     [--annotations ../shared/data/finediving] [--quality 85] [--jobs 6]
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { frameFileName } from '../../src/data/finediving.ts';
import { FINEDIVING_FILES, loadFineDivingAnnotations } from '../../src/data/finediving-annotations.ts';
import { createRng, type Rng } from '../../src/rng.ts';
import { rehearsalKeys } from './subset.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string | undefined) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const here = path.dirname(new URL(import.meta.url).pathname);
const OUT = path.resolve(arg('--out', '/work/scratch/finediving-scale')!);
const ANN = path.resolve(arg('--annotations', path.join(here, '../../../shared/data/finediving'))!);
const LIMIT = arg('--limit', undefined);
const QUALITY = Number(arg('--quality', '85'));
const JOBS = Number(arg('--jobs', '6'));

/** FineDiving's frames: 16:9 broadcast scaled to 256 high. */
export const W = 455;
export const H = 256;
/** Camera pan range: the scene is this much wider than the frame. */
const PAN = 64;
const SW = W + PAN;

const log = (s: string) => process.stdout.write(`${s}\n`);

/** An integer in [lo, hi]. */
const ri = (rng: Rng, lo: number, hi: number) => lo + rng.int(hi - lo + 1);

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The scene of one video, SW x H RGB: gradient, crowd blocks, platform, pool. */
function renderScene(rng: Rng): Omit<Video, 'noise'> {
  const out = new Uint8Array(SW * H * 3);
  const sky = [ri(rng, 60, 200), ri(rng, 60, 200), ri(rng, 60, 200)];
  const pool = [ri(rng, 0, 60), ri(rng, 90, 170), ri(rng, 150, 230)];
  const waterLine = Math.round(H * (0.62 + 0.1 * rng.next()));
  // crowd: 6x6 px blocks of random colour in the upper band, as in the stands behind a platform
  const block = 6;
  const bw = Math.ceil(SW / block);
  const crowdRows = Math.ceil((waterLine * 0.55) / block);
  const crowd = new Uint8Array(bw * crowdRows * 3);
  for (let i = 0; i < crowd.length; i++) crowd[i] = ri(rng, 20, 235);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < SW; x++) {
      const o = (y * SW + x) * 3;
      const by = Math.floor(y / block);
      for (let c = 0; c < 3; c++) {
        let v: number;
        if (y >= waterLine) {
          // ripples: a cheap periodic texture on the water
          v = pool[c] + 14 * Math.sin(x * 0.21 + y * 0.9) * Math.sin(y * 0.37);
        } else if (by < crowdRows) {
          v = crowd[(by * bw + Math.floor(x / block)) * 3 + c];
        } else {
          v = sky[c] * (0.7 + (0.3 * y) / waterLine);
        }
        out[o + c] = Math.max(0, Math.min(255, v));
      }
    }
  }
  // the platform: a grey slab on the left
  const px = ri(rng, 40, 110);
  const py = ri(rng, 50, 90);
  for (let y = py; y < py + 10; y++) {
    for (let x = 0; x < px + PAN / 2; x++) out.fill(150, (y * SW + x) * 3, (y * SW + x) * 3 + 3);
  }
  for (let y = py + 10; y < waterLine; y++) {
    for (let x = px - 14 + PAN / 2; x < px + PAN / 2; x++)
      out.fill(110, (y * SW + x) * 3, (y * SW + x) * 3 + 3);
  }
  return { scene: out, platformX: px + PAN / 2, platformY: py, waterLine };
}

interface Instance {
  key: string;
  videoName: string;
  instance: number;
  start: number;
  end: number;
}

/** Scene state shared by the frames of a video. */
interface Video {
  scene: Uint8Array;
  /** Sensor noise, offset per frame. */
  noise: Int8Array;
  platformX: number;
  platformY: number;
  waterLine: number;
}

function makeVideo(videoName: string): Video {
  const rng = createRng(hashString(videoName));
  const scene = renderScene(rng);
  const noise = new Int8Array(W * H * 3 + 8192);
  for (let i = 0; i < noise.length; i++) noise[i] = ri(rng, -4, 4);
  return { ...scene, noise };
}

/** Draws frame `f` (0..n-1) of an instance into `out` (W x H RGB). */
function renderFrame(v: Video, inst: Instance, f: number, n: number, rng: Rng, out: Uint8Array): void {
  const u = n > 1 ? f / (n - 1) : 0;
  // camera pan: follows the diver from the platform towards the pool
  const pan = Math.round(PAN * u);
  const noiseOff = (f * 7919 + inst.instance * 131) % 8192;
  for (let y = 0; y < H; y++) {
    const src = (y * SW + pan) * 3;
    const dst = y * W * 3;
    for (let i = 0; i < W * 3; i++) {
      const val = v.scene[src + i] + v.noise[dst + i + noiseOff];
      out[dst + i] = Math.max(0, Math.min(255, val));
    }
  }
  // the diver: a bar rotating about its centre on a parabola from the platform to the water
  const x0 = v.platformX - pan;
  const x1 = x0 + 90 + (inst.instance % 7) * 6;
  const cx = x0 + (x1 - x0) * u;
  const apex = 25 + (inst.instance % 5) * 4;
  const cy = v.platformY - 20 + (v.waterLine - v.platformY + 20) * u - apex * 4 * u * (1 - u);
  const angle = u * Math.PI * (2 + (inst.instance % 4));
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const skin = [200 + (inst.instance % 40), 150, 120];
  for (let y = Math.max(0, Math.floor(cy - 30)); y < Math.min(H, cy + 30); y++) {
    for (let x = Math.max(0, Math.floor(cx - 30)); x < Math.min(W, cx + 30); x++) {
      const dx = x - cx;
      const dy = y - cy;
      const a = dx * ca + dy * sa; // along the body
      const b = -dx * sa + dy * ca;
      if (Math.abs(a) < 24 && Math.abs(b) < 5) out.set(skin, (y * W + x) * 3);
    }
  }
  // the splash: white noise above the water line over the last fifth of the instance
  if (u > 0.8) {
    const s = (u - 0.8) / 0.2;
    const h = Math.round(40 * s);
    for (let y = Math.max(0, v.waterLine - h); y < v.waterLine; y++) {
      for (let x = Math.max(0, Math.floor(x1 - 25)); x < Math.min(W, x1 + 25); x++) {
        if (rng.next() < 0.6) out.fill(230 + ri(rng, 0, 25), (y * W + x) * 3, (y * W + x) * 3 + 3);
      }
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

async function writeInstance(
  v: Video,
  inst: Instance,
  frameDir: string,
  pool: Uint8Array[],
): Promise<number> {
  const videoDir = path.join(frameDir, inst.videoName);
  const tmp = path.join(videoDir, `.tmp-${inst.instance}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const n = inst.end - inst.start + 1;
  const rng = createRng(hashString(inst.key));
  const inFlight = new Set<Promise<void>>();
  let bytes = 0;
  for (let f = 0; f < n; f++) {
    while (inFlight.size >= pool.length) await Promise.race(inFlight);
    const buf = pool.pop()!;
    renderFrame(v, inst, f, n, rng, buf);
    const file = path.join(tmp, frameFileName(inst.start + f));
    const p = sharp(buf, { raw: { width: W, height: H, channels: 3 } })
      .jpeg({ quality: QUALITY, chromaSubsampling: '4:2:0' })
      .toFile(file)
      .then((info) => {
        bytes += info.size;
        pool.push(buf);
        inFlight.delete(p);
      });
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  await rename(tmp, path.join(videoDir, String(inst.instance)));
  return bytes;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return `${h > 0 ? `${h}:${String(m).padStart(2, '0')}` : m}:${String(sec).padStart(2, '0')}`;
}

async function main(): Promise<void> {
  const ann = await loadFineDivingAnnotations(ANN);
  const keys = rehearsalKeys(ann, LIMIT === undefined ? undefined : Number(LIMIT));
  const annOut = path.join(OUT, 'Annotations');
  const frameDir = path.join(OUT, 'FINADiving_MTL_256s');
  await mkdir(annOut, { recursive: true });
  await mkdir(frameDir, { recursive: true });
  for (const f of Object.values(FINEDIVING_FILES)) {
    if (await exists(path.join(ANN, f))) await copyFile(path.join(ANN, f), path.join(annOut, f));
  }
  const instances: Instance[] = keys.map((k) => {
    const r = ann.records.get(k)!;
    return { key: k, videoName: r.videoName, instance: r.instance, start: r.startFrame, end: r.endFrame };
  });
  // left-over temporaries of a killed run; complete instances are skipped
  for (const v of new Set(instances.map((i) => i.videoName))) {
    const names = await readdir(path.join(frameDir, v)).catch(() => [] as string[]);
    for (const n of names)
      if (n.startsWith('.tmp-')) await rm(path.join(frameDir, v, n), { recursive: true });
  }
  const todo: Instance[] = [];
  for (const i of instances) {
    if (!(await exists(path.join(frameDir, i.videoName, String(i.instance))))) todo.push(i);
  }
  const totalFrames = todo.reduce((s, i) => s + i.end - i.start + 1, 0);
  log(
    `${instances.length} instances (${instances.length - todo.length} complete, ${todo.length} to write: ${totalFrames} frames of ${W}x${H}) into ${frameDir}`,
  );
  const pool = Array.from({ length: JOBS }, () => new Uint8Array(W * H * 3));
  const t0 = performance.now();
  let frames = 0;
  let bytes = 0;
  let lastLog = 0;
  let video: { name: string; v: Video } | undefined;
  for (let k = 0; k < todo.length; k++) {
    const inst = todo[k];
    if (video?.name !== inst.videoName) video = { name: inst.videoName, v: makeVideo(inst.videoName) };
    bytes += await writeInstance(video.v, inst, frameDir, pool);
    frames += inst.end - inst.start + 1;
    const now = performance.now();
    if (now - lastLog > 10_000 || k === todo.length - 1) {
      lastLog = now;
      const s = (now - t0) / 1000;
      const eta = (s / frames) * (totalFrames - frames);
      log(
        `generate ${k + 1}/${todo.length} instances, ${frames}/${totalFrames} frames, ${(frames / s).toFixed(0)} frames/s, ` +
          `${(bytes / frames / 1024).toFixed(1)} KiB/frame, ${fmtTime(s)} eta ${fmtTime(eta)}`,
      );
    }
  }
  const du = execFileSync('du', ['-sb', OUT], { encoding: 'utf8' }).split('\t')[0];
  log(`done: ${OUT} holds ${(Number(du) / 1e9).toFixed(2)} GB (${keys.length} instances)`);
}

await main();
