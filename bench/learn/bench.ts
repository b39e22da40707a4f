/**
 * Does a path learn how well an action was done from final scores alone? The whole user path —
 * `mcore train` from random weights, then `mcore eval` — on SynthDive data that no shipped weight has
 * seen (a fresh seed; its hidden stage qualities are never read), once per configuration, with the
 * reference points of the same split (the action type's training mean; a whole-video ridge):
 *
 *   - paper:  MCoRe's objective alone (L_aqa + L_tas + L_cont), the scores only;
 *   - L_rec:  the same plus the self-supervised stage reconstruction loss (loss.reconWeight), which
 *             reads nothing but the clips' own pixels and the stage transitions training already uses.
 *
 * Prints a table (SRCC without action types, with them, within-type; wall time of train + eval) and
 * writes bench/learn/results-CLIPS.json. Targets of issue 10: SRCC without types >= 0.6, within-type >= 0.5,
 * the whole path <= 30 minutes on 2 cores for 300 training clips. Configurations run side by side
 * (`--jobs`, default 2: tfjs-wasm trains on one core each).
 *
 *   - cross-type: pairs of different action types too (train.dn=false) and no L_cont.
 *
 * `--stages 4` runs on SynthDive's 4-stage variant (take-off, somersault, come-out, entry: other
 * choreography and judges, never seen by a shipped weight) and writes bench/learn/results-CLIPS-4stages.json.
 *
 *   npx tsx bench/learn/bench.ts [--seeds 2002,2003,...] [--clips 400] [--epochs 30] [--jobs 2] [--configs a,b] [--stages 3|4] [--out DIR]
 *
 * Adds each seed's rows to bench/learn/results-CLIPS.json (other seeds' rows, and the rows of configurations
 * not run this time, are kept) and prints the table.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { learnTable, type Results, type Row } from './table.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const SEEDS = arg('--seeds', arg('--seed', '2002')).split(',').map(Number);
const CLIPS = Number(arg('--clips', '400'));
const EPOCHS = Number(arg('--epochs', '30'));
const JOBS = Number(arg('--jobs', '2'));
const STAGES = Number(arg('--stages', '3'));
if (STAGES !== 3 && STAGES !== 4) throw new Error(`--stages must be 3 or 4, got ${STAGES}`);
/** The dataset spec's suffix and the results file's, for the 4-stage variant. */
const VARIANT = STAGES === 4 ? { spec: ',stages=4', file: '-4stages' } : { spec: '', file: '' };
const OUT = path.resolve(arg('--out', path.join(os.tmpdir(), `mcore-bench-learn-${CLIPS}${VARIANT.file}`)));
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'bin/mcore.js');

/** The demo's small model and schedule, from random weights (no --backbone), the backbone at full rate. */
const BASE = {
  variant: 'mcore-tiny',
  model: { frames: 16, imageSize: 32 },
  train: {
    seed: 0,
    epochs: EPOCHS,
    batchPairs: 8,
    lr: 3e-3,
    backboneLrScale: 1,
    scoreScale: 10,
    schedule: 'cosine',
  },
  eval: { exemplars: 10, dn: false, batchVideos: 32 },
};

const ALL_CONFIGS: { name: string; what: string; set: string[] }[] = [
  { name: 'paper', what: "MCoRe's objective, scores only", set: [] },
  {
    name: 'L_rec',
    what: 'scores + self-supervised stage reconstruction (loss.reconWeight=10)',
    set: ['loss.reconWeight=10'],
  },
  {
    name: 'L_rec+cross',
    what: 'L_rec + half the pairs across action types (train.crossTypeShare=0.5)',
    set: ['loss.reconWeight=10', 'train.crossTypeShare=0.5'],
  },
  {
    name: 'cross-type',
    what: 'pairs across action types (train.dn=false), no L_cont',
    set: ['train.dn=false', 'loss.contrastive=none'],
  },
];
const CHOSEN = arg('--configs', ALL_CONFIGS.map((c) => c.name).join(',')).split(',');
const CONFIGS = ALL_CONFIGS.filter((c) => CHOSEN.includes(c.name));

function run(args: string[], logFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', async (code) => {
      await writeFile(logFile, `${out}\n${err}`);
      if (code === 0) resolve(out);
      else reject(new Error(`mcore ${args.join(' ')} exited ${code}; see ${logFile}`));
    });
  });
}

async function measure(c: (typeof CONFIGS)[number], seed: number): Promise<Row> {
  const dir = path.join(OUT, String(seed), c.name.replace(/\W/g, ''));
  const configFile = path.join(OUT, String(seed), 'config.json');
  const t0 = performance.now();
  await run(
    [
      'train',
      '--dataset',
      `synthdive:seed=${seed},clips=${CLIPS},size=32${VARIANT.spec}`,
      '--config',
      configFile,
      ...c.set.flatMap((s) => ['--set', s]),
      '--out',
      dir,
      '--overwrite',
    ],
    `${dir}.train.log`,
  );
  const out = await run(['eval', '--run', dir, '--json'], `${dir}.eval.log`);
  const seconds = (performance.now() - t0) / 1000;
  const r = JSON.parse(out) as {
    metrics: { srccDn: number; srccNoDn: number; withinTypeSrcc: number };
    references: { typeMean: { srcc: number }; ridge: { srcc: number; withinTypeSrcc: number } };
  };
  process.stdout.write(`${c.name}: done in ${seconds.toFixed(0)} s\n`);
  return {
    name: c.name,
    what: c.what,
    srccNoDn: r.metrics.srccNoDn,
    srccDn: r.metrics.srccDn,
    withinType: r.metrics.withinTypeSrcc,
    typeMeanDn: r.references.typeMean.srcc,
    ridgeNoDn: r.references.ridge.srcc,
    ridgeWithinType: r.references.ridge.withinTypeSrcc,
    seconds,
  };
}

/** The results file of this clip count, with the runs of earlier seeds kept (one seed per run). */
async function loadResults(file: string): Promise<Results> {
  try {
    const r = JSON.parse(await readFile(file, 'utf8'));
    if (r.seeds) return r as Results;
    // A file from a single-seed run.
    return {
      clips: r.clips,
      epochs: r.epochs,
      seeds: { [r.seed]: { date: r.date, machine: r.machine, jobs: r.jobs, rows: r.rows } },
    };
  } catch {
    return { clips: CLIPS, epochs: EPOCHS, seeds: {} };
  }
}

async function runSeed(seed: number): Promise<Row[]> {
  const rows: Row[] = new Array(CONFIGS.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(JOBS, CONFIGS.length) }, async () => {
      while (next < CONFIGS.length) {
        const i = next++;
        rows[i] = await measure(CONFIGS[i], seed);
      }
    }),
  );
  return rows;
}

async function main(): Promise<void> {
  const file = path.join(ROOT, `bench/learn/results-${CLIPS}${VARIANT.file}.json`);
  for (const seed of SEEDS) {
    const out = path.join(OUT, String(seed));
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'config.json'), JSON.stringify(BASE, null, 2));
    process.stdout.write(
      `SynthDive${STAGES === 4 ? ' (4 stages)' : ''} seed ${seed}, ${CLIPS} clips (75% train), ${EPOCHS} epochs from random weights, ${JOBS} at a time; runs in ${out}\n`,
    );
    const rows = await runSeed(seed);
    const results = await loadResults(file);
    // this run's configurations replace theirs; the seed's other configurations' rows are kept
    const kept = (results.seeds[String(seed)]?.rows ?? []).filter(
      (r) => !rows.some((n) => n.name === r.name),
    );
    results.seeds[String(seed)] = {
      date: new Date().toISOString(),
      machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`,
      jobs: JOBS,
      rows: [...kept, ...rows],
    };
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`\n${learnTable(results)}\nwrote ${file}\n`);
  }
}

await main();
