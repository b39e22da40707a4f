import { describe, expect, it } from 'vitest';
import { McoreError } from '../../src/errors.ts';
import {
  isTuple,
  NUMPY_GLOBALS,
  PickledNdArray,
  type PickleGlobals,
  PyDict,
  type PyValue,
  parsePickle,
} from '../../src/io/pickle.ts';
import { expectMcoreError } from '../helpers/errors.ts';

const expectPickleError = (fn: () => unknown, ...parts: (string | RegExp)[]) =>
  expectMcoreError(fn, 'E_PICKLE', ...parts);

/*
 * Fixtures written by Python 3.11 / numpy 2.4 (numpy._core spellings) with
 *   pickle.dumps(obj, protocol=p) for p in 2, 3, 4, 5, where
 *   obj = {
 *     'i8': np.array([3, -2, 7], dtype='<i8'),
 *     'f8be': np.array([[1.5, -2.25], [3.0, 4.0]], dtype='>f8'),
 *     'f4F': np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)),
 *     'u1': np.array([0, 255, 7], dtype='u1'),
 *     'b1': np.array([True, False, True]),
 *     'i4': np.array([-5, 6], dtype='<i4'),
 *     np.int64(4): 'four',
 *     ('01', 1): [np.float64(0.5), np.float32(1.5), np.bool_(True), np.int64(-9)],
 *     'misc': (None, True, False, 2**70, -(2**40), -1, 65535, 1e-3, 'ünï', b'\x00\xff'),
 *   }
 * Protocol 2 encodes bytes as _codecs.encode(str, 'latin1'); protocol 5 uses numpy._core.numeric._frombuffer
 * with BYTEARRAY8 buffers.
 */
const FIXTURES: Record<number, string> = {
  2: 'gAJ9cQAoWAIAAABpOHEBY251bXB5Ll9jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnECY251bXB5Cm5kYXJyYXkKcQNLAIVxBGNfY29kZWNzCmVuY29kZQpxBVgBAAAAYnEGWAYAAABsYXRpbjFxB4ZxCFJxCYdxClJxCyhLAUsDhXEMY251bXB5CmR0eXBlCnENWAIAAABpOHEOiYiHcQ9ScRAoSwNYAQAAADxxEU5OTkr/////Sv////9LAHRxEmKJaAVYIAAAAAMAAAAAAAAAw77Dv8O/w7/Dv8O/w7/DvwcAAAAAAAAAcRNoB4ZxFFJxFXRxFmJYBAAAAGY4YmVxF2gCaANLAIVxGGgJh3EZUnEaKEsBSwJLAoZxG2gNWAIAAABmOHEciYiHcR1ScR4oSwNYAQAAAD5xH05OTkr/////Sv////9LAHRxIGKJaAVYIgAAAD/DuAAAAAAAAMOAAgAAAAAAAEAIAAAAAAAAQBAAAAAAAABxIWgHhnEiUnEjdHEkYlgDAAAAZjRGcSVoAmgDSwCFcSZoCYdxJ1JxKChLAUsCSwOGcSloDVgCAAAAZjRxKomIh3ErUnEsKEsDaBFOTk5K/////0r/////SwB0cS1iiGgFWBsAAAAAAAAAAABAQAAAwoA/AADCgEAAAABAAADCoEBxLmgHhnEvUnEwdHExYlgCAAAAdTFxMmgCaANLAIVxM2gJh3E0UnE1KEsBSwOFcTZoDVgCAAAAdTFxN4mIh3E4UnE5KEsDWAEAAAB8cTpOTk5K/////0r/////SwB0cTtiiWgFWAQAAAAAw78HcTxoB4ZxPVJxPnRxP2JYAgAAAGIxcUBoAmgDSwCFcUFoCYdxQlJxQyhLAUsDhXFEaA1YAgAAAGIxcUWJiIdxRlJxRyhLA2g6Tk5OSv////9K/////0sAdHFIYoloBVgDAAAAAQABcUloB4ZxSlJxS3RxTGJYAgAAAGk0cU1oAmgDSwCFcU5oCYdxT1JxUChLAUsChXFRaA1YAgAAAGk0cVKJiIdxU1JxVChLA2gRTk5OSv////9K/////0sAdHFVYoloBVgMAAAAw7vDv8O/w78GAAAAcVZoB4ZxV1JxWHRxWWJjbnVtcHkuX2NvcmUubXVsdGlhcnJheQpzY2FsYXIKcVpoEGgFWAgAAAAEAAAAAAAAAHFbaAeGcVxScV2GcV5ScV9YBAAAAGZvdXJxYFgCAAAAMDFxYUsBhnFiXXFjKGhaaA1YAgAAAGY4cWSJiIdxZVJxZihLA2gRTk5OSv////9K/////0sAdHFnYmgFWAkAAAAAAAAAAADDoD9xaGgHhnFpUnFqhnFrUnFsaFpoLGgFWAUAAAAAAMOAP3FtaAeGcW5ScW+GcXBScXFoWmhHaAVYAQAAAAFxcmgHhnFzUnF0hnF1UnF2aFpoEGgFWBAAAADDt8O/w7/Dv8O/w7/Dv8O/cXdoB4ZxeFJxeYZxelJxe2VYBAAAAG1pc2NxfChOiImKCQAAAAAAAAAAQIoGAAAAAAD/Sv////9N//9HP1BiTdLxqfxYBQAAAMO8bsOvcX1oBVgDAAAAAMO/cX5oB4Zxf1JxgHRxgXUu',
  3: 'gAN9cQAoWAIAAABpOHEBY251bXB5Ll9jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnECY251bXB5Cm5kYXJyYXkKcQNLAIVxBEMBYnEFh3EGUnEHKEsBSwOFcQhjbnVtcHkKZHR5cGUKcQlYAgAAAGk4cQqJiIdxC1JxDChLA1gBAAAAPHENTk5OSv////9K/////0sAdHEOYolDGAMAAAAAAAAA/v////////8HAAAAAAAAAHEPdHEQYlgEAAAAZjhiZXERaAJoA0sAhXESaAWHcRNScRQoSwFLAksChnEVaAlYAgAAAGY4cRaJiIdxF1JxGChLA1gBAAAAPnEZTk5OSv////9K/////0sAdHEaYolDID/4AAAAAAAAwAIAAAAAAABACAAAAAAAAEAQAAAAAAAAcRt0cRxiWAMAAABmNEZxHWgCaANLAIVxHmgFh3EfUnEgKEsBSwJLA4ZxIWgJWAIAAABmNHEiiYiHcSNScSQoSwNoDU5OTkr/////Sv////9LAHRxJWKIQxgAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEBxJnRxJ2JYAgAAAHUxcShoAmgDSwCFcSloBYdxKlJxKyhLAUsDhXEsaAlYAgAAAHUxcS2JiIdxLlJxLyhLA1gBAAAAfHEwTk5OSv////9K/////0sAdHExYolDAwD/B3EydHEzYlgCAAAAYjFxNGgCaANLAIVxNWgFh3E2UnE3KEsBSwOFcThoCVgCAAAAYjFxOYmIh3E6UnE7KEsDaDBOTk5K/////0r/////SwB0cTxiiUMDAQABcT10cT5iWAIAAABpNHE/aAJoA0sAhXFAaAWHcUFScUIoSwFLAoVxQ2gJWAIAAABpNHFEiYiHcUVScUYoSwNoDU5OTkr/////Sv////9LAHRxR2KJQwj7////BgAAAHFIdHFJYmNudW1weS5fY29yZS5tdWx0aWFycmF5CnNjYWxhcgpxSmgMQwgEAAAAAAAAAHFLhnFMUnFNWAQAAABmb3VycU5YAgAAADAxcU9LAYZxUF1xUShoSmgJWAIAAABmOHFSiYiHcVNScVQoSwNoDU5OTkr/////Sv////9LAHRxVWJDCAAAAAAAAOA/cVaGcVdScVhoSmgkQwQAAMA/cVmGcVpScVtoSmg7QwEBcVyGcV1ScV5oSmgMQwj3/////////3FfhnFgUnFhZVgEAAAAbWlzY3FiKE6IiYoJAAAAAAAAAABAigYAAAAAAP9K/////03//0c/UGJN0vGp/FgFAAAAw7xuw69xY0MCAP9xZHRxZXUu',
  4: 'gASVJwMAAAAAAAB9lCiMAmk4lIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBSwOFlGgFjAVkdHlwZZSTlIwCaTiUiYiHlFKUKEsDjAE8lE5OTkr/////Sv////9LAHSUYolDGAMAAAAAAAAA/v////////8HAAAAAAAAAJR0lGKMBGY4YmWUaARoB0sAhZRoCYeUUpQoSwFLAksChpRoDowCZjiUiYiHlFKUKEsDjAE+lE5OTkr/////Sv////9LAHSUYolDID/4AAAAAAAAwAIAAAAAAABACAAAAAAAAEAQAAAAAAAAlHSUYowDZjRGlGgEaAdLAIWUaAmHlFKUKEsBSwJLA4aUaA6MAmY0lImIh5RSlChLA2gSTk5OSv////9K/////0sAdJRiiEMYAAAAAAAAQEAAAIA/AACAQAAAAEAAAKBAlHSUYowCdTGUaARoB0sAhZRoCYeUUpQoSwFLA4WUaA6MAnUxlImIh5RSlChLA4wBfJROTk5K/////0r/////SwB0lGKJQwMA/weUdJRijAJiMZRoBGgHSwCFlGgJh5RSlChLAUsDhZRoDowCYjGUiYiHlFKUKEsDaDVOTk5K/////0r/////SwB0lGKJQwMBAAGUdJRijAJpNJRoBGgHSwCFlGgJh5RSlChLAUsChZRoDowCaTSUiYiHlFKUKEsDaBJOTk5K/////0r/////SwB0lGKJQwj7////BgAAAJR0lGJoAowGc2NhbGFylJOUaBFDCAQAAAAAAAAAlIaUUpSMBGZvdXKUjAIwMZRLAYaUXZQoaFBoDowCZjiUiYiHlFKUKEsDaBJOTk5K/////0r/////SwB0lGJDCAAAAAAAAOA/lIaUUpRoUGgpQwQAAMA/lIaUUpRoUGhAQwEBlIaUUpRoUGgRQwj3/////////5SGlFKUZYwEbWlzY5QoToiJigkAAAAAAAAAAECKBgAAAAAA/0r/////Tf//Rz9QYk3S8an8jAXDvG7Dr5RDAgD/lHSUdS4=',
  5: 'gAWVEgMAAAAAAAB9lCiMAmk4lIwTbnVtcHkuX2NvcmUubnVtZXJpY5SMC19mcm9tYnVmZmVylJOUKJYYAAAAAAAAAAMAAAAAAAAA/v////////8HAAAAAAAAAJSMBW51bXB5lIwFZHR5cGWUk5SMAmk4lImIh5RSlChLA4wBPJROTk5K/////0r/////SwB0lGJLA4WUjAFDlHSUUpSMBGY4YmWUaAQoliAAAAAAAAAAP/gAAAAAAADAAgAAAAAAAEAIAAAAAAAAQBAAAAAAAACUaAiMAmY4lImIh5RSlChLA4wBPpROTk5K/////0r/////SwB0lGJLAksChpRoD3SUUpSMA2Y0RpRoBCiWGAAAAAAAAAAAAAAAAABAQAAAgD8AAIBAAAAAQAAAoECUaAiMAmY0lImIh5RSlChLA2gMTk5OSv////9K/////0sAdJRiSwJLA4aUjAFGlHSUUpSMAnUxlGgEKJYDAAAAAAAAAAD/B5RoCIwCdTGUiYiHlFKUKEsDjAF8lE5OTkr/////Sv////9LAHSUYksDhZRoD3SUUpSMAmIxlGgEKJYDAAAAAAAAAAEAAZRoCIwCYjGUiYiHlFKUKEsDaCtOTk5K/////0r/////SwB0lGJLA4WUaA90lFKUjAJpNJRoBCiWCAAAAAAAAAD7////BgAAAJRoCIwCaTSUiYiHlFKUKEsDaAxOTk5K/////0r/////SwB0lGJLAoWUaA90lFKUjBZudW1weS5fY29yZS5tdWx0aWFycmF5lIwGc2NhbGFylJOUaAtDCAQAAAAAAAAAlIaUUpSMBGZvdXKUjAIwMZRLAYaUXZQoaERoCIwCZjiUiYiHlFKUKEsDaAxOTk5K/////0r/////SwB0lGJDCAAAAAAAAOA/lIaUUpRoRGggQwQAAMA/lIaUUpRoRGg0QwEBlIaUUpRoRGgLQwj3/////////5SGlFKUZYwEbWlzY5QoToiJigkAAAAAAAAAAECKBgAAAAAA/0r/////Tf//Rz9QYk3S8an8jAXDvG7Dr5RDAgD/lHSUdS4=',
};
const fixture = (p: number) => new Uint8Array(Buffer.from(FIXTURES[p], 'base64'));

/** Protocol 2/3 fixtures with numpy 1's `numpy.core.*` spelling (GLOBAL lines are newline-terminated). */
function numpy1(p: 2 | 3): Uint8Array {
  return new Uint8Array(
    Buffer.from(
      Buffer.from(fixture(p)).toString('latin1').replaceAll('numpy._core.', 'numpy.core.'),
      'latin1',
    ),
  );
}

function arr(d: PyDict, key: PyValue): PickledNdArray {
  const v = d.lookup(key);
  expect(v).toBeInstanceOf(PickledNdArray);
  return v as PickledNdArray;
}

function checkFixture(v: PyValue): void {
  expect(v).toBeInstanceOf(PyDict);
  const d = v as PyDict;
  expect(d.size).toBe(9);
  const i8 = arr(d, 'i8');
  expect([i8.dtype, i8.shape, Array.from(i8.data as ArrayLike<number | bigint>)]).toEqual([
    'int64',
    [3],
    [3n, -2n, 7n],
  ]);
  const f8 = arr(d, 'f8be');
  expect([f8.dtype, f8.shape, Array.from(f8.data as ArrayLike<number | bigint>)]).toEqual([
    'float64',
    [2, 2],
    [1.5, -2.25, 3, 4],
  ]);
  const f4 = arr(d, 'f4F');
  expect([f4.dtype, f4.shape, Array.from(f4.data as ArrayLike<number | bigint>)]).toEqual([
    'float32',
    [2, 3],
    [0, 1, 2, 3, 4, 5],
  ]);
  expect(Array.from(arr(d, 'u1').data as ArrayLike<number | bigint>)).toEqual([0, 255, 7]);
  expect([arr(d, 'b1').dtype, Array.from(arr(d, 'b1').data as ArrayLike<number | bigint>)]).toEqual([
    'bool',
    [1, 0, 1],
  ]);
  expect(Array.from(arr(d, 'i4').data as ArrayLike<number | bigint>)).toEqual([-5, 6]);
  // the numpy int64 scalar key became the number 4
  expect(d.lookup(4)).toBe('four');
  expect(d.get(4)).toBe('four');
  // tuple key, looked up with a JS array
  expect(d.lookup(['01', 1])).toEqual([0.5, 1.5, true, -9]);
  const tupleKey = [...d.keys()].find((k) => Array.isArray(k));
  expect(isTuple(tupleKey as PyValue)).toBe(true);
  const misc = d.lookup('misc') as PyValue[];
  expect(isTuple(misc)).toBe(true);
  expect(misc.slice(0, 9)).toEqual([null, true, false, 2n ** 70n, -(2 ** 40), -1, 65535, 1e-3, 'ünï']);
  expect(Array.from(misc[9] as Uint8Array)).toEqual([0, 255]);
}

describe('parsePickle reads numpy data', () => {
  for (const p of [2, 3, 4, 5]) {
    it(`protocol ${p} (numpy 2 spellings)`, () =>
      checkFixture(parsePickle(fixture(p), { name: `p${p}.pkl` })));
  }
  it('protocols 2 and 3 with numpy 1 spellings (numpy.core.multiarray)', () => {
    checkFixture(parsePickle(numpy1(2)));
    checkFixture(parsePickle(numpy1(3)));
  });
});

describe('PyDict', () => {
  it('treats keys equal in Python as one key', () => {
    const d = new PyDict();
    d.set(1, 'a');
    d.set(1.0, 'b');
    d.set(true, 'c');
    d.set(Object.freeze(['x', 1]), 'tuple');
    expect(d.size).toBe(2);
    expect(d.lookup(1)).toBe('c');
    expect(d.lookup(['x', 1])).toBe('tuple');
    expect(d.lookup(['x', '1'])).toBeUndefined();
    expect(d.hasKey(['x', 1])).toBe(true);
    expect(d.delete(['x', 1])).toBe(true);
    expect(d.size).toBe(1);
  });
});

describe('globals are allow-listed', () => {
  it('refuses os.system via GLOBAL, naming the global and the byte offset', () => {
    // PROTO 2, GLOBAL 'os\nsystem\n' at byte 2, BINUNICODE 'ls', TUPLE1, REDUCE, STOP
    const bytes = Buffer.concat([
      Buffer.from([0x80, 0x02]),
      Buffer.from('cos\nsystem\n', 'latin1'),
      Buffer.from([0x58, 2, 0, 0, 0]),
      Buffer.from('ls', 'latin1'),
      Buffer.from([0x85, 0x52, 0x2e]),
    ]);
    expectPickleError(
      () => parsePickle(bytes, { name: 'evil.pkl' }),
      /^evil\.pkl: forbidden global 'os\.system'.*\(at byte 2\)$/,
    );
  });

  it('refuses builtins.eval via STACK_GLOBAL (byte 18)', () => {
    // PROTO 4, SHORT_BINUNICODE 'builtins' (2..11), SHORT_BINUNICODE 'eval' (12..17), STACK_GLOBAL at 18
    const bytes = Buffer.concat([
      Buffer.from([0x80, 0x04, 0x8c, 8]),
      Buffer.from('builtins'),
      Buffer.from([0x8c, 4]),
      Buffer.from('eval'),
      Buffer.from([0x93, 0x29, 0x52, 0x2e]),
    ]);
    expectPickleError(
      () => parsePickle(bytes, { name: 'e.pkl' }),
      /forbidden global 'builtins\.eval'.*\(at byte 18\)/,
    );
  });

  it('uses only the allow-list it is given', () => {
    // protocol-3 fixture: PROTO (bytes 0-1), EMPTY_DICT (2), BINPUT (3-4), MARK (5), BINUNICODE 'i8' (6-12),
    // BINPUT (13-14), then GLOBAL at byte 15
    expectPickleError(
      () => parsePickle(fixture(3), { name: 'p3.pkl', globals: {} }),
      /p3\.pkl: forbidden global 'numpy\._core\.multiarray\._reconstruct'.*\(at byte 15\)/,
    );
  });

  it('accepts extra globals and a persistentLoad hook (the extension points for torch)', () => {
    // collections.OrderedDict([('w', <persistent id ('storage', 'k0', 3)>), ('b', 2.5)]) pickled with
    // protocol 2 by a Pickler whose persistent_id returns ('storage', 'k0', 3) for the marker object
    const bytes = Buffer.from(
      'gAJjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcQApUnEBKFgBAAAAd3ECWAcAAABzdG9yYWdlcQNYAgAAAGswcQRLA4dxBVFYAQAAAGJxBkdABAAAAAAAAHUu',
      'base64',
    );
    const globals: PickleGlobals = {
      ...NUMPY_GLOBALS,
      'collections.OrderedDict': { reduce: () => new PyDict() },
    };
    const seen: PyValue[] = [];
    const v = parsePickle(bytes, {
      globals,
      persistentLoad: (pid) => {
        seen.push(pid);
        return 'storage-k0';
      },
    }) as PyDict;
    expect([...v.entries()]).toEqual([
      ['w', 'storage-k0'],
      ['b', 2.5],
    ]);
    expect(seen).toEqual([['storage', 'k0', 3]]);
    expectPickleError(
      () => parsePickle(bytes, { globals }),
      /persistent id found but no persistentLoad hook.*\(at byte 70\)/,
    );
    expectPickleError(() => parsePickle(bytes), /forbidden global 'collections\.OrderedDict'.*\(at byte 2\)/);
  });

  it('only allows _codecs.encode with latin1', () => {
    const bytes = Buffer.concat([
      Buffer.from([0x80, 0x02]),
      Buffer.from('c_codecs\nencode\n', 'latin1'),
      Buffer.from([0x58, 1, 0, 0, 0, 0x61, 0x58, 5, 0, 0, 0]),
      Buffer.from('utf-8'),
      Buffer.from([0x86, 0x52, 0x2e]),
    ]);
    expectPickleError(() => parsePickle(bytes), /_codecs\.encode: only \(str, 'latin1'\)/);
  });
});

describe('truncated and corrupted pickles give typed errors', () => {
  it('every truncation of a fixture is an E_PICKLE naming the file', () => {
    for (const p of [3, 5]) {
      const full = fixture(p);
      for (let n = 0; n < full.length; n++) {
        expectPickleError(() => parsePickle(full.subarray(0, n), { name: 'cut.pkl' }), /^cut\.pkl: /);
      }
    }
  });

  it('reports the offset and needed bytes of a cut string', () => {
    // PROTO 3, BINUNICODE of length 10 with only 3 bytes present
    const bytes = Buffer.from([0x80, 0x03, 0x58, 10, 0, 0, 0, 0x61, 0x62, 0x63]);
    expectPickleError(
      () => parsePickle(bytes, { name: 't.pkl' }),
      /t\.pkl: truncated pickle: opcode 0x58 at byte 2 needs 10 more bytes but the data ends at byte 10/,
    );
    expectPickleError(
      () => parsePickle(Buffer.from([0x80, 0x03, 0x4e]), { name: 's.pkl' }),
      /s\.pkl: truncated pickle: the data ends at byte 3 before the STOP opcode/,
    );
  });

  it('every single-byte corruption either parses or raises McoreError', () => {
    const full = fixture(4);
    let errors = 0;
    for (let i = 0; i < full.length; i++) {
      const bad = full.slice();
      bad[i] ^= 0xa5;
      try {
        parsePickle(bad, { name: 'bad.pkl' });
      } catch (err) {
        expect(err).toBeInstanceOf(McoreError);
        expect((err as Error).message).toMatch(/^bad\.pkl: /);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(full.length / 4);
  });

  it('names unknown opcodes and memo misses', () => {
    expectPickleError(
      () => parsePickle(Buffer.from([0x80, 0x02, 0xff])),
      /unsupported or corrupt opcode 0xff .*\(at byte 2\)$/,
    );
    expectPickleError(
      () => parsePickle(Buffer.from([0x80, 0x02, 0x68, 7, 0x2e])),
      /memo entry 7 is missing \(at byte 2\)/,
    );
  });
});
