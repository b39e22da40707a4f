/**
 * Writes PyTorch checkpoints as torch >= 1.6 does (`torch.save`, zip format): a zip archive of stored
 * (uncompressed) members `<archive>/data.pkl` (a protocol-2 pickle of the object, ./pickle-write.ts),
 * one raw little-endian storage per tensor `<archive>/data/<key>` (its data aligned to 64 bytes in the
 * file, as torch's writer pads them, so torch can map them), and `<archive>/version` ("3\n"). Tensors
 * pickle as torch's do:
 *
 *   torch._utils._rebuild_tensor_v2(persistent_id(('storage', torch.FloatStorage, '<key>', 'cpu', numel)),
 *                                   0, size, stride, False, collections.OrderedDict())
 *
 * Read by `torch.load` (torch 1.13 checked) and by ./torch.ts.
 * The file is written atomically (./atomic.ts).
 *
 * @example
 * const w = new TorchWriter();
 * const root = py.strDict([['w', w.tensor({ dtype: 'F32', shape: [2, 3], data: new Float32Array(6) })]]);
 * await writeTorchCheckpoint('w.pth', w, root);
 */
import path from 'node:path';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { encodePickle, type Py, py } from './pickle-write.ts';
import { crc32 } from './zip.ts';

export interface TensorToWrite {
  dtype: 'F32' | 'F64' | 'I64';
  shape: readonly number[];
  /** Row-major values (bigint for I64). */
  data: Float32Array | Float64Array | BigInt64Array;
}

const STORAGE: Record<TensorToWrite['dtype'], string> = {
  F32: 'FloatStorage',
  F64: 'DoubleStorage',
  I64: 'LongStorage',
};

/**
 * A `collections.OrderedDict` (a state dict's type) with string keys, pickled as CPython pickles it:
 * OrderedDict() by REDUCE, then its items by SETITEMS.
 */
export function orderedDict(entries: [string, Py][] = []): Py {
  const od = py.reduce(py.global('collections', 'OrderedDict'));
  if (entries.length === 0) return od;
  return py.setitems(
    od,
    entries.map(([k, v]) => [py.str(k), v]),
  );
}

/** Collects the storages of the tensors of one checkpoint. */
export class TorchWriter {
  readonly storages: Uint8Array[] = [];

  /** The pickled tensor: a new storage holding `t`'s bytes. */
  tensor(t: TensorToWrite): Py {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== numel) {
      throw new McoreError(
        'E_SHAPE',
        `torch writer: ${t.data.length} values for a tensor of shape [${t.shape.join(', ')}]`,
      );
    }
    const key = String(this.storages.length);
    this.storages.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice());
    const stride: number[] = new Array(t.shape.length);
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      stride[i] = s;
      s *= t.shape[i];
    }
    const storage = py.persid(
      py.tuple(
        py.str('storage'),
        py.global('torch', STORAGE[t.dtype]),
        py.str(key),
        py.str('cpu'),
        py.int(numel),
      ),
    );
    return py.reduce(
      py.global('torch._utils', '_rebuild_tensor_v2'),
      storage,
      py.int(0),
      py.tuple(...t.shape.map((d) => py.int(d))),
      py.tuple(...stride.map((d) => py.int(d))),
      py.bool(false),
      orderedDict(),
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// zip (stored members, 64-byte aligned data, no zip64: a checkpoint over 4 GiB is refused)

const ALIGN = 64;

interface Member {
  name: string;
  data: Uint8Array;
}

/** A zip archive of stored members, each member's data starting at a multiple of 64 in the file. */
export function zipStored(members: readonly Member[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = enc.encode(m.name);
    const crc = crc32(m.data);
    // Local header 30 + name + extra ('FB' padding field, as torch writes) -> data aligned.
    const pad = (ALIGN - ((offset + 30 + name.length + 4) % ALIGN)) % ALIGN;
    const extraLen = 4 + pad;
    const local = new Uint8Array(30 + name.length + extraLen);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true); // version needed
    lv.setUint16(6, 0, true); // flags
    lv.setUint16(8, 0, true); // stored
    lv.setUint16(10, 0, true); // time
    lv.setUint16(12, 0x21, true); // date 1980-01-01
    lv.setUint32(14, crc, true);
    lv.setUint32(18, m.data.length, true);
    lv.setUint32(22, m.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, extraLen, true);
    local.set(name, 30);
    lv.setUint16(30 + name.length, 0x4246, true); // 'FB'
    lv.setUint16(32 + name.length, pad, true);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true); // made by
    cv.setUint16(6, 20, true); // needed
    cv.setUint16(12, 0, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, m.data.length, true);
    cv.setUint32(24, m.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    c.set(name, 46);
    central.push(c);
    parts.push(local, m.data);
    offset += local.length + m.data.length;
    if (offset > 0xffffffff) {
      throw new McoreError('E_WEIGHTS', 'torch writer: the checkpoint exceeds 4 GiB (zip64 is not written)');
    }
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, members.length, true);
  ev.setUint16(10, members.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  if (members.length > 0xffff) {
    throw new McoreError(
      'E_WEIGHTS',
      `torch writer: ${members.length} members exceed the zip limit of 65535`,
    );
  }
  const all = [...parts, ...central, eocd];
  const out = new Uint8Array(all.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of all) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The bytes of a torch.save file of `root` whose tensors came from `w`; `archive` names the folder inside. */
export function encodeTorchCheckpoint(w: TorchWriter, root: Py, archive = 'archive'): Uint8Array {
  const members: Member[] = [{ name: `${archive}/data.pkl`, data: encodePickle(root) }];
  w.storages.forEach((data, i) => {
    members.push({ name: `${archive}/data/${i}`, data });
  });
  members.push({ name: `${archive}/version`, data: new TextEncoder().encode('3\n') });
  return zipStored(members);
}

/** Writes `root` to `file` (atomically); the archive folder is the file's name without extension, as torch names it. */
export async function writeTorchCheckpoint(file: string, w: TorchWriter, root: Py): Promise<void> {
  const archive = path.basename(file).replace(/\.[^.]*$/, '') || 'archive';
  const bytes = encodeTorchCheckpoint(w, root, archive);
  try {
    await writeFileAtomic(file, bytes);
  } catch (e) {
    throw new McoreError(
      'E_INPUT',
      `${file}: cannot write the checkpoint (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'check that its folder exists and is writable',
    );
  }
}
