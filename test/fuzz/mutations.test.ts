/**
 * Property-based fuzz of the binary readers (fast-check, fixed seed): valid files (torch zips stored
 * and deflated, their data.pkl, numpy pickles of protocols 2-5, .npy, safetensors) with random byte
 * changes, a cut and an insertion. Whatever the bytes, a reader returns a value or throws a
 * McoreError, never a TypeError, RangeError or other internal error, and each run stays within the
 * test's time limit.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { McoreError } from '../../src/errors.ts';
import { encodeNpy, parseNpy } from '../../src/io/npy.ts';
import { parsePickle } from '../../src/io/pickle.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.ts';
import { parseTorchCheckpoint, TORCH_GLOBALS } from '../../src/io/torch.ts';
import { ZipArchive } from '../../src/io/zip.ts';
import { PickleWriter } from './pickles.ts';

const SEED = 14;
const RUNS = 1000;
const REF = path.join(import.meta.dirname, '..', 'fixtures', 'reference');

interface Mutation {
  flips: [number, number][];
  cut: number | null;
  insert: [number, Uint8Array] | null;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  flips: fc.array(fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(0, 0x7f, 0x80, 0xff), fc.nat(255))), {
    minLength: 1,
    maxLength: 8,
  }),
  cut: fc.option(fc.nat(), { freq: 4 }),
  insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 })), { freq: 4 }),
});

function mutate(seed: Uint8Array, m: Mutation): Uint8Array {
  let b = Uint8Array.from(seed);
  for (const [at, v] of m.flips) b[at % b.length] = v;
  if (m.insert) {
    const at = m.insert[0] % (b.length + 1);
    b = Uint8Array.from([...b.subarray(0, at), ...m.insert[1], ...b.subarray(at)]);
  }
  if (m.cut !== null) b = b.subarray(0, m.cut % (b.length + 1));
  return b;
}

/** Runs `read` on mutations of each seed: it may return or throw a McoreError, nothing else. */
function onlyMcoreErrors(seeds: () => Uint8Array[], read: (bytes: Uint8Array) => unknown): void {
  const counts = { ok: 0, refused: 0 };
  fc.assert(
    fc.property(fc.nat(), mutation, (which, m) => {
      const all = seeds();
      const bytes = mutate(all[which % all.length], m);
      try {
        read(bytes);
        counts.ok++;
      } catch (err) {
        if (!(err instanceof McoreError)) {
          throw new Error(`not a McoreError: ${err instanceof Error ? err.stack : String(err)}`);
        }
        counts.refused++;
      }
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  expect(counts.ok + counts.refused).toBe(RUNS);
  expect(counts.refused).toBeGreaterThan(0);
}

/** A protocol-p pickle of {'a': [1, 2.5, 'x', b'yz', (True, None)], 'arr': float64 array [2, 2]}. */
function numpyPickle(p: number): Uint8Array {
  const w = new PickleWriter(p).start().emptyDict().mark().str('a').mark();
  w.op(0x4b, 1).op(0x47, 0x40, 0x04, 0, 0, 0, 0, 0, 0).str('x');
  if (p >= 3) w.op(0x43, 2, 0x79, 0x7a);
  w.op(0x88, 0x4e, 0x86).op(0x6c); // NEWTRUE NONE TUPLE2, LIST
  w.str('arr').global('numpy._core.numeric', '_frombuffer');
  w.mark().op(0x43, 32, ...new Uint8Array(new Float64Array([1, 2, 3, 4]).buffer));
  w.global('numpy', 'dtype').mark().str('f8').tuple().op(0x52);
  w.mark().op(0x4b, 2, 0x4b, 2).tuple().str('C').tuple().op(0x52);
  return w.op(0x75).stop();
}

describe('byte mutations of the binary readers (fast-check, seed 14)', () => {
  let pth: Uint8Array[];
  let pickles: Uint8Array[];
  beforeAll(async () => {
    pth = [
      await readFile(path.join(REF, 'dtypes.pth')),
      await readFile(path.join(REF, 'dtypes-deflate.pth')),
    ].map((b) => new Uint8Array(b));
    const zip = new ZipArchive(pth[0], 'dtypes.pth');
    const dataPkl = [...zip.entries.keys()].find((n) => n.endsWith('data.pkl'))!;
    pickles = [Uint8Array.from(zip.read(dataPkl)), ...[2, 3, 4, 5].map(numpyPickle)];
  });

  it('seeds are valid files', () => {
    for (const b of pth) expect(parseTorchCheckpoint(b)).toBeDefined();
    for (const b of pickles.slice(1)) expect(parsePickle(b)).toBeDefined();
  });

  it('torch zips (stored and deflated)', () => {
    onlyMcoreErrors(
      () => pth,
      (b) => parseTorchCheckpoint(b, 'm.pth'),
    );
  });

  it('pickles (a torch data.pkl and numpy pickles of protocols 2-5)', () => {
    onlyMcoreErrors(
      () => pickles,
      (b) => parsePickle(b, { globals: TORCH_GLOBALS, persistentLoad: (pid) => pid }),
    );
  });

  it('.npy files', () => {
    const seeds = [
      encodeNpy(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
      encodeNpy(new Float64Array([7]), [1]),
    ];
    onlyMcoreErrors(
      () => seeds,
      (b) => parseNpy(b, 'm.npy'),
    );
  });

  it('safetensors files', () => {
    const seeds = [
      encodeSafetensors(
        {
          a: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
          b: { dtype: 'F16', shape: [3], data: new Float32Array([0.5, 1, 2]) },
          c: { dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
        },
        { format: 'pt' },
      ),
    ];
    onlyMcoreErrors(
      () => seeds,
      (b) => parseSafetensors(b, 'm.safetensors'),
    );
  });
});
