/**
 * The pickle and torch.save writers against the project's reader (./torch.ts, ./pickle.ts): every
 * value kind and int width, tensors of each dtype, and the zip layout (stored members, CRCs, data at
 * multiples of 64). torch.load itself reads these files in test/cli/export-pth.test.ts.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PyDict, parsePickle } from '../../src/io/pickle.ts';
import { encodePickle, py } from '../../src/io/pickle-write.ts';
import { parseTorchCheckpoint, type TorchTensor } from '../../src/io/torch.ts';
import {
  encodeTorchCheckpoint,
  orderedDict,
  TorchWriter,
  writeTorchCheckpoint,
} from '../../src/io/torch-write.ts';
import { crc32, ZipArchive } from '../../src/io/zip.ts';
import { expectMcoreError, expectMcoreRejection } from '../helpers/errors.ts';

describe('encodePickle', () => {
  it('round-trips ints of every width, floats, strings, bytes, containers', () => {
    const ints = [
      0,
      1,
      255,
      256,
      65535,
      65536,
      -1,
      -128,
      -129,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      2 ** 40,
      -(2 ** 40),
    ];
    const v = parsePickle(
      encodePickle(
        py.strDict([
          ['ints', py.list(ints.map((i) => py.int(i)))],
          ['big', py.int(-(2n ** 63n))],
          ['floats', py.tuple(py.float(0.1), py.float(-1e300), py.float(Number.POSITIVE_INFINITY))],
          ['str', py.str('plongeon é 🏊')],
          ['bytes', py.bytes(Uint8Array.from([0, 127, 128, 255]))],
          ['flags', py.tuple(py.bool(true), py.bool(false), py.none())],
          ['empty', py.tuple()],
          ['one', py.tuple(py.int(7))],
          ['four', py.tuple(py.int(1), py.int(2), py.int(3), py.int(4))],
          ['many', py.list(Array.from({ length: 2500 }, (_, i) => py.int(i)))],
        ]),
      ),
    ) as PyDict;
    expect(v.get('ints')).toEqual(ints);
    expect(v.get('big')).toBe(-(2n ** 63n));
    expect(v.get('floats')).toEqual([0.1, -1e300, Number.POSITIVE_INFINITY]);
    expect(v.get('str')).toBe('plongeon é 🏊');
    expect(v.get('bytes')).toEqual(Uint8Array.from([0, 127, 128, 255]));
    expect(v.get('flags')).toEqual([true, false, null]);
    expect(v.get('empty')).toEqual([]);
    expect(v.get('one')).toEqual([7]);
    expect(v.get('four')).toEqual([1, 2, 3, 4]);
    expect((v.get('many') as number[]).length).toBe(2500);
    expect((v.get('many') as number[])[2499]).toBe(2499);
  });

  it('refuses a non-integer int', () => {
    expectMcoreError(() => py.int(1.5), 'E_SHAPE', '1.5 is not an integer');
  });
});

describe('encodeTorchCheckpoint', () => {
  it('writes tensors torch.load-style: OrderedDicts of tensors, one aligned stored member each', () => {
    const w = new TorchWriter();
    const a = Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
    const root = py.strDict([
      [
        'sd',
        orderedDict([
          ['module.a', w.tensor({ dtype: 'F32', shape: [2, 3, 4], data: a })],
          ['module.d', w.tensor({ dtype: 'F64', shape: [2], data: Float64Array.from([1e-300, -2]) })],
          ['module.n', w.tensor({ dtype: 'I64', shape: [], data: BigInt64Array.from([-5n]) })],
        ]),
      ],
      ['epoch', py.int(3)],
    ]);
    const bytes = encodeTorchCheckpoint(w, root, 'last');
    const v = parseTorchCheckpoint(bytes, 'mem') as PyDict;
    const sd = v.get('sd') as PyDict;
    expect([...sd.keys()]).toEqual(['module.a', 'module.d', 'module.n']);
    const ta = sd.get('module.a') as TorchTensor;
    expect(ta.shape).toEqual([2, 3, 4]);
    expect(Array.from(ta.data as Float32Array)).toEqual(Array.from(a));
    expect(Array.from((sd.get('module.d') as TorchTensor).data as Float64Array)).toEqual([1e-300, -2]);
    expect((sd.get('module.n') as TorchTensor).data).toEqual(BigInt64Array.from([-5n]));
    expect(v.get('epoch')).toBe(3);

    const zip = new ZipArchive(bytes, 'mem');
    expect([...zip.entries.keys()]).toEqual([
      'last/data.pkl',
      'last/data/0',
      'last/data/1',
      'last/data/2',
      'last/version',
    ]);
    expect(new TextDecoder().decode(zip.read('last/version'))).toBe('3\n');
    // Each member's data starts at a multiple of 64: local header (30) + name + extra length.
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    let at = 0;
    for (let i = 0; i < 5; i++) {
      expect(view.getUint32(at, true)).toBe(0x04034b50);
      expect(view.getUint16(at + 8, true)).toBe(0);
      const size = view.getUint32(at + 18, true);
      const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
      expect(start % 64).toBe(0);
      expect(view.getUint32(at + 14, true)).toBe(crc32(bytes.subarray(start, start + size)));
      at = start + size;
    }
  });

  it('refuses to write into a missing folder, in one line', async () => {
    await expectMcoreRejection(
      writeTorchCheckpoint(
        path.join(os.tmpdir(), 'mcore-no-such-dir', 'last.pth'),
        new TorchWriter(),
        py.dict([]),
      ),
      'E_INPUT',
      'mcore-no-such-dir/last.pth: cannot write the checkpoint (ENOENT)',
    );
  });

  it('refuses a tensor whose values do not fill its shape', () => {
    expectMcoreError(
      () => new TorchWriter().tensor({ dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }),
      'E_SHAPE',
      '3 values for a tensor of shape [2, 2]',
    );
  });
});
