/**
 * Reads PyTorch checkpoints (`torch.save` files, `.pth` / `.pt`) without Python and without running
 * any code from the file. Since torch 1.6 a checkpoint is a zip archive (entries stored, or deflated
 * when re-packed) holding `<archive>/data.pkl` (a pickle of the saved object) and one raw little-endian
 * storage per `<archive>/data/<key>`; tensors in the pickle refer to their storage by persistent id
 * `('storage', torch.<Type>Storage, key, location, numel)` and are rebuilt by
 * `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
 *
 * The pickle runs in the safe VM of ./pickle.ts with this allow-list and nothing else: the rebuild
 * functions (`_rebuild_tensor_v2`, `_rebuild_parameter`, `_rebuild_parameter_with_state`), the storage
 * types Float/Half/BFloat16/Double/Long/Int, `collections.OrderedDict`, `torch.Size`,
 * `argparse.Namespace` (a dict of its attributes) and numpy's scalars and arrays (`rho_best` of the
 * MCoRe reference is a numpy float64). Views (offset, strides, shared storages) are copied to dense
 * row-major arrays; float16/bfloat16 widen to float32 (dtype 'F32'), as in ./safetensors.ts.
 *
 * The result is the saved object as JS data: dicts as PyDict (a Map), tensors as TorchTensor
 * (`{ dtype, shape, data }`). `flattenStateDicts` then finds the state dicts in it. A `.safetensors`
 * file is accepted too (a dict of tensors); a pre-1.6 ("legacy") torch file is refused with the
 * one-line fix. Every format problem is McoreError('E_WEIGHTS') naming the file; a refused global
 * or a corrupt pickle is E_PICKLE (./pickle.ts).
 *
 * Hostile files are bounded (./limits.ts): a deflated member inflates at most to the size the zip
 * directory declares, charged first against the file's decoded-bytes budget (64 x its size, at least
 * 64 MiB, at most 4 GiB; MCORE_MAX_DECODED_BYTES); a tensor view is sized and checked against its
 * storage before its dense copy is allocated (a stride-0 view of one element cannot copy out to
 * gigabytes); the pickle's nesting and expanded size are those of ./pickle.ts.
 *
 * @example
 * const ckpt = await readTorchCheckpoint('last.pth');
 * const { tensors, scalars } = flattenStateDicts(ckpt, 'last.pth');
 * tensors['decoder.model.0.attn.q_map.weight'].shape; // [368, 368]
 * scalars.rho_best; // 0.927...
 */
import { readFile } from 'node:fs/promises';
import { McoreError } from '../errors.ts';
import { refuseSpecialFile } from './input-path.ts';
import { DecodeBudget, type ReadLimits, resolveLimits } from './limits.ts';
import {
  describe,
  isTuple,
  NUMPY_GLOBALS,
  type PickleContext,
  type PickleGlobal,
  type PickleGlobals,
  PY_SETSTATE,
  PyDict,
  PyGlobalRef,
  type PyObject,
  type PySettable,
  type PyTuple,
  type PyValue,
  parsePickle,
} from './pickle.ts';
import { bf16ToFloat, halfToFloat, parseSafetensors, type SafeData, type SafeDtype } from './safetensors.ts';
import { ZipArchive } from './zip.ts';

function fail(file: string, message: string): never {
  throw new McoreError('E_WEIGHTS', `${file}: ${message}`);
}

// ---------------------------------------------------------------------------------------------------
// tensors and storages

/** Element types of torch storages, named as in safetensors; F16/BF16 are read as F32. */
type StorageDtype = SafeDtype;

const STORAGE_TYPES: Readonly<Record<string, StorageDtype>> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
};

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const ITEM_SIZE: Readonly<Record<StorageDtype, number>> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4 };

/** A dense row-major tensor read from a checkpoint: `{ dtype, shape, data }` like a SafeTensor. */
export class TorchTensor implements PyObject {
  readonly pyType = 'torch.Tensor';
  constructor(
    /** F32, F64, I64 or I32; float16/bfloat16 storages arrive widened as F32. */
    readonly dtype: SafeDtype,
    readonly shape: number[],
    readonly data: SafeData,
    /** The element type on disk (F16 and BF16 differ from `dtype`). */
    readonly storedAs: SafeDtype = dtype,
  ) {}
}

/** A storage: the raw bytes of `<archive>/data/<key>` and their element type. */
class TorchStorage implements PyObject {
  readonly pyType = 'torch.Storage';
  constructor(
    readonly key: string,
    readonly dtype: StorageDtype,
    readonly bytes: Uint8Array,
    readonly numel: number,
    readonly bigEndian: boolean,
  ) {}
}

/** Reads element `i` of a storage as a number (floats) or bigint (I64). */
function elementReader(s: TorchStorage): (i: number) => number | bigint {
  const v = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
  const le = !s.bigEndian;
  switch (s.dtype) {
    case 'F32':
      return (i) => v.getFloat32(4 * i, le);
    case 'F64':
      return (i) => v.getFloat64(8 * i, le);
    case 'I32':
      return (i) => v.getInt32(4 * i, le);
    case 'I64':
      return (i) => v.getBigInt64(8 * i, le);
    case 'F16':
      return (i) => halfToFloat(v.getUint16(2 * i, le));
    case 'BF16':
      return (i) => bf16ToFloat(v.getUint16(2 * i, le));
  }
}

function allocate(dtype: StorageDtype, n: number): SafeData {
  switch (dtype) {
    case 'F64':
      return new Float64Array(n);
    case 'I64':
      return new BigInt64Array(n);
    case 'I32':
      return new Int32Array(n);
    default:
      return new Float32Array(n);
  }
}

function asIntTuple(v: PyValue, what: string, ctx: PickleContext): number[] {
  if (!Array.isArray(v) || !v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    return ctx.fail(`${what}: expected a tuple of non-negative ints, found ${describe(v)}`);
  }
  return [...(v as number[])];
}

/** Whether `stride` is the row-major (C-contiguous) stride of `shape` (size-1 axes may have any stride). */
function isRowMajor(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    if (shape[k] !== 1 && stride[k] !== expected) return false;
    expected *= shape[k];
  }
  return true;
}

/** `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a dense copy of the strided view. */
function rebuildTensor(args: PyTuple, ctx: PickleContext): TorchTensor {
  const [storage, offsetV, sizeV, strideV] = args;
  if (!(storage instanceof TorchStorage)) {
    return ctx.fail(`_rebuild_tensor_v2: expected a storage, found ${describe(storage)}`);
  }
  if (typeof offsetV !== 'number' || !Number.isSafeInteger(offsetV) || offsetV < 0) {
    return ctx.fail(`_rebuild_tensor_v2: bad storage offset ${String(offsetV)}`);
  }
  const shape = asIntTuple(sizeV, '_rebuild_tensor_v2 size', ctx);
  const stride = asIntTuple(strideV, '_rebuild_tensor_v2 stride', ctx);
  if (shape.length !== stride.length) {
    ctx.fail(`_rebuild_tensor_v2: size has ${shape.length} dims, stride ${stride.length}`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  // sized and checked before anything is allocated: a stride-0 or overlapping view of a small storage
  // can describe a huge dense tensor
  if (n > 0) {
    const last = offsetV + shape.reduce((acc, d, k) => acc + (d - 1) * stride[k], 0);
    if (!(last < storage.numel)) {
      ctx.fail(
        `tensor [${shape.join(', ')}] (offset ${offsetV}, stride [${stride.join(', ')}]) reaches element ${last} ` +
          `of storage '${storage.key}' holding ${storage.numel}`,
      );
    }
  }
  const outItem = storage.dtype === 'F16' || storage.dtype === 'BF16' ? 4 : ITEM_SIZE[storage.dtype];
  ctx.charge(n * outItem, `tensor [${shape.join(', ')}] of storage '${storage.key}'`);
  const out = allocate(storage.dtype, n);
  if (n > 0) {
    if (
      storage.bigEndian === !HOST_LITTLE_ENDIAN &&
      isRowMajor(shape, stride) &&
      storage.dtype !== 'F16' &&
      storage.dtype !== 'BF16'
    ) {
      const size = ITEM_SIZE[storage.dtype];
      const bytes = new Uint8Array(out.buffer);
      bytes.set(storage.bytes.subarray(offsetV * size, (offsetV + n) * size));
      return new TorchTensor(storage.dtype, shape, out);
    }
    const read = elementReader(storage);
    const rank = shape.length;
    const idx = new Array<number>(rank).fill(0);
    let from = offsetV;
    const big = out instanceof BigInt64Array;
    for (let o = 0; o < n; o++) {
      const value = read(from);
      if (big) (out as BigInt64Array)[o] = value as bigint;
      else (out as Float32Array)[o] = value as number;
      for (let k = rank - 1; k >= 0; k--) {
        idx[k]++;
        from += stride[k];
        if (idx[k] < shape[k]) break;
        from -= stride[k] * shape[k];
        idx[k] = 0;
      }
    }
  }
  const wide: SafeDtype = storage.dtype === 'F16' || storage.dtype === 'BF16' ? 'F32' : storage.dtype;
  return new TorchTensor(wide, shape, out, storage.dtype);
}

/** `_rebuild_parameter(data, requires_grad, hooks[, state])`: the parameter's tensor. */
function rebuildParameter(args: PyTuple, ctx: PickleContext): PyValue {
  if (!(args[0] instanceof TorchTensor)) {
    return ctx.fail(`_rebuild_parameter: expected a tensor, found ${describe(args[0])}`);
  }
  return args[0];
}

/** A dict built by `collections.OrderedDict` (BUILD sets attributes such as a state dict's `_metadata`). */
export class PyOrderedDict extends PyDict implements PySettable {
  /** Attributes set by BUILD (kept, not interpreted). */
  attributes: PyValue = null;
  [PY_SETSTATE](state: PyValue): void {
    this.attributes = state;
  }
}

/** An `argparse.Namespace`: a dict of its attributes (filled by BUILD). */
export class PyNamespace extends PyDict implements PySettable {
  [PY_SETSTATE](state: PyValue, ctx: PickleContext): void {
    if (!(state instanceof PyDict))
      ctx.fail(`argparse.Namespace state: expected a dict, found ${describe(state)}`);
    for (const [k, v] of state as PyDict) this.set(k, v);
  }
}

const storageType: Record<string, PickleGlobal> = {};
for (const name of Object.keys(STORAGE_TYPES)) storageType[`torch.${name}`] = {};

/** The allow-list for torch checkpoints: numpy + the torch rebuild functions and storage types. */
export const TORCH_GLOBALS: PickleGlobals = {
  ...NUMPY_GLOBALS,
  ...storageType,
  'collections.OrderedDict': { reduce: () => new PyOrderedDict() },
  'torch._utils._rebuild_tensor_v2': { reduce: rebuildTensor },
  'torch._utils._rebuild_parameter': { reduce: rebuildParameter },
  'torch._utils._rebuild_parameter_with_state': { reduce: rebuildParameter },
  'torch.Size': {
    reduce: (args, ctx) => {
      if (!isTuple(args[0] ?? null))
        return ctx.fail(`torch.Size: expected a tuple, found ${describe(args[0])}`);
      return args[0];
    },
  },
  'argparse.Namespace': { newobj: () => new PyNamespace(), reduce: () => new PyNamespace() },
};

// ---------------------------------------------------------------------------------------------------
// formats

/** The pickle that opens every legacy (pre-1.6) torch file: PROTO 2, LONG1 10 bytes of the magic number. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return n > 1n && n <= BigInt(bytes.length - 8) && bytes[8] === 0x7b; // '{'
}

/** The archive folder of a torch zip: the one `<folder>/data.pkl` at the top level. */
function archiveRoot(zip: ZipArchive, file: string): string {
  const roots = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (roots.length === 1) return roots[0].slice(0, -'data.pkl'.length);
  const names = [...zip.entries.keys()];
  if (names.some((n) => /^[^/]+\/constants\.pkl$/.test(n))) {
    fail(
      file,
      'is a TorchScript archive (torch.jit.save), not a checkpoint: save its state_dict with torch.save(model.state_dict(), f)',
    );
  }
  return fail(
    file,
    roots.length === 0
      ? `a zip archive without <archive>/data.pkl, so not a torch.save file (members: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''})`
      : `holds ${roots.length} data.pkl members (${roots.join(', ')}); expected one`,
  );
}

function parseZipCheckpoint(bytes: Uint8Array, file: string, limits: ReadLimits): PyValue {
  const budget = new DecodeBudget(file, 'E_WEIGHTS', limits, bytes.length);
  const zip = new ZipArchive(bytes, file, budget);
  const root = archiveRoot(zip, file);
  let bigEndian = false;
  if (zip.entries.has(`${root}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${root}byteorder`)).trim();
    if (order !== 'little' && order !== 'big') fail(file, `unknown byte order '${order}'`);
    bigEndian = order === 'big';
  }
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: PyValue, ctx: PickleContext): PyValue => {
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      return ctx.fail(
        `unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`,
      );
    }
    const [, type, key, , numel] = pid;
    if (!(type instanceof PyGlobalRef) || !Object.hasOwn(STORAGE_TYPES, type.name)) {
      return ctx.fail(`unsupported storage type ${describe(type)}`);
    }
    if (typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
      return ctx.fail(`malformed storage reference (key ${describe(key)}, numel ${describe(numel)})`);
    }
    const dtype = STORAGE_TYPES[type.name];
    const cached = storages.get(key);
    if (cached) {
      if (cached.dtype !== dtype) ctx.fail(`storage '${key}' is used as ${cached.dtype} and ${dtype}`);
      return cached;
    }
    const data = zip.read(`${root}data/${key}`);
    if (data.length < numel * ITEM_SIZE[dtype]) {
      ctx.fail(
        `storage '${key}' has ${data.length} bytes, ${numel} x ${type.name} need ${numel * ITEM_SIZE[dtype]}`,
      );
    }
    const s = new TorchStorage(key, dtype, data, numel, bigEndian);
    storages.set(key, s);
    return s;
  };
  return parsePickle(zip.read(`${root}data.pkl`), {
    name: `${file} (${root}data.pkl)`,
    globals: TORCH_GLOBALS,
    persistentLoad,
    limits,
    budget,
  });
}

/**
 * Parses the bytes of a checkpoint: a torch zip (`torch.save`, torch >= 1.6) or a safetensors file
 * (a PyDict of TorchTensor). `file` names it in errors.
 */
export function parseTorchCheckpoint(
  bytes: Uint8Array,
  file = '<memory>',
  limits: Partial<ReadLimits> = {},
): PyValue {
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) {
    return parseZipCheckpoint(bytes, file, resolveLimits(limits));
  }
  if (startsWith(bytes, LEGACY_MAGIC)) {
    return fail(
      file,
      'is in the legacy PyTorch format (before 1.6), which is not read here; re-save it with torch >= 1.6: ' +
        "python -c \"import torch; torch.save(torch.load('OLD.pth', map_location='cpu'), 'NEW.pth')\"",
    );
  }
  if (looksLikeSafetensors(bytes)) {
    const { tensors } = parseSafetensors(bytes, file);
    const out = new PyDict();
    for (const [name, t] of Object.entries(tensors)) out.set(name, new TorchTensor(t.dtype, t.shape, t.data));
    return out;
  }
  return fail(
    file,
    `is neither a PyTorch checkpoint (a zip written by torch.save) nor a safetensors file (${bytes.length} bytes` +
      `${bytes.length >= 4 ? `, starting ${Buffer.from(bytes.subarray(0, 4)).toString('hex')}` : ''})`,
  );
}

/** Reads a checkpoint file (see parseTorchCheckpoint), or bytes with `name` for messages. */
export async function readTorchCheckpoint(source: string | Uint8Array, name?: string): Promise<PyValue> {
  if (typeof source !== 'string') return parseTorchCheckpoint(source, name ?? '<memory>');
  await refuseSpecialFile(source, 'E_WEIGHTS');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source);
  } catch (err) {
    return fail(source, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseTorchCheckpoint(bytes, name ?? source);
}

// ---------------------------------------------------------------------------------------------------
// state dicts

/** Dict keys whose state dict is the model itself: their tensors get no name prefix. */
const WRAPPER_KEYS: ReadonlySet<string> = new Set([
  'state_dict',
  'model',
  'model_state_dict',
  'module',
  'net',
]);

export interface FlatStateDict {
  /**
   * Every tensor by name, `module.` prefixes (nn.DataParallel) removed: a bare state dict keeps its
   * keys; one under `state_dict` / `model` too; one under any other key (the MCoRe reference's
   * `base_model`, `psnet_model`, `decoder`, `regressor_delta`, `EnhNet_model`) gets `<key>.` in front.
   */
  tensors: Record<string, TorchTensor>;
  /** Numbers, strings and booleans beside the state dicts (`epoch`, `rho_best`, ...), by dotted path. */
  scalars: Record<string, number | string | boolean>;
  /** Other entries that hold no weights, e.g. `optimizer (optimizer state)`. */
  other: string[];
}

function stripModule(key: string): string {
  let k = key;
  while (k.startsWith('module.')) k = k.slice('module.'.length);
  return k;
}

function isOptimizerState(d: PyDict): boolean {
  return d.hasKey('param_groups') && d.hasKey('state');
}

/**
 * Finds the state dicts in a checkpoint read by readTorchCheckpoint (any nesting of string-keyed
 * dicts) and returns their tensors under one flat namespace (see FlatStateDict). Throws E_WEIGHTS when
 * two tensors end up with the same name or when the file holds no tensors at all.
 */
export function flattenStateDicts(obj: PyValue, file = '<checkpoint>'): FlatStateDict {
  const out: FlatStateDict = { tensors: {}, scalars: {}, other: [] };
  const walk = (d: PyDict, prefix: string, path: string): void => {
    for (const [k, v] of d) {
      const label = `${path}${typeof k === 'string' ? k : String(k)}`;
      if (v instanceof TorchTensor && typeof k === 'string') {
        const name = prefix + stripModule(k);
        if (Object.hasOwn(out.tensors, name))
          fail(file, `two tensors are both named '${name}' after removing 'module.'`);
        out.tensors[name] = v;
      } else if (typeof k !== 'string') {
        out.other.push(`${label} (${describe(v)})`);
      } else if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') {
        out.scalars[label] = v;
      } else if (typeof v === 'bigint') {
        out.scalars[label] = Number(v);
      } else if (v instanceof PyDict && isOptimizerState(v)) {
        out.other.push(`${label} (optimizer state)`);
      } else if (v instanceof PyNamespace) {
        out.other.push(`${label} (argparse.Namespace of ${v.size})`);
      } else if (v instanceof PyDict && [...v.keys()].every((x) => typeof x === 'string')) {
        const inner = WRAPPER_KEYS.has(k) ? prefix : `${prefix}${k}.`;
        walk(v, inner, `${label}.`);
      } else {
        out.other.push(`${label} (${describe(v)})`);
      }
    }
  };
  if (obj instanceof PyDict) walk(obj, '', '');
  else fail(file, `holds ${describe(obj)}, not a dict of weights`);
  if (Object.keys(out.tensors).length === 0) {
    fail(
      file,
      `holds no tensors (entries: ${[...(obj as PyDict).keys()].map(String).slice(0, 12).join(', ') || 'none'})`,
    );
  }
  return out;
}
