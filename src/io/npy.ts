/**
 * NumPy arrays in plain JS: the `.npy` file format (versions 1.0, 2.0, 3.0) and the shared decoding of
 * raw array bytes that the pickle reader (`./pickle.ts`) uses for pickled `numpy.ndarray`s.
 *
 * Supported element types: bool, int8/16/32/64, uint8/16/32/64, float32, float64, in little or big
 * endian (decoded to native little endian). Fortran-ordered arrays are transposed to C order on read,
 * so `data` is always row-major for `shape`. Hostile headers are bounded: at most 10000 bytes (numpy's
 * own `max_header_size`) nested at most 16 levels, and the data size a header declares is checked
 * against the file's size before anything is allocated or read; a file's array may hold at most 4 GiB
 * (MCORE_MAX_DECODED_BYTES, ./limits.ts). int64/uint64 data stays exact in BigInt64Array /
 * BigUint64Array; `toFloat64` and `toInt32` convert (checking range).
 *
 * @example
 * const { data, shape, dtype } = await readNpy('pred.npy'); // Float64Array(749), [749], 'float64'
 * await writeNpy('out.npy', new Float32Array([1, 2, 3, 4]), [2, 2]);
 */
import { type FileHandle, open } from 'node:fs/promises';
import { McoreError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { refuseSpecialFile } from './input-path.ts';
import { limitHint, MAX_DECODED_BYTES, resolveLimits } from './limits.ts';

export type NpDtype =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float32'
  | 'float64';

export type NpData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A dense row-major array: `data.length` is the product of `shape`. */
export interface NdArray {
  dtype: NpDtype;
  shape: number[];
  data: NpData;
}

/** Element size in bytes and typed-array constructor per element type. */
const INFO: Readonly<Record<NpDtype, { size: number; make: (buf: ArrayBuffer) => NpData }>> = {
  bool: { size: 1, make: (b) => new Uint8Array(b) },
  int8: { size: 1, make: (b) => new Int8Array(b) },
  uint8: { size: 1, make: (b) => new Uint8Array(b) },
  int16: { size: 2, make: (b) => new Int16Array(b) },
  uint16: { size: 2, make: (b) => new Uint16Array(b) },
  int32: { size: 4, make: (b) => new Int32Array(b) },
  uint32: { size: 4, make: (b) => new Uint32Array(b) },
  int64: { size: 8, make: (b) => new BigInt64Array(b) },
  uint64: { size: 8, make: (b) => new BigUint64Array(b) },
  float32: { size: 4, make: (b) => new Float32Array(b) },
  float64: { size: 8, make: (b) => new Float64Array(b) },
};

/** numpy type codes (kind + itemsize, as in `np.dtype('<f8').str[1:]`) -> element type. */
const CODES: Readonly<Record<string, NpDtype>> = {
  b1: 'bool',
  i1: 'int8',
  u1: 'uint8',
  i2: 'int16',
  u2: 'uint16',
  i4: 'int32',
  u4: 'uint32',
  i8: 'int64',
  u8: 'uint64',
  f4: 'float32',
  f8: 'float64',
};

/** Other spellings numpy accepts in pickles and headers ('?' bool, 'b'/'B' bytes, 'd' double ...). */
const ALIASES: Readonly<Record<string, string>> = {
  '?': 'b1',
  bool: 'b1',
  b: 'i1',
  B: 'u1',
  h: 'i2',
  H: 'u2',
  i: 'i4',
  I: 'u4',
  l: 'i8',
  L: 'u8',
  q: 'i8',
  Q: 'u8',
  f: 'f4',
  d: 'f8',
  int8: 'i1',
  uint8: 'u1',
  int16: 'i2',
  uint16: 'u2',
  int32: 'i4',
  uint32: 'u4',
  int64: 'i8',
  uint64: 'u8',
  float32: 'f4',
  float64: 'f8',
};

export type ByteOrder = 'little' | 'big';

/** A parsed numpy type descriptor such as '<f8', '>i4', '|b1', 'f4'. */
export interface DtypeDescr {
  dtype: NpDtype;
  itemSize: number;
  byteOrder: ByteOrder;
}

/**
 * Parses a numpy type string ('<f8', '>i8', '|u1', '=f4', 'i8', 'float32'). '=' and no prefix mean
 * native order, taken as little endian. Throws E_INPUT naming `where` for unsupported types.
 */
export function parseDescr(descr: string, where: string): DtypeDescr {
  let order: ByteOrder = 'little';
  let code = descr;
  const first = descr[0];
  if (first === '<' || first === '>' || first === '|' || first === '=') {
    order = first === '>' ? 'big' : 'little';
    code = descr.slice(1);
  }
  const dtype = CODES[code] ?? CODES[ALIASES[code] ?? ''];
  if (dtype === undefined) {
    throw new McoreError(
      'E_INPUT',
      `${where}: unsupported numpy dtype '${descr}'; supported: bool, int8-64, uint8-64, float32, float64`,
    );
  }
  return { dtype, itemSize: INFO[dtype].size, byteOrder: order };
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Row-major copy of a Fortran-ordered array (element index only; works on any typed array). */
function fortranToC<T extends NpData>(src: T, shape: readonly number[]): T {
  const n = src.length;
  const dst = new (src.constructor as new (len: number) => T)(n);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  // Fortran strides (in elements): stride[k] = prod(shape[0..k-1]).
  const fstride = new Array<number>(nd);
  let s = 1;
  for (let k = 0; k < nd; k++) {
    fstride[k] = s;
    s *= shape[k];
  }
  for (let c = 0; c < n; c++) {
    let f = 0;
    for (let k = 0; k < nd; k++) f += idx[k] * fstride[k];
    (dst as unknown as number[])[c] = (src as unknown as number[])[f];
    for (let k = nd - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return dst;
}

/**
 * Decodes raw numpy array bytes into a row-major `NdArray` (copying, so the result is aligned and
 * owns its buffer). `where` names the source in errors (file and, for pickles, the byte offset).
 */
export function decodeArray(
  bytes: Uint8Array,
  descr: DtypeDescr,
  shape: readonly number[],
  fortranOrder: boolean,
  where: string,
): NdArray {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new McoreError('E_INPUT', `${where}: invalid array shape (${shape.join(', ')})`);
    }
  }
  const count = product(shape);
  const nbytes = count * descr.itemSize;
  if (bytes.length < nbytes) {
    throw new McoreError(
      'E_INPUT',
      `${where}: truncated array data: shape (${shape.join(', ')}) of ${descr.dtype} needs ${nbytes} bytes, found ${bytes.length}`,
    );
  }
  const buf = new Uint8Array(nbytes); // a copy (also when `bytes` is a Node Buffer, whose slice is a view)
  buf.set(bytes.subarray(0, nbytes));
  if (descr.byteOrder === 'big' && descr.itemSize > 1) {
    const w = descr.itemSize;
    for (let o = 0; o < nbytes; o += w) buf.subarray(o, o + w).reverse();
  }
  let data = INFO[descr.dtype].make(buf.buffer);
  if (fortranOrder && shape.length > 1) data = fortranToC(data, shape);
  return { dtype: descr.dtype, shape: [...shape], data };
}

/** The array's values as float64 (int64/uint64 must be within +-2^53). */
export function toFloat64(arr: NdArray, what: string): Float64Array {
  if (arr.data instanceof BigInt64Array || arr.data instanceof BigUint64Array) {
    const out = new Float64Array(arr.data.length);
    for (let i = 0; i < out.length; i++) {
      const v = Number(arr.data[i]);
      if (!Number.isSafeInteger(v)) {
        throw new McoreError('E_INPUT', `${what}: ${arr.dtype} value ${arr.data[i]} at ${i} exceeds 2^53`);
      }
      out[i] = v;
    }
    return out;
  }
  return Float64Array.from(arr.data);
}

/** The array's values as int32; throws E_INPUT for non-integers or values outside int32. */
export function toInt32(arr: NdArray, what: string): Int32Array {
  const out = new Int32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Number(arr.data[i]);
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
      throw new McoreError('E_INPUT', `${what}: value ${arr.data[i]} at index ${i} is not an int32`);
    }
    out[i] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// .npy header: a Python dict literal such as {'descr': '<f8', 'fortran_order': False, 'shape': (749,), }

type Literal = string | number | boolean | null | Literal[] | { [k: string]: Literal };

/** Deepest nesting in an .npy header (numpy writes 2: a dict holding the shape tuple). */
const MAX_HEADER_DEPTH = 16;
/** Longest .npy header read: numpy's own default `max_header_size` (it refuses longer ones too). */
export const MAX_NPY_HEADER = 10_000;

function parseLiteral(text: string, where: string): Literal {
  let i = 0;
  let depth = 0;
  const token = /True|False|None|-?\d+L?/y;
  const fail = (msg: string): never => {
    throw new McoreError(
      'E_INPUT',
      `${where}: malformed .npy header (${msg} at column ${i}): ${text.trim()}`,
    );
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = (): Literal => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      if (++depth > MAX_HEADER_DEPTH) fail(`nested deeper than ${MAX_HEADER_DEPTH} levels`);
      i++;
      const obj: Record<string, Literal> = {};
      const items: Literal[] = [];
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        const v = value();
        if (c === '{') {
          ws();
          if (text[i] !== ':') fail("expected ':'");
          i++;
          if (typeof v !== 'string') fail('dict key is not a string');
          if (v === '__proto__') fail("dict key '__proto__'");
          obj[v as string] = value();
        } else {
          items.push(v);
        }
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}'`);
      }
      depth--;
      return c === '{' ? obj : items;
    }
    token.lastIndex = i;
    const m = token.exec(text);
    if (m === null) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number.parseInt(m[0], 10);
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Parses a `.npy` file (a path, or its bytes with `name` for errors). Returns the array in C order.
 * Throws E_INPUT naming the file for a bad magic string, unsupported version or dtype, malformed
 * header and truncated data; E_DATA_LAYOUT when the file is missing.
 */
export async function readNpy(source: string | Uint8Array, name?: string): Promise<NdArray> {
  if (typeof source !== 'string') return parseNpy(source, name ?? '<buffer>');
  const label = name ?? source;
  await refuseSpecialFile(source, 'E_INPUT');
  let handle: FileHandle | undefined;
  try {
    handle = await open(source, 'r');
    const size = (await handle.stat()).size;
    // the header first: its declared data size is checked against the file's before the data is read
    const prefix = new Uint8Array(Math.min(size, 12 + MAX_NPY_HEADER));
    await handle.read(prefix, 0, prefix.length, 0);
    const h = parseNpyHeader(prefix, label);
    if (!(h.dataBytes <= size - h.dataStart)) throw truncated(label, h, size);
    const limit = resolveLimits().maxDecodedBytes ?? MAX_DECODED_BYTES;
    if (h.dataBytes > limit) {
      throw new McoreError(
        'E_INPUT',
        `${label}: the array (${h.shape.join(', ')}) of ${h.descr.dtype} holds ${h.dataBytes} bytes, more than mcore ` +
          `reads from one file (${limitHint('maxDecodedBytes', limit)})`,
      );
    }
    const bytes = new Uint8Array(h.dataStart + h.dataBytes);
    await handle.read(bytes, 0, bytes.length, 0);
    return parseNpy(bytes, label);
  } catch (err) {
    if (err instanceof McoreError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new McoreError(
      code === 'ENOENT' ? 'E_DATA_LAYOUT' : 'E_INPUT',
      `${source}: cannot read .npy file (${code ?? String(err)})`,
    );
  } finally {
    await handle?.close();
  }
}

/** A parsed `.npy` header: the array's type, order and shape, and where its data starts. */
export interface NpyHeader {
  descr: DtypeDescr;
  fortran: boolean;
  shape: number[];
  /** Byte offset of the array data. */
  dataStart: number;
  /** Bytes of array data the header declares. */
  dataBytes: number;
}

/**
 * Parses the header at the start of `bytes` (which may hold only a prefix of the file). Throws
 * E_INPUT naming the file for a bad magic string, version, header or dtype.
 */
export function parseNpyHeader(bytes: Uint8Array, name: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new McoreError('E_INPUT', `${name}: not a .npy file (missing the \\x93NUMPY magic string)`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (major < 1 || major > 3) {
    throw new McoreError(
      'E_INPUT',
      `${name}: unsupported .npy version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new McoreError('E_INPUT', `${name}: truncated .npy header`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (headerLen > MAX_NPY_HEADER) {
    throw new McoreError(
      'E_INPUT',
      `${name}: .npy header of ${headerLen} bytes is longer than ${MAX_NPY_HEADER} (numpy's own max_header_size); ` +
        're-save the array with numpy.save',
    );
  }
  if (bytes.length < start + headerLen) {
    throw new McoreError(
      'E_INPUT',
      `${name}: truncated .npy header (needs ${start + headerLen} bytes, file has ${bytes.length})`,
    );
  }
  const headerBytes = bytes.subarray(start, start + headerLen);
  const header = major === 3 ? new TextDecoder().decode(headerBytes) : latin1(headerBytes);
  const dict = parseLiteral(header, name);
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) {
    throw new McoreError('E_INPUT', `${name}: .npy header is not a dict: ${header.trim()}`);
  }
  const { descr, fortran_order: fortran, shape } = dict;
  if (typeof descr !== 'string') {
    throw new McoreError('E_INPUT', `${name}: structured or missing 'descr' in .npy header is not supported`);
  }
  if (typeof fortran !== 'boolean') {
    throw new McoreError('E_INPUT', `${name}: .npy header lacks a boolean 'fortran_order'`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) {
    throw new McoreError('E_INPUT', `${name}: .npy header lacks a 'shape' tuple of ints`);
  }
  const d = parseDescr(descr, name);
  const dims = shape as number[];
  if (!dims.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new McoreError('E_INPUT', `${name}: invalid array shape (${dims.join(', ')}) in the .npy header`);
  }
  const dataBytes = product(dims) * d.itemSize;
  return { descr: d, fortran, shape: dims, dataStart: start + headerLen, dataBytes };
}

function truncated(name: string, h: NpyHeader, fileBytes: number): McoreError {
  return new McoreError(
    'E_INPUT',
    `${name}: truncated .npy file: its header declares shape (${h.shape.join(', ')}) of ${h.descr.dtype}, ` +
      `${h.dataBytes} bytes of data, but the file holds ${Math.max(0, fileBytes - h.dataStart)}`,
  );
}

/** Synchronous parse of `.npy` bytes; `name` labels errors. */
export function parseNpy(bytes: Uint8Array, name: string): NdArray {
  const h = parseNpyHeader(bytes, name);
  // the declared size is checked against the bytes there are before anything is allocated
  if (!(h.dataBytes <= bytes.length - h.dataStart)) throw truncated(name, h, bytes.length);
  return decodeArray(bytes.subarray(h.dataStart), h.descr, h.shape, h.fortran, name);
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** `.npy` bytes (version 1.0, little endian, C order) for a float array of the given shape. */
export function encodeNpy(data: Float32Array | Float64Array, shape: readonly number[]): Uint8Array {
  if (product(shape) !== data.length) {
    throw new McoreError(
      'E_SHAPE',
      `writeNpy: shape (${shape.join(', ')}) does not hold ${data.length} values`,
    );
  }
  const descr = data instanceof Float32Array ? '<f4' : '<f8';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // numpy pads magic + version + length + header (+ '\n') to a multiple of 64 bytes.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Writes a `.npy` file atomically (temporary file in the same folder, then rename). */
export async function writeNpy(
  path: string,
  data: Float32Array | Float64Array,
  shape: readonly number[],
): Promise<void> {
  const bytes = encodeNpy(data, shape);
  try {
    await writeFileAtomic(path, bytes);
  } catch (err) {
    throw new McoreError('E_INPUT', `${path}: cannot write .npy file (${(err as Error).message})`);
  }
}
