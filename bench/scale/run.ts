/**
 * The FineDiving-scale rehearsal: the real user path of the paper's model on a dataset of FineDiving's
 * size and layout (bench/scale/generate.ts), each step as the `mcore` command a user runs
 * (`node bin/mcore.js ...`, the built CLI), measured from outside: wall time, throughput, peak RSS of
 * the process tree (VmRSS summed over the command and its children, polled every 500 ms), disk used by
 * what the step wrote, and whether it printed progress with an ETA.
 *
 *   1. data check   `mcore data check finediving --root R --annotations A`
 *   2. features     `mcore features` with RegNetY-200MF + GSM (random weights, bench/scale/backbone.ts),
 *                   96 frames of 112 px (`--set variant=mcore-regnety002`)
 *   3. train        head-only, `train.epochs` epochs (default 2), time per epoch from RUN/log.jsonl
 *   4. eval         `mcore eval --dn --exemplars 10` (the paper's protocol)
 *   5. export       the run as a scoring bundle (exemplar bank of every training clip)
 *   6. score        `mcore score` of 100 test videos (MP4s encoded beforehand from their frames with the
 *                   pinned ffmpeg, not timed) into a JSONL file
 *
 * With --kill-tests, after the timed steps each long step is killed (SIGKILL) midway once, in outputs
 * of its own, and run again with --resume (features: the same cache; train: --resume to one more
 * epoch; score: --resume; eval and export: run again), and what the second run did is recorded.
 *
 * Results: `<work>/results.json` (and bench/scale/results.json with --save) and a markdown table.
 *
 *   npx tsx bench/scale/run.ts [--data /work/scratch/finediving-scale] [--work /work/scratch/scale-run]
 *     [--limit N] [--epochs 2] [--threads 1] [--videos 100] [--steps check,features,train,eval,export,score]
 *     [--kill-tests] [--wait FILE] [--done FILE] [--save]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mapLimit } from '../../src/concurrency.ts';
import { loadFineDivingAnnotations } from '../../src/data/finediving-annotations.ts';
import { ffmpegPath } from '../../src/data/video.ts';
import { rehearsalKeys } from './subset.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string | undefined) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const flag = (name: string) => argv.includes(name);
const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '../..');
const DATA = path.resolve(arg('--data', '/work/scratch/finediving-scale')!);
const WORK = path.resolve(arg('--work', '/work/scratch/scale-run')!);
const LIMIT = arg('--limit', undefined);
const EPOCHS = Number(arg('--epochs', '2'));
/** train.threads of the training step (1: one thread, as the first rehearsal). */
const THREADS = Number(arg('--threads', '1'));
const VIDEOS = Number(arg('--videos', '100'));
const STEPS = arg('--steps', 'check,features,train,eval,export,score')!.split(',');
const WAIT = arg('--wait', undefined);
const DONE = arg('--done', undefined);

const ROOT = path.join(DATA, 'FINADiving_MTL_256s');
const ANN = path.join(DATA, 'Annotations');
const WEIGHTS = path.join(WORK, 'regnety002-random.safetensors');
const CACHE = path.join(WORK, 'features');
const RUN = path.join(WORK, 'run');
const BUNDLE = path.join(WORK, 'bundle');
const VIDEO_DIR = path.join(WORK, 'videos');
const MODEL = ['--set', 'variant=mcore-regnety002'];

const log = (s: string) => process.stdout.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measured {
  step: string;
  command: string;
  exitCode: number | null;
  signal: string | null;
  wallSeconds: number;
  /** Largest sum of VmRSS over the process tree seen (bytes). */
  peakRssBytes: number;
  /** Lines of stderr that carried an ETA ("eta m:ss"). */
  etaLines: number;
  stdoutTail: string;
  stderrTail: string;
  stderrHead: string;
}

/** Pids of `root` and its descendants (from /proc/<pid>/stat ppid fields). */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface RunOptions {
  /** Kill (SIGKILL, whole group) when this returns true for the stderr seen so far. */
  killWhen?: (stderr: string) => boolean;
}

/** Runs `node bin/mcore.js ...args` in its own process group, measuring it. */
async function mcore(step: string, args: string[], opts: RunOptions = {}): Promise<Measured> {
  const command = `mcore ${args.join(' ')}`;
  log(`\n$ ${command.length > 400 ? `${command.slice(0, 400)}...` : command}`);
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [path.join(repo, 'bin/mcore.js'), ...args], {
    cwd: WORK,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: '1' },
  });
  let stdout = '';
  let stderr = '';
  let killed = false;
  child.stdout!.on('data', (b: Buffer) => {
    stdout += b;
    process.stdout.write(b);
  });
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b;
    process.stdout.write(b);
    if (!killed && opts.killWhen?.(stderr)) {
      killed = true;
      log(`[rehearsal] SIGKILL to the process group of ${child.pid}`);
      process.kill(-child.pid!, 'SIGKILL');
    }
  });
  let peak = 0;
  const poll = setInterval(() => {
    if (child.pid === undefined) return;
    const sum = processTree(child.pid).reduce((s, p) => s + rssOf(p), 0);
    peak = Math.max(peak, sum);
  }, 500);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearInterval(poll);
  const wall = (performance.now() - t0) / 1000;
  const etaLines = stderr.split('\n').filter((l) => /eta \d+:\d\d/.test(l)).length;
  log(
    `[rehearsal] ${step}: exit ${code ?? signal}, ${wall.toFixed(1)} s, peak RSS ${(peak / 2 ** 30).toFixed(2)} GiB`,
  );
  return {
    step,
    command,
    exitCode: code,
    signal,
    wallSeconds: wall,
    peakRssBytes: peak,
    etaLines,
    stdoutTail: stdout.slice(-2000),
    stderrTail: stderr.slice(-2000),
    stderrHead: stderr.slice(0, 4000),
  };
}

function duBytes(p: string): number {
  if (!existsSync(p)) return 0;
  return Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
}

function must(m: Measured): Measured {
  if (m.exitCode !== 0)
    throw new Error(`${m.step} failed (exit ${m.exitCode ?? m.signal}):\n${m.stderrTail}`);
  return m;
}

interface StepRow extends Measured {
  diskBytes: number;
  throughput: string;
  /** Seconds per training epoch (train). */
  epochSeconds?: number[];
  notes?: string[];
}

interface KillTest {
  step: string;
  killedAfter: string;
  rerun: string;
  /** 'resumed': the rerun continued from what the killed run left; 'restarted': it began again (by design). */
  outcome: 'resumed' | 'restarted' | 'FAILED';
  detail: string;
}

async function waitFor(file: string): Promise<void> {
  if (existsSync(file)) return;
  log(`[rehearsal] waiting for ${file} (checked every 60 s)`);
  while (!existsSync(file)) await sleep(60_000);
  log(`[rehearsal] ${file} found at ${new Date().toISOString()}`);
}

/** Encodes the frames of test clips to MP4 (25 fps, H.264) with the pinned ffmpeg: the score step's input. */
async function makeVideos(keys: string[]): Promise<string[]> {
  const ann = await loadFineDivingAnnotations(ANN);
  await mkdir(VIDEO_DIR, { recursive: true });
  const ffmpeg = ffmpegPath();
  return mapLimit(keys, 2, async (key) => {
    const r = ann.records.get(key)!;
    const out = path.join(VIDEO_DIR, `${key.replace(/[^A-Za-z0-9_-]/g, '_')}.mp4`);
    if (existsSync(out)) return out;
    const dir = path.join(ROOT, r.videoName, String(r.instance));
    const tmp = `${out}.tmp.mp4`;
    await new Promise<void>((resolve, reject) => {
      // niced: the videos are made before the timed steps, maybe while the machine is busy
      const p = spawn('nice', [
        '-n',
        '10',
        ffmpeg,
        ...['-loglevel', 'error', '-y', '-framerate', '25', '-start_number', String(r.startFrame)],
        ...['-i', path.join(dir, '%05d.jpg'), '-frames:v', String(r.endFrame - r.startFrame + 1)],
        // 455 px is odd: padded to 456 for 4:2:0 chroma, as a broadcast MP4 has
        ...['-vf', 'pad=456:256', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '20', tmp],
      ]);
      p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`ffmpeg failed for ${key} (${c})`))));
    });
    await rename(tmp, out);
    return out;
  });
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const gb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);
const mmss = (s: number) => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  const ann = await loadFineDivingAnnotations(ANN);
  const keys = rehearsalKeys(ann, LIMIT === undefined ? undefined : Number(LIMIT));
  const all = LIMIT === undefined;
  const spec = `finediving:root=${ROOT},annotations=${ANN}${all ? '' : `,keys=${keys.join('|')}`}`;
  const trainKeys = keys.filter((k) => ann.trainKeys.includes(k));
  const testKeys = keys.filter((k) => ann.testKeys.includes(k));
  const frames96 = 96;
  log(
    `rehearsal: ${keys.length} clips (${trainKeys.length} train, ${testKeys.length} test), work folder ${WORK}`,
  );
  log(
    `machine: ${os.cpus().length} x ${os.cpus()[0].model}, ${gib(os.totalmem())} memory, Node ${process.version}`,
  );

  if (!existsSync(WEIGHTS)) {
    execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'backbone.ts'), WEIGHTS], {
      cwd: repo,
      stdio: 'inherit',
    });
  }
  const scoreKeys = testKeys.slice(0, VIDEOS);
  let videos: string[] = [];
  if (STEPS.includes('score')) {
    const t0 = performance.now();
    videos = await makeVideos(scoreKeys);
    log(
      `[rehearsal] ${videos.length} test MP4s in ${VIDEO_DIR} (${((performance.now() - t0) / 1000).toFixed(0)} s, not timed)`,
    );
  }

  if (WAIT) await waitFor(WAIT);
  const rows: StepRow[] = [];
  const kills: KillTest[] = [];
  const started = new Date().toISOString();
  const load0 = os.loadavg();

  if (STEPS.includes('check')) {
    const m = must(
      await mcore('data check', [
        ...['data', 'check', 'finediving', '--root', ROOT, '--annotations', ANN],
        ...(all ? [] : ['--keys', keys.join(',')]),
      ]),
    );
    rows.push({ ...m, diskBytes: 0, throughput: `${(keys.length / m.wallSeconds).toFixed(0)} clips/s` });
  }

  const featureArgs = ['features', '--dataset', spec, '--backbone', WEIGHTS, ...MODEL];
  if (STEPS.includes('features')) {
    await rm(CACHE, { recursive: true, force: true });
    const m = must(await mcore('features', [...featureArgs, '--cache', CACHE]));
    const fps = (keys.length * frames96) / m.wallSeconds;
    rows.push({
      ...m,
      diskBytes: duBytes(CACHE),
      throughput: `${fps.toFixed(0)} frames/s (${keys.length} clips x ${frames96} frames, JPEG decoding included)`,
    });
  }

  const trainArgs = (epochs: number) => [
    ...['train', '--dataset', spec, '--out', RUN, '--backbone', WEIGHTS, '--cache', CACHE, ...MODEL],
    ...[
      '--set',
      'train.mode=head-only',
      '--set',
      `train.epochs=${epochs}`,
      '--set',
      `train.threads=${THREADS}`,
    ],
  ];
  if (STEPS.includes('train')) {
    await rm(RUN, { recursive: true, force: true });
    const m = must(await mcore('train', trainArgs(EPOCHS)));
    const history = (await readFile(path.join(RUN, 'log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { epoch: number; seconds: number });
    const epochSeconds = history.map((h) => h.seconds);
    const mean = epochSeconds.reduce((a, b) => a + b, 0) / epochSeconds.length;
    rows.push({
      ...m,
      diskBytes: duBytes(RUN),
      epochSeconds,
      throughput: `${(trainKeys.length / mean).toFixed(1)} clips/s; epoch ${epochSeconds.map((s) => `${s.toFixed(0)} s`).join(', ')}`,
    });
  }

  if (STEPS.includes('eval')) {
    const m = must(await mcore('eval', ['eval', '--run', RUN, '--dn', '--exemplars', '10', '--json']));
    const res = JSON.parse(m.stdoutTail.trim().split('\n').pop()!);
    rows.push({
      ...m,
      diskBytes: duBytes(path.join(RUN, 'eval-dn.json')),
      throughput: `${(testKeys.length / m.wallSeconds).toFixed(1)} test clips/s x 10 exemplars`,
      notes: [`SRCC dn ${res.metrics?.srcc?.toFixed?.(4) ?? JSON.stringify(res.metrics).slice(0, 200)}`],
    });
  }

  if (STEPS.includes('export')) {
    await rm(BUNDLE, { recursive: true, force: true });
    const m = must(await mcore('export', ['export', '--run', RUN, '--out', BUNDLE]));
    rows.push({
      ...m,
      diskBytes: duBytes(BUNDLE),
      throughput: `${(trainKeys.length / m.wallSeconds).toFixed(1)} exemplar clips/s`,
    });
  }

  const results = path.join(WORK, 'results.jsonl');
  if (STEPS.includes('score')) {
    await rm(results, { force: true });
    const m = must(await mcore('score', ['score', ...videos, '--model', BUNDLE, '--out', results]));
    const lines = (await readFile(results, 'utf8')).trim().split('\n');
    const ok = lines.filter((l) => JSON.parse(l).ok).length;
    rows.push({
      ...m,
      diskBytes: duBytes(results),
      throughput: `${((videos.length / m.wallSeconds) * 60).toFixed(0)} videos/min (${ok}/${videos.length} ok)`,
    });
  }
  const finished = new Date().toISOString();
  const load1 = os.loadavg();
  if (DONE) await writeFile(DONE, `${finished}\n`);
  // the kill tests are not timed: they yield the machine to others
  os.setPriority(10);

  if (flag('--kill-tests')) {
    // features: a second cache, killed once a tenth of the clips are done, then run again
    if (STEPS.includes('features')) {
      const cache2 = path.join(WORK, 'features-kill');
      await rm(cache2, { recursive: true, force: true });
      // the first progress line after a tenth (plain progress lines come every tenth)
      const tenth = Math.max(2, Math.ceil(keys.length / 10));
      const done = (s: string) => {
        const m = [...s.matchAll(/features (\d+)\/(\d+)/g)].pop();
        return m ? Number(m[1]) : 0;
      };
      const a = await mcore('features (kill)', [...featureArgs, '--cache', cache2], {
        killWhen: (s) => done(s) >= tenth,
      });
      const onDisk = (await readdir(path.join(cache2, (await readdir(cache2))[0], 'clips'))).length;
      // the rerun is stopped too once it has computed as many clips again: enough to see it continue
      const firstLine = (t: string) => /features (\d+)\/\d+/.exec(t);
      const b = await mcore('features (rerun)', [...featureArgs, '--cache', cache2], {
        killWhen: (t) => done(t) >= 2 * onDisk,
      });
      const startedAt = Number(firstLine(b.stderrHead)?.[1] ?? -1);
      const reached = done(b.stderrTail);
      const onDisk2 = (await readdir(path.join(cache2, (await readdir(cache2))[0], 'clips'))).length;
      kills.push({
        step: 'features',
        killedAfter: `${done(a.stderrTail)} of ${keys.length} clips (${a.signal})`,
        rerun: 'same command',
        outcome: startedAt === onDisk && onDisk2 > onDisk ? 'resumed' : 'FAILED',
        detail: `${onDisk} clip files on disk after the kill; the rerun's first progress line read ${startedAt}/${keys.length} (reused), it went on to ${reached} (${onDisk2} files)${b.signal ? ' and was stopped there' : ''}`,
      });
      await rm(cache2, { recursive: true, force: true });
    }
    // train: one more epoch with --resume, killed halfway through it, then --resume again
    if (STEPS.includes('train')) {
      const steps = (s: string) => {
        const m = [...s.matchAll(/epoch (\d+)\/\d+ (\d+)\/(\d+)/g)].pop();
        return m ? { epoch: Number(m[1]), step: Number(m[2]), of: Number(m[3]) } : undefined;
      };
      const a = await mcore('train (kill)', [...trainArgs(EPOCHS + 1), '--resume'], {
        killWhen: (s) => {
          const p = steps(s);
          return p !== undefined && p.epoch === EPOCHS + 1 && p.step >= p.of / 2;
        },
      });
      const b = must(await mcore('train (resume)', [...trainArgs(EPOCHS + 1), '--resume']));
      const history = (await readFile(path.join(RUN, 'log.jsonl'), 'utf8')).trim().split('\n');
      const first = /epoch (\d+)\/\d+ (\d+)\/(\d+)/.exec(b.stderrHead);
      kills.push({
        step: 'train',
        killedAfter: `epoch ${EPOCHS + 1}, step ${steps(a.stderrTail)?.step ?? '?'} of ${steps(a.stderrTail)?.of ?? '?'} (${a.signal})`,
        rerun: '--resume',
        outcome: history.length === EPOCHS + 1 && Number(first?.[1]) === EPOCHS + 1 ? 'resumed' : 'FAILED',
        detail: `the rerun started at epoch ${first?.[1] ?? '?'} from ckpt-${String(EPOCHS).padStart(4, '0')} and finished it; log.jsonl has ${history.length} epochs`,
      });
    }
    if (STEPS.includes('eval')) {
      const a = await mcore('eval (kill)', ['eval', '--run', RUN, '--dn', '--exemplars', '10'], {
        killWhen: (s) => /eta/.test(s) && s.split('\n').length > 3,
      });
      const b = must(await mcore('eval (rerun)', ['eval', '--run', RUN, '--dn', '--exemplars', '10']));
      kills.push({
        step: 'eval',
        killedAfter: `${a.wallSeconds.toFixed(0)} s (${a.signal})`,
        rerun: 'same command',
        outcome: 'restarted',
        detail: `eval keeps no partial state: the rerun started over (${b.wallSeconds.toFixed(0)} s); its features come from the cache`,
      });
    }
    if (STEPS.includes('export')) {
      const a = await mcore('export (kill)', ['export', '--run', RUN, '--out', BUNDLE], {
        killWhen: (s) => /exemplars \d+\/\d+/.test(s) && s.split('\n').length > 3,
      });
      const intact = existsSync(path.join(BUNDLE, 'manifest.json'));
      const b = must(await mcore('export (rerun)', ['export', '--run', RUN, '--out', BUNDLE]));
      kills.push({
        step: 'export',
        killedAfter: `${a.wallSeconds.toFixed(0)} s (${a.signal})`,
        rerun: 'same command',
        outcome: intact ? 'restarted' : 'FAILED',
        detail: `the previous bundle stayed whole (${intact ? 'manifest present' : 'MISSING'}); the rerun wrote the bundle again (${b.wallSeconds.toFixed(0)} s)`,
      });
    }
    if (STEPS.includes('score')) {
      const r2 = path.join(WORK, 'results-kill.jsonl');
      await rm(r2, { force: true });
      const count = async () =>
        existsSync(r2) ? (await readFile(r2, 'utf8')).split('\n').filter((l) => l.trim()).length : 0;
      const a = await mcore('score (kill)', ['score', ...videos, '--model', BUNDLE, '--out', r2], {
        killWhen: (s) => {
          const m = [...s.matchAll(/(\d+)\/(\d+)/g)].pop();
          return m !== undefined && Number(m[1]) >= Number(m[2]) / 3;
        },
      });
      const before = await count();
      const b = must(
        await mcore('score (resume)', ['score', ...videos, '--model', BUNDLE, '--out', r2, '--resume']),
      );
      const lines = (await readFile(r2, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).input as string);
      kills.push({
        step: 'score',
        killedAfter: `${before} of ${videos.length} videos (${a.signal})`,
        rerun: '--resume',
        outcome:
          lines.length === videos.length && new Set(lines).size === videos.length && before > 0
            ? 'resumed'
            : 'FAILED',
        detail: `the rerun scored the other ${videos.length - before} (${b.wallSeconds.toFixed(0)} s); ${lines.length} lines, ${new Set(lines).size} distinct inputs`,
      });
    }
  }

  const out = {
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0].model,
      memoryBytes: os.totalmem(),
      node: process.version,
      loadAverageBefore: load0,
      loadAverageAfter: load1,
    },
    started,
    finished,
    dataset: {
      root: ROOT,
      clips: keys.length,
      train: trainKeys.length,
      test: testKeys.length,
      diskBytes: duBytes(ROOT),
    },
    backbone: 'RegNetY-200MF + GSM, random weights (bench/scale/backbone.ts), 96 frames of 112 px',
    steps: rows.map(({ stdoutTail, stderrTail, stderrHead, ...r }) => r),
    killTests: kills,
  };
  await writeFile(path.join(WORK, 'results.json'), `${JSON.stringify(out, null, 2)}\n`);
  if (flag('--save')) await writeFile(path.join(here, 'results.json'), `${JSON.stringify(out, null, 2)}\n`);

  log('\n| step | wall | throughput | peak RSS | disk written | progress + ETA |');
  log('|---|---|---|---|---|---|');
  for (const r of rows) {
    log(
      `| ${r.step} | ${mmss(r.wallSeconds)} | ${r.throughput} | ${gib(r.peakRssBytes)} | ${gb(r.diskBytes)} | ${r.etaLines > 0 ? 'yes' : 'no'} |`,
    );
  }
  if (kills.length > 0) {
    log('\n| step | killed after | rerun | outcome | |');
    log('|---|---|---|---|---|');
    for (const k of kills) log(`| ${k.step} | ${k.killedAfter} | ${k.rerun} | ${k.outcome} | ${k.detail} |`);
  }
}

await main();
