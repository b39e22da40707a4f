/**
 * The safetensors file format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
 * header `{ "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, "__metadata__": { str: str } }`,
 * then the raw little-endian tensor bytes (offsets relative to the end of the header). This is how mcore
 * stores weights and checkpoints (spec section 8: PyTorch names and layouts, so files load in PyTorch with
 * `safetensors.torch.load_file`).
 *
 * Element types: F32, F64, I32, I64 are kept exactly (I64 as BigInt64Array); F16 and BF16 are widened
 * to float32 on read (the entry then reports dtype 'F32') and rounded to nearest-even on write from
 * float32 data. Reading validates the header length, the JSON, every dtype, shape and offset range,
 * and that no two tensors overlap; every problem is a McoreError('E_WEIGHTS') naming the file.
 *
 * This file is the codec (bytes <-> tensors, no file system), shared by the browser scoring core;
 * ./safetensors.ts adds reading and writing files.
 *
 * @example
 * await writeSafetensors('w.safetensors', { 'fc.weight': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors } = await readSafetensors('w.safetensors'); // tensors['fc.weight'].data -> Float32Array [1, 2]
 */
import { McoreError } from '../errors.ts';

export type SafeDtype = 'F32' | 'F64' | 'I64' | 'F16' | 'BF16' | 'I32';

export type SafeData = Float32Array | Float64Array | Int32Array | BigInt64Array;

/** A dense row-major tensor. F16/BF16 entries carry float32 `data` (converted on write). */
export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: SafeData;
}

export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Bytes per element on disk. */
const BYTES: Readonly<Record<SafeDtype, number>> = { F32: 4, F64: 8, I64: 8, F16: 2, BF16: 2, I32: 4 };

/** Largest header accepted (the format's own limit is 100 MB). */
const MAX_HEADER = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(file: string, message: string): never {
  throw new McoreError('E_WEIGHTS', `${file}: ${message}`);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isDtype(s: unknown): s is SafeDtype {
  return typeof s === 'string' && Object.hasOwn(BYTES, s);
}

// ---- float16 / bfloat16 <-> float32 -------------------------------------------------------------

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** IEEE half bits -> number (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> IEEE half bits, round to nearest even; overflow -> infinity. */
export function floatToHalf(x: number): number {
  f32buf[0] = x;
  const bits = u32buf[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half of the smallest subnormal
    const m = mant | 0x800000; // implicit leading one
    const shift = 14 - e; // 24-bit significand -> subnormal half
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r += 1;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r += 1; // may carry into the exponent: still correct
  return sign | r;
}

/** bfloat16 bits -> number (exact). */
export function bf16ToFloat(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0];
}

/** number -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function floatToBf16(x: number): number {
  f32buf[0] = x;
  const bits = u32buf[0];
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

// ---- encode ---------------------------------------------------------------------------------------

function checkEntry(file: string, name: string, t: SafeTensor): void {
  if (!isDtype(t.dtype)) fail(file, `tensor '${name}': unknown dtype '${String(t.dtype)}'`);
  if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    fail(file, `tensor '${name}': invalid shape [${t.shape.join(', ')}]`);
  }
  const want =
    t.dtype === 'F64'
      ? Float64Array
      : t.dtype === 'I64'
        ? BigInt64Array
        : t.dtype === 'I32'
          ? Int32Array
          : Float32Array;
  if (!(t.data instanceof want)) fail(file, `tensor '${name}': dtype ${t.dtype} needs ${want.name} data`);
  if (t.data.length !== numel(t.shape)) {
    fail(file, `tensor '${name}': ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  }
}

/** Raw little-endian bytes of one tensor. */
function tensorBytes(t: SafeTensor): Uint8Array {
  if (t.dtype === 'F16' || t.dtype === 'BF16') {
    const src = t.data as Float32Array;
    const conv = t.dtype === 'F16' ? floatToHalf : floatToBf16;
    const out = new Uint8Array(src.length * 2);
    for (let i = 0; i < src.length; i++) {
      const h = conv(src[i]);
      out[2 * i] = h & 0xff;
      out[2 * i + 1] = h >>> 8;
    }
    return out;
  }
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return LITTLE_ENDIAN ? bytes : swapBytes(bytes, BYTES[t.dtype]);
}

function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) {
    for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  }
  return out;
}

/**
 * The bytes of a safetensors file holding `tensors` (in the record's order) and string `metadata`.
 * The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
  file = '<memory>',
): Uint8Array {
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') fail(file, `metadata '${k}' must be a string, got ${typeof v}`);
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') fail(file, `'__metadata__' is reserved and cannot name a tensor`);
    checkEntry(file, name, t);
    const raw = tensorBytes(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + raw.length] };
    blobs.push(raw);
    offset += raw.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

// ---- decode ---------------------------------------------------------------------------------------

/** Copies `bytes[begin, end)` into a new aligned buffer, swapping to native order if needed. */
function alignedCopy(bytes: Uint8Array, begin: number, end: number, size: number): ArrayBuffer {
  const copy = new Uint8Array(end - begin); // not bytes.slice: a Node Buffer's slice is a view
  copy.set(bytes.subarray(begin, end));
  if (!LITTLE_ENDIAN) copy.set(swapBytes(copy, size));
  return copy.buffer;
}

function decodeData(dtype: SafeDtype, bytes: Uint8Array, begin: number, end: number): SafeData {
  switch (dtype) {
    case 'F32':
      return new Float32Array(alignedCopy(bytes, begin, end, 4));
    case 'F64':
      return new Float64Array(alignedCopy(bytes, begin, end, 8));
    case 'I32':
      return new Int32Array(alignedCopy(bytes, begin, end, 4));
    case 'I64':
      return new BigInt64Array(alignedCopy(bytes, begin, end, 8));
    case 'F16':
    case 'BF16': {
      const conv = dtype === 'F16' ? halfToFloat : bf16ToFloat;
      const out = new Float32Array((end - begin) / 2);
      for (let i = 0; i < out.length; i++)
        out[i] = conv(bytes[begin + 2 * i] | (bytes[begin + 2 * i + 1] << 8));
      return out;
    }
  }
}

/** Parses the bytes of a safetensors file; `file` names it in error messages. */
export function parseSafetensors(bytes: Uint8Array, file = '<memory>'): SafetensorsFile {
  if (bytes.length < 8) fail(file, `too short for a safetensors file (${bytes.length} bytes)`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    fail(file, `header length ${n} exceeds the file (${bytes.length} bytes); not a safetensors file?`);
  }
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    fail(file, `header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(file, 'header must be a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, SafeTensor> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
        fail(file, '__metadata__ must be an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `metadata '${k}' must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') fail(file, `tensor '${name}': entry must be an object`);
    if (!isDtype(e.dtype)) {
      fail(
        file,
        `tensor '${name}': unsupported dtype '${String(e.dtype)}' (known: ${Object.keys(BYTES).join(', ')})`,
      );
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(file, `tensor '${name}': invalid shape ${JSON.stringify(shape)}`);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(file, `tensor '${name}': invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataLen) {
      fail(
        file,
        `tensor '${name}': data_offsets [${begin}, ${end}] outside the ${dataLen}-byte data section`,
      );
    }
    const expected = numel(shape as number[]) * BYTES[e.dtype];
    if (end - begin !== expected) {
      fail(
        file,
        `tensor '${name}': ${end - begin} bytes for ${e.dtype} shape [${(shape as number[]).join(', ')}] (expected ${expected})`,
      );
    }
    spans.push({ name, begin, end });
    const data = decodeData(e.dtype, bytes, dataStart + begin, dataStart + end);
    const dtype: SafeDtype = e.dtype === 'F16' || e.dtype === 'BF16' ? 'F32' : e.dtype;
    tensors[name] = { dtype, shape: (shape as number[]).slice(), data };
  }
  spans.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].begin < spans[i - 1].end) {
      fail(file, `tensors '${spans[i - 1].name}' and '${spans[i].name}' overlap`);
    }
  }
  return { tensors, metadata };
}
