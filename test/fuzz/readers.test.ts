/**
 * Fuzz corpus of the binary readers: pickles of every protocol (0-5) with hostile opcodes, torch zips
 * (inflate bombs, stride-0 views, exponential and self-referencing data.pkl), .npy headers and
 * safetensors headers. Every case is refused with the reader's McoreError code in one line, within
 * the per-case time limit, and bombs within the memory budget; no pickle payload runs.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNpy, readNpy } from '../../src/io/npy.ts';
import { loadPickle, type PyDict, parsePickle } from '../../src/io/pickle.ts';
import { parseSafetensors } from '../../src/io/safetensors.ts';
import { parseTorchCheckpoint, readTorchCheckpoint, type TorchTensor } from '../../src/io/torch.ts';
import { zip } from '../helpers/zip.ts';
import { CASE_TIMEOUT_MS, expectAccepted, expectRefused, formatTally, mkfifo, newTally } from './harness.ts';
import {
  billionLaughs,
  DANGEROUS_GLOBALS,
  deepLists,
  deepTuple,
  exponentialKey,
  frombufferAmplification,
  PickleWriter,
  PROTOCOLS,
  reducePayload,
  selfDict,
  selfList,
  sharedDicts,
} from './pickles.ts';

const tally = newTally();
let tmp: string;
let marker: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'mcore-fuzz-readers-'));
  marker = path.join(tmp, 'PWNED');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  console.log(formatTally('binary readers', tally));
});

const UNSUPPORTED_TEXT_OPCODE = /unsupported or corrupt opcode 0x(70|53)/; // protocol 0: PUT, STRING

describe('pickles, protocols 0-5', () => {
  for (const p of PROTOCOLS) {
    for (const [module, name] of DANGEROUS_GLOBALS) {
      it(`protocol ${p}: REDUCE of ${module}.${name} is refused at the global, and runs nothing`, async () => {
        await expectRefused(
          tally,
          () => parsePickle(reducePayload(p, module, name, marker), { name: 'evil.pkl' }),
          'E_PICKLE',
          new RegExp(`evil\\.pkl: forbidden global '${module.replace('.', '\\.')}\\.${name}'`),
        );
        expect(existsSync(marker)).toBe(false);
      });
    }

    it(
      `protocol ${p}: a 'billion laughs' pickle is refused, not expanded`,
      async () => {
        const bytes = billionLaughs(p);
        expect(bytes.length).toBeLessThan(1500);
        await expectRefused(
          tally,
          () => parsePickle(bytes, { name: 'laughs.pkl' }),
          'E_PICKLE',
          p === 0
            ? UNSUPPORTED_TEXT_OPCODE
            : /laughs\.pkl: the unpickled value expands to more than 10000000 objects .*MCORE_MAX_OBJECTS/,
          { bomb: true },
        );
      },
      CASE_TIMEOUT_MS,
    );

    it(
      `protocol ${p}: lists nested 10^5 deep are refused`,
      async () => {
        await expectRefused(
          tally,
          () => parsePickle(deepLists(p), { name: 'deep.pkl' }),
          'E_PICKLE',
          /deep\.pkl: the unpickled value is nested deeper than 1000 levels .*MCORE_MAX_DEPTH/,
        );
      },
      CASE_TIMEOUT_MS,
    );

    it(`protocol ${p}: a dict and a list that contain themselves are refused`, async () => {
      for (const bytes of [selfDict(p), selfList(p)]) {
        await expectRefused(
          tally,
          () => parsePickle(bytes, { name: 'self.pkl' }),
          'E_PICKLE',
          p === 0
            ? UNSUPPORTED_TEXT_OPCODE
            : /self\.pkl: the unpickled value contains itself \(a reference cycle\)/,
        );
      }
    });

    if (p >= 2) {
      it(
        `protocol ${p}: a tuple nested 10^5 deep, as a value and as a dict key`,
        async () => {
          await expectRefused(tally, () => parsePickle(deepTuple(p)), 'E_PICKLE', /nested deeper than 1000/);
          await expectRefused(
            tally,
            () => parsePickle(deepTuple(p, 100_000, true)),
            'E_PICKLE',
            /dict key: a tuple nested deeper than 100 levels/,
          );
        },
        CASE_TIMEOUT_MS,
      );

      it(
        `protocol ${p}: a dict key shared exponentially (2^64 leaves) is refused`,
        async () => {
          await expectRefused(
            tally,
            () => parsePickle(exponentialKey(p)),
            'E_PICKLE',
            /dict key: longer than 1048576 characters/,
            { bomb: true },
          );
        },
        CASE_TIMEOUT_MS,
      );
    }

    if (p >= 1) {
      it(`protocol ${p}: dicts shared exponentially (2^40 paths) are refused`, async () => {
        await expectRefused(
          tally,
          () => parsePickle(sharedDicts(p)),
          'E_PICKLE',
          /expands to more than 10000000 objects/,
          { bomb: true },
        );
      });

      it(`protocol ${p}: lengths that run past the data are truncation, not allocation`, async () => {
        const w = () => new PickleWriter(p).start();
        const cases = [
          w().op(0x58).u32(0x7fffffff).stop(), // BINUNICODE of 2 GB
          w().op(0x8b).u32(0x7fffffff).stop(), // LONG4 of 2 GB
          w().op(0x42).u32(0xffffffff).stop(), // BINBYTES of 4 GB
          w()
            .op(0x8d)
            .u64(1n << 60n)
            .stop(), // BINUNICODE8
          w()
            .op(0x96)
            .u64(1n << 62n)
            .stop(), // BYTEARRAY8
        ];
        for (const bytes of cases) {
          await expectRefused(
            tally,
            () => parsePickle(bytes, { name: 't.pkl' }),
            'E_PICKLE',
            /t\.pkl: truncated pickle/,
          );
        }
        await expectRefused(
          tally,
          () => parsePickle(w().get(7).stop()),
          'E_PICKLE',
          /memo entry 7 is missing/,
        );
      });
    }
  }

  it('protocol 5: out-of-band buffers and protocol 6 are refused', async () => {
    for (const op of [0x97, 0x98]) {
      await expectRefused(
        tally,
        () => parsePickle(new PickleWriter(5).start().op(op).stop()),
        'E_PICKLE',
        /out-of-band buffers/,
      );
    }
    await expectRefused(tally, () => parsePickle(Uint8Array.of(0x80, 6, 0x4e, 0x2e)), 'E_PICKLE', /protocol/);
    await expectRefused(
      tally,
      () =>
        parsePickle(
          new PickleWriter(4)
            .start()
            .op(0x95)
            .u64(1n << 60n)
            .stop(),
        ),
      'E_PICKLE',
      /truncated pickle/,
    );
  });

  it(
    'numpy arrays decoded again and again from one memoised buffer stop at the decoded-bytes budget',
    async () => {
      const bytes = frombufferAmplification(3, 1 << 20, 100);
      await expectRefused(
        tally,
        () => parsePickle(bytes, { name: 'amp.pkl' }),
        'E_PICKLE',
        /amp\.pkl: numpy array \(131072\) would decode to 1048576 bytes .* MCORE_MAX_DECODED_BYTES/,
        { bomb: true },
      );
      // the same file with a budget raised on purpose reads
      const arrays = await expectAccepted(tally, () =>
        parsePickle(bytes, { limits: { maxDecodedBytes: 200 * 2 ** 20 } }),
      );
      expect((arrays as unknown[]).length).toBe(100);
    },
    CASE_TIMEOUT_MS,
  );

  it('loadPickle refuses a named pipe at once instead of waiting on it', async () => {
    const fifo = path.join(tmp, 'annotations.pkl');
    mkfifo(fifo);
    await expectRefused(
      tally,
      () => loadPickle(fifo),
      'E_PICKLE',
      /annotations\.pkl: is a named pipe \(FIFO\)/,
    );
    await expectRefused(tally, () => loadPickle('/dev/zero'), 'E_PICKLE', /is a character device/);
  });

  it('plain data of protocol 1-5 still reads (the limits do not reject real files)', async () => {
    for (const p of [1, 2, 3, 4, 5]) {
      const w = new PickleWriter(p).start().emptyDict().mark().str('a');
      w.mark().str('x').str('y').tuple();
      const v = await expectAccepted(tally, () => parsePickle(w.op(0x75).stop()));
      expect((v as PyDict).lookup('a')).toEqual(['x', 'y']);
    }
  });
});

// ---- torch .pth (zip) --------------------------------------------------------------------------------

/** data.pkl of {'w': _rebuild_tensor_v2(storage '0' of `numel` floats, offset, size, stride)}. */
function tensorPickle(numel: number, size: number[], stride: number[], offset = 0): Uint8Array {
  const w = new PickleWriter(2)
    .start()
    .emptyDict()
    .str('w')
    .global('torch._utils', '_rebuild_tensor_v2')
    .mark();
  w.mark()
    .str('storage')
    .global('torch', 'FloatStorage')
    .str('0')
    .str('cpu')
    .op(0x4a)
    .u32(numel)
    .tuple()
    .op(0x51);
  w.op(0x4a).u32(offset).mark();
  for (const d of size) w.op(0x4a).u32(d);
  w.tuple().mark();
  for (const s of stride) w.op(0x4a).u32(s);
  w.tuple().op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52).tuple().op(0x52).op(0x73);
  return w.stop();
}

function pth(
  pickle: Uint8Array,
  storage = new Uint8Array(16),
  extra: { name: string; data: Uint8Array }[] = [],
) {
  return zip([
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/data/0', data: storage },
    ...extra,
  ]);
}

/** Raw deflate of `mib` MiB of zeros in ~1 KB per MiB (sync-flushed blocks repeated, then a final one). */
function zerosDeflated(mib: number): Uint8Array {
  const chunk = zlib.deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return Buffer.concat([...Array<Buffer>(mib).fill(chunk), Buffer.from([0x03, 0x00])]);
}

describe('torch checkpoints (.pth zips)', () => {
  it(
    'an inflate bomb (2.3 GB from 2.4 MB) is refused before inflating, and a lying size stops at its declared size',
    async () => {
      const bomb = zerosDeflated(2300);
      const honest = zip([
        { name: 'archive/data.pkl', data: new Uint8Array(0), deflated: bomb, declaredSize: 2300 * 2 ** 20 },
      ]);
      expect(honest.length).toBeLessThan(2.5 * 2 ** 20);
      await expectRefused(
        tally,
        () => parseTorchCheckpoint(honest, 'bomb.pth'),
        'E_WEIGHTS',
        /bomb\.pth: zip member 'archive\/data\.pkl' would decode to 2411724800 bytes .*MCORE_MAX_DECODED_BYTES/,
        { bomb: true },
      );
      const lying = zip([
        { name: 'archive/data.pkl', data: new Uint8Array(0), deflated: bomb, declaredSize: 1000 },
      ]);
      await expectRefused(
        tally,
        () => parseTorchCheckpoint(lying, 'lying.pth'),
        'E_WEIGHTS',
        /lying\.pth: damaged or truncated zip archive \(member 'archive\/data\.pkl' does not inflate/,
        { bomb: true },
      );
    },
    CASE_TIMEOUT_MS,
  );

  it('a stride-0 view of one element is sized before it is copied out (1.2 GB refused)', async () => {
    const bytes = pth(tensorPickle(1, [300_000_000], [0]), new Uint8Array(4));
    expect(bytes.length).toBeLessThan(600);
    await expectRefused(
      tally,
      () => parseTorchCheckpoint(bytes, 'view.pth'),
      'E_WEIGHTS',
      /view\.pth: tensor \[300000000\] of storage '0' would decode to 1200000000 bytes/,
      { bomb: true },
    );
    // an overlapping view that fits the budget is read as its dense copy
    const small = await expectAccepted(tally, () =>
      parseTorchCheckpoint(
        pth(tensorPickle(4, [2, 3], [1, 1]), new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer)),
        'ok.pth',
      ),
    );
    const w = (small as PyDict).lookup('w') as TorchTensor;
    expect(w.shape).toEqual([2, 3]);
    expect([...(w.data as Float32Array)]).toEqual([1, 2, 3, 2, 3, 4]); // element i + j of the storage
  });

  it('views and storages that do not fit their data are refused', async () => {
    await expectRefused(
      tally,
      () => parseTorchCheckpoint(pth(tensorPickle(4, [10], [1])), 'past.pth'),
      'E_PICKLE',
      /tensor \[10\] \(offset 0, stride \[1\]\) reaches element 9 of storage '0' holding 4/,
    );
    await expectRefused(
      tally,
      () => parseTorchCheckpoint(pth(tensorPickle(2 ** 31 - 1, [1], [1])), 'numel.pth'),
      'E_PICKLE',
      /storage '0' has 16 bytes/,
    );
  });

  it('data.pkl that is exponential, self-referencing, nested 10^5 deep or calls os.system is refused', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [sharedDicts(2), /expands to more than 10000000 objects/],
      [selfDict(2), /contains itself/],
      [deepLists(2), /nested deeper than 1000 levels/],
      [reducePayload(2, 'os', 'system', marker), /forbidden global 'os\.system'/],
      [billionLaughs(4), /expands to more than/],
    ];
    for (const [pickle, message] of cases) {
      await expectRefused(tally, () => parseTorchCheckpoint(pth(pickle), 'evil.pth'), 'E_PICKLE', message, {
        bomb: true,
      });
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('damaged archives are E_WEIGHTS naming the file', async () => {
    const good = pth(tensorPickle(4, [4], [1]));
    const eocd = good.length - 22;
    const patch = (at: number, bytes: number[]) => {
      const b = Uint8Array.from(good);
      b.set(bytes, at);
      return b;
    };
    const cases: [Uint8Array, RegExp][] = [
      [patch(eocd + 8, [0xfe, 0xff, 0xfe, 0xff]), /65534 members declared in a \d+-byte central directory/],
      [patch(eocd + 16, [0xff, 0xff, 0xff, 0x7f]), /central directory .* lies beyond the end/],
      [good.subarray(0, good.length - 30), /no end-of-central-directory record|beyond the end|bad signature/],
      [
        Uint8Array.of(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19),
        /legacy PyTorch format/,
      ],
      [Uint8Array.from(Buffer.from('not a checkpoint at all')), /neither a PyTorch checkpoint/],
      [zip([{ name: 'm/constants.pkl', data: new Uint8Array(1) }]), /TorchScript archive/],
    ];
    for (const [bytes, message] of cases) {
      await expectRefused(tally, () => parseTorchCheckpoint(bytes, 'bad.pth'), 'E_WEIGHTS', message);
    }
    const crc = Uint8Array.from(good);
    crc[30 + 'archive/data.pkl'.length + 4] ^= 0xff; // a byte inside data.pkl
    await expectRefused(
      tally,
      () => parseTorchCheckpoint(crc, 'crc.pth'),
      'E_WEIGHTS',
      /fails its CRC-32 check/,
    );
  });

  it('readTorchCheckpoint refuses a named pipe and a device at once', async () => {
    const fifo = path.join(tmp, 'last.pth');
    mkfifo(fifo);
    await expectRefused(tally, () => readTorchCheckpoint(fifo), 'E_WEIGHTS', /last\.pth: is a named pipe/);
    await expectRefused(
      tally,
      () => readTorchCheckpoint('/dev/urandom'),
      'E_WEIGHTS',
      /is a character device/,
    );
  });
});

// ---- .npy --------------------------------------------------------------------------------------------

function npyBytes(header: string, data = new Uint8Array(0), version = 1): Uint8Array {
  const len = version === 1 ? 2 : 4;
  const out = new Uint8Array(8 + len + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, header.length, true);
  else v.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[8 + len + i] = header.charCodeAt(i);
  out.set(data, 8 + len + header.length);
  return out;
}

const npyHeader = (shape: string, descr = '<f8') =>
  `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }\n`;

describe('.npy headers', () => {
  it('hostile headers are E_INPUT naming the file', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [
        npyBytes(npyHeader('(1000000000000,)'), new Uint8Array(10)),
        /truncated \.npy file: its header declares shape \(1000000000000\) of float64, 8000000000000 bytes/,
      ],
      [npyBytes(npyHeader('(2**62,)')), /malformed \.npy header/],
      [npyBytes(npyHeader(`${'('.repeat(4000)}${')'.repeat(4000)}`)), /nested deeper than 16 levels/],
      [
        npyBytes(`{'descr': '<f8', 'shape': (1,), 'fortran_order': False, '__proto__': {'polluted': 1}}`),
        /dict key '__proto__'/,
      ],
      [npyBytes(npyHeader('(-1,)')), /invalid array shape/],
      [npyBytes(npyHeader('(3,)', '|O')), /unsupported numpy dtype '\|O'/],
      [npyBytes(npyHeader('(3,)', '<c16')), /unsupported numpy dtype/],
      [npyBytes(' '.repeat(60000)), /header of 60000 bytes is longer than 10000/],
      [npyBytes('{}', new Uint8Array(0), 9), /unsupported \.npy version 9/],
      [npyBytes('['.repeat(9000)), /nested deeper than 16 levels|malformed/],
    ];
    for (const [bytes, message] of cases) {
      await expectRefused(tally, () => parseNpy(bytes, 'x.npy'), 'E_INPUT', message);
    }
    // a version-2 header that declares 4 GB is refused before anything is read
    const v2 = npyBytes('{}', new Uint8Array(0), 2);
    new DataView(v2.buffer).setUint32(8, 0xffffffff, true);
    await expectRefused(tally, () => parseNpy(v2, 'v2.npy'), 'E_INPUT', /header of 4294967295 bytes/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it(
    'a file is read header first: a huge declared array is refused by its size, a sparse 5 GB file is never read',
    async () => {
      const lying = path.join(tmp, 'lying.npy');
      await writeFile(lying, npyBytes(npyHeader('(1250000000,)'), new Uint8Array(16)));
      await expectRefused(tally, () => readNpy(lying), 'E_INPUT', /lying\.npy: truncated \.npy file/, {
        bomb: true,
      });
      const sparse = path.join(tmp, 'sparse.npy');
      const head = npyBytes(npyHeader('(625000000,)'));
      await writeFile(sparse, head);
      const h = await open(sparse, 'r+');
      await h.truncate(head.length + 5_000_000_000); // sparse: no data blocks
      await h.close();
      await expectRefused(
        tally,
        () => readNpy(sparse),
        'E_INPUT',
        /sparse\.npy: the array \(625000000\) of float64 holds 5000000000 bytes, more than mcore reads from one file .*MCORE_MAX_DECODED_BYTES/,
        { bomb: true },
      );
      const fifo = path.join(tmp, 'pred.npy');
      mkfifo(fifo);
      await expectRefused(tally, () => readNpy(fifo), 'E_INPUT', /pred\.npy: is a named pipe/);
    },
    CASE_TIMEOUT_MS,
  );
});

// ---- safetensors -------------------------------------------------------------------------------------

function safetensors(header: string | Uint8Array, data = new Uint8Array(0), declared?: bigint): Uint8Array {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors headers', () => {
  it('hostile headers are E_WEIGHTS naming the file, without walking nested values', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const cases: [Uint8Array, RegExp][] = [
      [safetensors('{}', new Uint8Array(0), 1n << 62n), /header length 4611686018427387904 exceeds the file/],
      [safetensors('{"a": '), /header is not valid UTF-8 JSON/],
      [safetensors(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)), /not valid UTF-8 JSON/],
      [safetensors('[1, 2]'), /header must be a JSON object/],
      [
        safetensors(`{"t": {"dtype": "F32", "shape": ${deep}, "data_offsets": [0, 4]}}`),
        /tensor 't': invalid shape \[\[\.\.\.\]\]/,
      ],
      [safetensors(`{"t": {"dtype": "F32", "shape": [1], "data_offsets": ${deep}}}`), /invalid data_offsets/],
      [safetensors(`{"t": ${deep}}`), /unsupported dtype/],
      [
        safetensors(
          '{"t": {"dtype": "F32", "shape": [9007199254740991, 9007199254740991], "data_offsets": [0, 4]}}',
          new Uint8Array(4),
        ),
        /4 bytes for F32 shape/,
      ],
      [
        safetensors(
          '{"t": {"dtype": "F32", "shape": [1000000000], "data_offsets": [0, 4000000000]}}',
          new Uint8Array(4),
        ),
        /outside the 4-byte data section/,
      ],
      [
        safetensors('{"t": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}', new Uint8Array(8)),
        /unsupported dtype 'C64'/,
      ],
      [
        safetensors(
          '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}',
          new Uint8Array(8),
        ),
        /overlap/,
      ],
      [safetensors('{"__metadata__": {"k": {"deep": 1}}}'), /metadata 'k' must be a string/],
      [safetensors(`{"__metadata__": ${deep}}`), /__metadata__ must be an object/],
    ];
    for (const [bytes, message] of cases) {
      await expectRefused(tally, () => parseSafetensors(bytes, 'w.safetensors'), 'E_WEIGHTS', message);
    }
  });
});
