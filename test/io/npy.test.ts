import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy, readNpy, toFloat64, toInt32, writeNpy } from '../../src/io/npy.ts';
import { expectMcoreError } from '../helpers/errors.ts';

// Written by numpy 2.4 with np.lib.format.write_array(f, a[, version=(2, 0)]) for:
const NUMPY = {
  // np.array([[1, 2, 3], [4, 5, -6.5]], dtype='<f4')
  f4_2x3:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQAAAQEAAAIBAAACgQAAA0MA=',
  // np.array([1.5, -2.25, 1e300], dtype='>f8')
  f8be: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAo/+AAAAAAAAMACAAAAAAAAfjfkPIgAdZw=',
  // np.asfortranarray([[1, 2, 3], [4, 5, -6]], dtype='<i8')
  i8F: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAAAAAAQAAAAAAAAAAgAAAAAAAAAFAAAAAAAAAAMAAAAAAAAA+v////////8=',
  // np.array([7, -8], dtype='<i4'), format version 2.0
  v2_i4:
    'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoHAAAA+P///w==',
  // np.array([0, 200, 255], dtype='u1')
  u1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAyP8=',
  // np.array([True, False, True])
  b1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=',
  // np.array(3.25): a 0-d array
  scalar:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAKQA==',
};
const npy = (k: keyof typeof NUMPY) => new Uint8Array(Buffer.from(NUMPY[k], 'base64'));

/** A .npy file of format `major`.0 with the given header text and raw data. */
function handMade(major: number, header: string, data: Uint8Array): Uint8Array {
  const h = Buffer.from(`${header}\n`, 'utf8');
  const lenBytes = major === 1 ? 2 : 4;
  const out = new Uint8Array(8 + lenBytes + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, h.length, true);
  else view.setUint32(8, h.length, true);
  out.set(h, 8 + lenBytes);
  out.set(data, 8 + lenBytes + h.length);
  return out;
}

const tmpDirs: string[] = [];
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe('readNpy / parseNpy on numpy-written files', () => {
  it('reads <f4 with shape (2, 3)', async () => {
    const a = await readNpy(npy('f4_2x3'));
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data as Float32Array)).toEqual([1, 2, 3, 4, 5, -6.5]);
  });

  it('swaps big-endian >f8 to native', () => {
    const a = parseNpy(npy('f8be'), 'be.npy');
    expect(a.dtype).toBe('float64');
    expect(Array.from(a.data as Float64Array)).toEqual([1.5, -2.25, 1e300]);
  });

  it('transposes fortran_order True to row-major', () => {
    const a = parseNpy(npy('i8F'), 'f.npy');
    expect(a.dtype).toBe('int64');
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as BigInt64Array)).toEqual([1n, 2n, 3n, 4n, 5n, -6n]);
    expect(Array.from(toFloat64(a, 'f'))).toEqual([1, 2, 3, 4, 5, -6]);
    expect(Array.from(toInt32(a, 'f'))).toEqual([1, 2, 3, 4, 5, -6]);
  });

  it('reads format 2.0, u1, b1 and 0-d arrays', () => {
    expect(Array.from(parseNpy(npy('v2_i4'), 'v2').data as ArrayLike<number | bigint>)).toEqual([7, -8]);
    const u = parseNpy(npy('u1'), 'u1');
    expect([u.dtype, Array.from(u.data as ArrayLike<number | bigint>)]).toEqual(['uint8', [0, 200, 255]]);
    const b = parseNpy(npy('b1'), 'b1');
    expect([b.dtype, Array.from(b.data as ArrayLike<number | bigint>)]).toEqual(['bool', [1, 0, 1]]);
    const s = parseNpy(npy('scalar'), 's');
    expect([s.shape, Array.from(s.data as ArrayLike<number | bigint>)]).toEqual([[], [3.25]]);
  });

  it('reads a format 3.0 (utf-8 header) file and a 3-D fortran array', () => {
    // shape (2, 2, 2) in Fortran order: element (i, j, k) sits at i + 2 j + 4 k
    const f = new Float64Array(8);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) f[i + 2 * j + 4 * k] = 100 * i + 10 * j + k;
    const bytes = handMade(
      3,
      "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2, 2), }",
      new Uint8Array(f.buffer),
    );
    const a = parseNpy(bytes, 'v3.npy');
    expect(Array.from(a.data as ArrayLike<number | bigint>)).toEqual([0, 1, 10, 11, 100, 101, 110, 111]);
  });
});

describe('readNpy errors name the file', () => {
  it('bad magic', () => {
    expectMcoreError(
      () => parseNpy(new Uint8Array(Buffer.from('PK\x03\x04 not numpy')), 'x.npy'),
      'E_INPUT',
      /x\.npy: not a \.npy/,
    );
  });
  it('truncated data and header', () => {
    const full = npy('f4_2x3');
    expectMcoreError(
      () => parseNpy(full.subarray(0, full.length - 3), 'cut.npy'),
      'E_INPUT',
      /cut\.npy: truncated \.npy file: its header declares shape \(2, 3\) of float32, 24 bytes of data, but the file holds 21/,
    );
    expectMcoreError(
      () => parseNpy(full.subarray(0, 40), 'head.npy'),
      'E_INPUT',
      /head\.npy: truncated \.npy header/,
    );
  });
  it('unsupported dtype and version', () => {
    const c16 = handMade(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(16));
    expectMcoreError(() => parseNpy(c16, 'c.npy'), 'E_INPUT', /c\.npy: unsupported numpy dtype '<c16'/);
    const v9 = npy('u1');
    v9[6] = 9;
    expectMcoreError(() => parseNpy(v9, 'v9.npy'), 'E_INPUT', /v9\.npy: unsupported \.npy version 9\.0/);
  });
  it('missing file', async () => {
    await expect(readNpy('/nonexistent/dir/a.npy')).rejects.toThrow(
      /a\.npy: cannot read \.npy file \(ENOENT\)/,
    );
  });
});

describe('writeNpy', () => {
  it('writes the same bytes as numpy', () => {
    expect(Buffer.from(encodeNpy(new Float32Array([1, 2, 3, 4, 5, -6.5]), [2, 3])).toString('base64')).toBe(
      NUMPY.f4_2x3,
    );
  });

  it('round-trips float64 atomically (no temporary file left)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mcore-npy-'));
    tmpDirs.push(dir);
    const file = path.join(dir, 'out.npy');
    const data = new Float64Array([0.1, -2, 3e-300, 4]);
    await writeNpy(file, data, [4, 1]);
    const back = await readNpy(file);
    expect(back.shape).toEqual([4, 1]);
    expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(Array.from(data));
    expect(await readdir(dir)).toEqual(['out.npy']);
    // like numpy, the header is padded so that the 32 data bytes start at byte 128 (a multiple of 64)
    expect((await readFile(file)).length - 32).toBe(128);
  });

  it('rejects a shape that does not match the data', () => {
    expectMcoreError(
      () => encodeNpy(new Float32Array(5), [2, 3]),
      'E_SHAPE',
      /shape \(2, 3\) does not hold 5 values/,
    );
  });
});
