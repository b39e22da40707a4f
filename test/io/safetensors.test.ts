import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bf16ToFloat,
  encodeSafetensors,
  floatToBf16,
  floatToHalf,
  halfToFloat,
  parseSafetensors,
  readSafetensors,
  type SafeTensor,
  writeSafetensors,
} from '../../src/io/safetensors.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const expectWeightsError = (fn: () => unknown, ...parts: (string | RegExp)[]) =>
  expectMcoreError(fn, 'E_WEIGHTS', ...parts);

const GOLDEN = path.join(import.meta.dirname, '..', 'fixtures', 'golden');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mcore-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file from a hand-written header and data bytes. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors encoding', () => {
  it('writes the exact bytes of the format (header length, padded JSON, little-endian data)', () => {
    const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    const json = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const padded = json.length + ((8 - (json.length % 8)) % 8);
    expect(padded % 8).toBe(0);
    expect(new DataView(bytes.buffer).getBigUint64(0, true)).toBe(BigInt(padded));
    const head = new TextDecoder().decode(bytes.subarray(8, 8 + padded));
    expect(head).toBe(json.padEnd(padded, ' '));
    expect(Array.from(bytes.subarray(8 + padded))).toEqual([0x00, 0x00, 0x80, 0x3f]); // 1.0f
    expect(bytes.length).toBe(8 + padded + 4);
  });

  it('round-trips every dtype exactly (F16/BF16 values that are representable)', () => {
    const tensors: Record<string, SafeTensor> = {
      f32: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -0, 3.4028234663852886e38, 1e-45]) },
      f64: { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -1e300, 5e-324]) },
      i32: { dtype: 'I32', shape: [2], data: new Int32Array([-2147483648, 2147483647]) },
      i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 62n + 7n]) },
      f16: {
        dtype: 'F16',
        shape: [4],
        data: new Float32Array([65504, -(2 ** -24), 0.333251953125, 2 ** -14]),
      },
      bf16: { dtype: 'BF16', shape: [3], data: new Float32Array([1.5, -3.3895313892515355e38, 2 ** -133]) },
      empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    };
    const { tensors: back, metadata } = parseSafetensors(encodeSafetensors(tensors, { note: 'x' }));
    expect(metadata).toEqual({ note: 'x' });
    for (const [name, t] of Object.entries(tensors)) {
      expect(back[name].shape).toEqual(t.shape);
      expect(Array.from(back[name].data as ArrayLike<unknown>)).toEqual(
        Array.from(t.data as ArrayLike<unknown>),
      );
    }
    expect(Object.is(back.f32.data[1], -0)).toBe(true);
    expect(back.f16.dtype).toBe('F32'); // widened on read
    expect(back.bf16.dtype).toBe('F32');
    expect(back.i64.data).toBeInstanceOf(BigInt64Array);
  });

  it('rounds float16 to nearest even, with subnormals and overflow', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(halfToFloat(floatToHalf(1 + 2 ** -11))).toBe(1); // tie -> even (down)
    expect(halfToFloat(floatToHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // tie -> even (up)
    expect(halfToFloat(floatToHalf(1 + 2 ** -11 + 2 ** -20))).toBe(1 + 2 ** -10); // above the tie
    expect(halfToFloat(floatToHalf(65519))).toBe(65504);
    expect(halfToFloat(floatToHalf(65520))).toBe(Number.POSITIVE_INFINITY);
    expect(halfToFloat(floatToHalf(2 ** -24))).toBe(2 ** -24);
    expect(halfToFloat(floatToHalf(2 ** -25))).toBe(0); // tie -> even (zero)
    expect(halfToFloat(floatToHalf(3 * 2 ** -26))).toBe(2 ** -24);
    expect(halfToFloat(floatToHalf(3 * 2 ** -25))).toBe(2 ** -23); // 1.5 subnormal ulps -> 2
    expect(halfToFloat(floatToHalf(2 ** -14 - 2 ** -25))).toBe(2 ** -14); // rounds into the normals
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(Number.isNaN(halfToFloat(floatToHalf(Number.NaN)))).toBe(true);
  });

  it('rounds bfloat16 to nearest even', () => {
    expect(floatToBf16(1)).toBe(0x3f80);
    expect(bf16ToFloat(floatToBf16(1 + 2 ** -8))).toBe(1);
    expect(bf16ToFloat(floatToBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16ToFloat(floatToBf16(-(1 + 2 ** -7)))).toBe(-(1 + 2 ** -7));
    expect(bf16ToFloat(floatToBf16(3.4028234663852886e38))).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(bf16ToFloat(floatToBf16(Number.NaN)))).toBe(true);
  });

  it('rejects mismatched data on write', () => {
    expectWeightsError(
      () => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }, {}, 'x.st'),
      'x.st',
      "'w'",
      '2 values',
    );
    expectWeightsError(
      () => encodeSafetensors({ w: { dtype: 'I64', shape: [1], data: new Float32Array(1) } }),
      'BigInt64Array',
    );
  });
});

describe('safetensors files', () => {
  it('writes atomically and overwrites, leaving no temporary file', async () => {
    const file = path.join(dir, 'a.safetensors');
    await writeSafetensors(file, { x: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    await writeSafetensors(
      file,
      { y: { dtype: 'F64', shape: [2], data: new Float64Array([2, 3]) } },
      { k: 'v' },
    );
    expect(await readdir(dir)).toEqual(['a.safetensors']);
    const { tensors, metadata } = await readSafetensors(file);
    expect(Object.keys(tensors)).toEqual(['y']);
    expect(Array.from(tensors.y.data as Float64Array)).toEqual([2, 3]);
    expect(metadata).toEqual({ k: 'v' });
    const again = await readSafetensors(await readFile(file), 'named');
    expect(Array.from(again.tensors.y.data as Float64Array)).toEqual([2, 3]);
  });

  it('reads a file written by the Python peer (independent writer)', async () => {
    const { tensors, metadata } = await readSafetensors(path.join(GOLDEN, 'gsm.safetensors'));
    expect(metadata.generator).toBe('bench/peer/make_fixtures.py');
    expect(metadata.torch).toMatch(/^1\.13/);
    expect(JSON.parse(metadata.config)).toEqual({ fold: 16 });
    expect(tensors['gsm.conv3D.weight'].shape).toEqual([2, 8, 3, 3, 3]);
    expect(tensors['io.x'].shape).toEqual([2, 16, 5, 3, 2]);
    const io = await readSafetensors(path.join(GOLDEN, 'head.io.safetensors'));
    const gt = io.tensors.gt_transitions;
    expect(gt.dtype).toBe('I64');
    expect(Array.from(gt.data as BigInt64Array, Number)).toEqual([1, 9, 5, 15, 7, 8, 3, 12]); // as generated
    expect(Array.from(io.tensors.yq.data as Float32Array)).toEqual([0.75, -0.5]);
  });

  it('names the file when it cannot be read', async () => {
    await expect(readSafetensors(path.join(dir, 'nope.safetensors'))).rejects.toThrow(
      /nope\.safetensors: cannot read/,
    );
  });

  it('reports E_WEIGHTS naming the file when its folder is missing', async () => {
    const file = path.join(dir, 'missing', 'w.safetensors');
    await expect(writeSafetensors(file, {})).rejects.toThrow(/missing.*could not write/);
  });
});

describe('safetensors validation', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const eight = new Uint8Array(8);

  it('accepts a hand-crafted file', () => {
    const f32 = new Uint8Array(new Float32Array([2, -1]).buffer);
    const { tensors } = parseSafetensors(craft({ w: ok }, f32), 'h.st');
    expect(Array.from(tensors.w.data as Float32Array)).toEqual([2, -1]);
  });

  it('rejects a short file and a header length beyond the file', () => {
    expectWeightsError(() => parseSafetensors(new Uint8Array(5), 'short.st'), 'short.st', 'too short');
    expectWeightsError(
      () => parseSafetensors(craft({ w: ok }, eight, 10_000n), 'long.st'),
      'long.st',
      'header length',
    );
    expectWeightsError(
      () => parseSafetensors(craft({ w: ok }, eight, 2n ** 63n), 'huge.st'),
      'header length',
    );
  });

  it('rejects bad JSON, non-object headers and bad metadata', () => {
    expectWeightsError(() => parseSafetensors(craft('{"w": '), 'j.st'), 'j.st', 'JSON');
    expectWeightsError(() => parseSafetensors(craft('[1, 2]'), 'arr.st'), 'JSON object');
    expectWeightsError(() => parseSafetensors(craft({ __metadata__: { a: 1 } })), "metadata 'a'");
  });

  it('rejects unknown dtypes, bad shapes and bad offsets, naming the tensor', () => {
    expectWeightsError(
      () => parseSafetensors(craft({ w: { ...ok, dtype: 'U8' } }, eight), 'd.st'),
      'd.st',
      "'w'",
      "unsupported dtype 'U8'",
    );
    expectWeightsError(() => parseSafetensors(craft({ w: { ...ok, shape: [-2] } }, eight)), 'invalid shape');
    expectWeightsError(
      () => parseSafetensors(craft({ w: { ...ok, data_offsets: [0] } }, eight)),
      'data_offsets',
    );
    expectWeightsError(
      () => parseSafetensors(craft({ w: { ...ok, data_offsets: [4, 12] } }, eight)),
      'outside the 8-byte data section',
    );
    expectWeightsError(
      () => parseSafetensors(craft({ w: { ...ok, data_offsets: [8, 0] } }, eight)),
      'outside',
    );
    expectWeightsError(
      () => parseSafetensors(craft({ w: { ...ok, shape: [3] } }, new Uint8Array(12))),
      '8 bytes for F32 shape [3] (expected 12)',
    );
  });

  it('rejects overlapping tensors', () => {
    const header = { a: ok, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } };
    expectWeightsError(() => parseSafetensors(craft(header, eight)), "'a' and 'b' overlap");
  });

  it('rejects a truncated file on disk, naming it', async () => {
    const file = path.join(dir, 'trunc.safetensors');
    const full = encodeSafetensors({ w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    await writeFile(file, full.subarray(0, full.length - 3));
    await expect(readSafetensors(file)).rejects.toThrow(/trunc\.safetensors: tensor 'w'.*outside/);
  });
});
