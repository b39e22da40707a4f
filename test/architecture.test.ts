/**
 * The layout is the architecture: dependencies run one way, top to bottom,
 *
 *   cli -> index.ts (the library's surface) -> library verbs (verbs/: train/eval runs, export, import,
 *   demo; serve/) -> score | eval | methods -> train -> data -> model | onnx | config.ts -> charts
 *   -> io -> errors.ts <- the other root helpers (rng, concurrency, version, backend)
 *
 * with onnx beside model (onnx reads model specs, never the reverse), and charts/ (the vega-lite specs
 * of the stage charts and their Node renderer) below everything that draws them: the eval report, the
 * score report, and the browser page (web/, outside src/). Every relative import in src/,
 * type-only imports included, must point to the same module or a lower layer, and no file may reach
 * itself through imports (no cycles, type cycles included).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/cli.ts';

const SRC = path.join(repoRoot, 'src');

/** Layer of each top-level module of src/ (a folder, or a file at the root). */
const LAYER: Record<string, number> = {
  cli: 8,
  'index.ts': 7,
  verbs: 6,
  serve: 6,
  score: 5,
  eval: 5,
  methods: 5,
  train: 4,
  data: 3,
  model: 2,
  onnx: 2,
  'config.ts': 2,
  charts: 1.5,
  io: 1,
  'rng.ts': 0.5,
  'concurrency.ts': 0.5,
  'version.ts': 0.5,
  'backend.ts': 0.5,
  'errors.ts': 0,
};

/** Imports between different modules of one layer that are part of the design. */
const SIDEWAYS = new Set(['onnx -> model', 'config.ts -> model', 'model -> config.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of a file, resolved to absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
    out.push(path.resolve(path.dirname(file), m[1]));
  }
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+'(\.{1,2}\/[^']+)'/g)) {
    out.push(path.resolve(path.dirname(file), m[1]));
  }
  return out;
}

function moduleOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0];
}

/** Imports that point up, or sideways where the design does not say so ("from -> to", relative to src/). */
function wrongWay(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const bad: string[] = [];
  for (const [file, imports] of graph) {
    const from = moduleOf(file);
    for (const target of imports) {
      const to = moduleOf(target);
      if (from === to) continue;
      const ok = LAYER[to] < LAYER[from] || (LAYER[to] === LAYER[from] && SIDEWAYS.has(`${from} -> ${to}`));
      if (!ok) bad.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
    }
  }
  return bad;
}

/** Import cycles between files, each as 'a -> b -> a'. */
function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of graph.get(f) ?? []) {
      if (!graph.has(t)) continue;
      if (state.get(t) === 'open') {
        cycles.push(
          stack
            .slice(stack.indexOf(t))
            .concat(t)
            .map((x) => path.relative(SRC, x))
            .join(' -> '),
        );
      } else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  it('knows the layer of every module of src/', () => {
    const unknown = [...new Set(files.map(moduleOf))].filter((m) => !(m in LAYER));
    expect(unknown, 'add new modules to LAYER in test/architecture.test.ts').toEqual([]);
    expect(files.length).toBeGreaterThan(100);
  });

  it('imports point down (or sideways where the design says so), never up', () => {
    expect(wrongWay(graph)).toEqual([]);
  });

  it('has no import cycle between files (type-only imports included)', () => {
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('the checks find an upward import, a sideways one and a cycle', () => {
    const at = (f: string) => path.join(SRC, f);
    const bad = new Map([
      [at('train/trainer.ts'), [at('eval/evaluate.ts')]],
      [at('eval/evaluate.ts'), [at('methods/mcore-method.ts')]],
      [at('model/mcore.ts'), [at('onnx/export.ts')]],
      [at('io/a.ts'), [at('io/b.ts')]],
      [at('io/b.ts'), [at('io/a.ts')]],
    ]);
    expect(wrongWay(bad)).toEqual([
      'train/trainer.ts -> eval/evaluate.ts',
      'eval/evaluate.ts -> methods/mcore-method.ts',
      'model/mcore.ts -> onnx/export.ts',
    ]);
    expect(cyclesOf(bad)).toEqual(['io/a.ts -> io/b.ts -> io/a.ts']);
    // The parser sees type-only imports and re-exports.
    expect(importsOf(at('score/core.ts'))).toContain(at('onnx/session.ts'));
  });
});
