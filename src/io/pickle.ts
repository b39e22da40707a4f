/**
 * A safe reader for Python pickles (protocols 2-5) that hold plain data and numpy arrays: a small
 * pickle virtual machine that never executes code. Globals (`GLOBAL`, `STACK_GLOBAL`) resolve only
 * through an allow-list passed by the caller (the `globals` registry: name -> constructor); any other
 * global, and any out-of-band buffer, is refused with McoreError('E_PICKLE') naming the file, the
 * global and the byte offset. pickleparser 0.2.1 was not used: by default it turns unknown globals
 * into placeholder objects (refusing needs a custom resolver), its Map dicts key tuples by array
 * identity (so `('01', 1)` cannot be looked up) and its errors name neither file nor offset.
 *
 * Python -> JS: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes/bytearray -> Uint8Array, list -> array, tuple -> frozen array, dict -> PyDict
 * (a Map; tuple keys are frozen arrays, look them up with `dict.lookup(['01', 1])`), set -> Set,
 * numpy.ndarray -> PickledNdArray ({ dtype, shape, data }, C order), numpy scalar -> number/boolean.
 *
 * Limits (./limits.ts): the VM itself never recurses; the value it returns is checked before it is
 * handed out: nested at most MCORE_MAX_DEPTH levels (default 1000), at most MCORE_MAX_OBJECTS nodes
 * (default 10^7) when expanded as a tree (a sub-structure shared through the memo counts once per use,
 * so a few-KB "billion laughs" pickle is refused, not walked), and free of reference cycles; numpy
 * arrays are charged against the file's decoded-bytes budget before they are allocated; a dict key
 * may not expand beyond 1 MiB of text. Every refusal is E_PICKLE naming the limit and its variable.
 *
 * Extension points for other formats (e.g. torch checkpoints): pass more `globals` (a constructor per
 * allowed `module.name`, called by REDUCE or NEWOBJ; returned objects may implement `[PY_SETSTATE]` to
 * receive BUILD) and a `persistentLoad` hook for BINPERSID.
 *
 * @example
 * const split = await loadPickle('train_split.pkl'); // [['FINADivingWorldCup2021_Men3m_final_r1', 8], ...]
 * const ann = (await loadPickle('FineDiving_coarse_annotation.pkl')) as PyDict;
 * ann.lookup(['01', 1]); // PyDict { 'action_type' => '407c', ... }
 */
import { readFile } from 'node:fs/promises';
import { McoreError } from '../errors.ts';
import { refuseSpecialFile } from './input-path.ts';
import { DecodeBudget, limitHint, type ReadLimits, resolveLimits } from './limits.ts';
import {
  type ByteOrder,
  type DtypeDescr,
  decodeArray,
  type NdArray,
  type NpData,
  type NpDtype,
  parseDescr,
} from './npy.ts';

/** An object built by a registered global; `pyType` names its Python type. */
export interface PyObject {
  readonly pyType: string;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | Set<PyValue>
  | PyObject;

/** A Python tuple: a frozen array. */
export type PyTuple = readonly PyValue[];

/** True when `v` is a Python tuple (a frozen array) rather than a list. */
export function isTuple(v: PyValue): v is PyTuple {
  return Array.isArray(v) && Object.isFrozen(v);
}

/** BUILD calls `obj[PY_SETSTATE](state, ctx)` (Python's `__setstate__`). */
export const PY_SETSTATE: unique symbol = Symbol('pickle.setstate');

export interface PySettable {
  [PY_SETSTATE](state: PyValue, ctx: PickleContext): void;
}

/** Where the VM is, for errors raised by constructors and hooks. */
export interface PickleContext {
  readonly file: string;
  /** Byte offset of the opcode being executed. */
  readonly offset: number;
  /** Throws McoreError('E_PICKLE') naming the file and offset. */
  fail(message: string): never;
  /** Charges `bytes` decoded for `what` against the file's budget (./limits.ts); throws past it. */
  charge(bytes: number, what: string): void;
}

/** A constructor admitted by the allow-list: REDUCE calls `reduce(args)`, NEWOBJ `newobj(args)`. */
export interface PickleGlobal {
  reduce?: (args: PyTuple, ctx: PickleContext) => PyValue;
  newobj?: (args: PyTuple, ctx: PickleContext) => PyValue;
}

/** The allow-list: `'module.name'` -> constructor. Globals not listed are refused. */
export type PickleGlobals = Readonly<Record<string, PickleGlobal>>;

export interface PickleOptions {
  /** Names the source in errors (default: the path, or '<buffer>'). */
  name?: string;
  /** Allowed globals (default NUMPY_GLOBALS). */
  globals?: PickleGlobals;
  /** Resolves BINPERSID ids (torch storages); without it persistent ids are refused. */
  persistentLoad?: (pid: PyValue, ctx: PickleContext) => PyValue;
  /** Nesting, object and decoded-bytes limits (./limits.ts; default: the environment, then defaults). */
  limits?: Partial<ReadLimits>;
  /** The decoded-bytes budget to charge (a torch archive shares one over its members). */
  budget?: DecodeBudget;
}

/** A reference to an allowed global, as pushed by GLOBAL / STACK_GLOBAL. */
export class PyGlobalRef implements PyObject {
  readonly pyType = 'global';
  constructor(
    readonly module: string,
    readonly name: string,
    readonly impl: PickleGlobal,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// dict keys

/**
 * A canonical string for a hashable Python value, equal for values Python treats as equal keys
 * (1 == 1.0 == True, tuples element-wise). Any JS array counts as a tuple. Throws for unhashable values.
 */
export function canonicalKey(key: PyValue): string {
  const budget = { chars: MAX_KEY_CHARS };
  return keyText(key, 0, budget);
}

/** Longest canonical key and deepest tuple key accepted (a key shared exponentially stops here). */
const MAX_KEY_CHARS = 1 << 20;
const MAX_KEY_DEPTH = 100;

function keyText(key: PyValue, depth: number, budget: { chars: number }): string {
  let out: string;
  if (key === null) out = 'None';
  else if (typeof key === 'boolean') out = key ? 'n:1' : 'n:0';
  else if (typeof key === 'number' || typeof key === 'bigint') out = `n:${key}`;
  else if (typeof key === 'string') out = JSON.stringify(key);
  else if (key instanceof Uint8Array) out = `b:${Buffer.from(key).toString('hex')}`;
  else if (Array.isArray(key)) {
    if (depth >= MAX_KEY_DEPTH)
      throw new Error(`dict key: a tuple nested deeper than ${MAX_KEY_DEPTH} levels`);
    out = `(${key.map((k) => keyText(k, depth + 1, budget)).join(',')})`;
  } else throw new Error(`unhashable dict key of type ${describe(key)}`);
  budget.chars -= out.length;
  if (budget.chars < 0) throw new Error(`dict key: longer than ${MAX_KEY_CHARS} characters as text`);
  return out;
}

/** A Python dict: a Map keyed by the Python values, with lookup by canonical key. */
export class PyDict extends Map<PyValue, PyValue> {
  #index = new Map<string, PyValue>();

  override set(key: PyValue, value: PyValue): this {
    const c = canonicalKey(key);
    if (this.#index.has(c)) return super.set(this.#index.get(c) as PyValue, value);
    this.#index.set(c, key);
    return super.set(key, value);
  }

  override delete(key: PyValue): boolean {
    const c = canonicalKey(key);
    if (!this.#index.has(c)) return false;
    const stored = this.#index.get(c) as PyValue;
    this.#index.delete(c);
    return super.delete(stored);
  }

  override clear(): void {
    this.#index.clear();
    super.clear();
  }

  /** The value under a key given as JS data (a tuple as an array, e.g. `['01', 1]`), or undefined. */
  lookup(key: PyValue): PyValue | undefined {
    const c = canonicalKey(key);
    return this.#index.has(c) ? this.get(this.#index.get(c) as PyValue) : undefined;
  }

  hasKey(key: PyValue): boolean {
    return this.#index.has(canonicalKey(key));
  }
}

/** A short description of a value's type for error messages. */
export function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (Array.isArray(v)) return `${isTuple(v) ? 'tuple' : 'list'} of ${(v as PyTuple).length}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (v instanceof PyDict) return `dict of ${v.size}`;
  if (v instanceof Set) return 'set';
  if (typeof v === 'object') return (v as PyObject).pyType ?? 'object';
  return typeof v;
}

// ---------------------------------------------------------------------------------------------------
// numpy globals

function latin1Bytes(s: string, ctx: PickleContext): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255) ctx.fail(`string holds character U+${c.toString(16)} outside latin-1`);
    out[i] = c;
  }
  return out;
}

function asBytes(v: PyValue, what: string, ctx: PickleContext): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return latin1Bytes(v, ctx); // protocol-2 / Python 2 pickles
  return ctx.fail(`${what}: expected bytes, found ${describe(v)}`);
}

function asShape(v: PyValue, what: string, ctx: PickleContext): number[] {
  if (!Array.isArray(v) || !v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    return ctx.fail(`${what}: expected a shape tuple of non-negative ints, found ${describe(v)}`);
  }
  return [...(v as number[])];
}

/** A pickled `numpy.dtype`: type code from the constructor, byte order from BUILD. */
export class PickledDtype implements PyObject, PySettable {
  readonly pyType = 'numpy.dtype';
  readonly dtype: NpDtype;
  readonly itemSize: number;
  byteOrder: ByteOrder = 'little';
  constructor(descr: DtypeDescr) {
    this.dtype = descr.dtype;
    this.itemSize = descr.itemSize;
    this.byteOrder = descr.byteOrder;
  }
  get descr(): DtypeDescr {
    return { dtype: this.dtype, itemSize: this.itemSize, byteOrder: this.byteOrder };
  }
  [PY_SETSTATE](state: PyValue, ctx: PickleContext): void {
    // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
    if (!Array.isArray(state) || state.length < 8 || typeof state[1] !== 'string') {
      ctx.fail(`numpy.dtype state: expected a tuple of 8 or 9 with a byte order, found ${describe(state)}`);
    }
    const order = state[1] as string;
    if (state[3] !== null || state[2] !== null)
      ctx.fail('structured or sub-array numpy dtypes are not supported');
    if (order === '>') this.byteOrder = 'big';
    else if (order === '<' || order === '|' || order === '=') this.byteOrder = 'little';
    else ctx.fail(`numpy.dtype state: unknown byte order '${order}'`);
  }
}

/** `decodeArray` with its errors reported as E_PICKLE at the current opcode. */
function decodeIn(
  ctx: PickleContext,
  bytes: Uint8Array,
  dtype: PickledDtype,
  shape: number[],
  fortran: boolean,
) {
  try {
    return decodeArray(bytes, dtype.descr, shape, fortran, 'numpy data');
  } catch (err) {
    return ctx.fail((err as Error).message);
  }
}

function asDtype(v: PyValue, what: string, ctx: PickleContext): PickledDtype {
  if (!(v instanceof PickledDtype)) return ctx.fail(`${what}: expected a numpy.dtype, found ${describe(v)}`);
  return v;
}

/** A pickled `numpy.ndarray` (row-major after decoding); filled by BUILD or by `_frombuffer`. */
export class PickledNdArray implements NdArray, PyObject, PySettable {
  readonly pyType = 'numpy.ndarray';
  dtype: NpDtype = 'float64';
  shape: number[] = [0];
  data: NpData = new Float64Array(0);
  /** False until the array's contents were set (BUILD after `_reconstruct`). */
  built = false;

  fill(bytes: Uint8Array, dtype: PickledDtype, shape: number[], fortran: boolean, ctx: PickleContext): void {
    const count = shape.reduce((a, b) => a * b, 1);
    ctx.charge(count * dtype.itemSize * (fortran ? 2 : 1), `numpy array (${shape.join(', ')})`);
    const arr = decodeIn(ctx, bytes, dtype, shape, fortran);
    this.dtype = arr.dtype;
    this.shape = arr.shape;
    this.data = arr.data;
    this.built = true;
  }

  [PY_SETSTATE](state: PyValue, ctx: PickleContext): void {
    // (version, shape, dtype, is_fortran, rawdata), or the same without version
    if (!Array.isArray(state) || (state.length !== 5 && state.length !== 4)) {
      ctx.fail(`numpy.ndarray state: expected a tuple of 4 or 5, found ${describe(state)}`);
    }
    const s = state.length === 5 ? state.slice(1) : state;
    const raw = s[3];
    if (Array.isArray(raw)) ctx.fail('numpy object arrays (dtype=object) are not supported');
    this.fill(
      asBytes(raw, 'numpy.ndarray data', ctx),
      asDtype(s[1], 'numpy.ndarray dtype', ctx),
      asShape(s[0], 'numpy.ndarray shape', ctx),
      s[2] === true,
      ctx,
    );
  }
}

function reconstruct(args: PyTuple, ctx: PickleContext): PyValue {
  const cls = args[0];
  if (!(cls instanceof PyGlobalRef) || cls.name !== 'ndarray') {
    ctx.fail(`numpy _reconstruct: only numpy.ndarray can be reconstructed, found ${describe(cls)}`);
  }
  return new PickledNdArray();
}

function makeDtype(args: PyTuple, ctx: PickleContext): PyValue {
  if (typeof args[0] !== 'string')
    ctx.fail(`numpy.dtype: expected a type string, found ${describe(args[0])}`);
  try {
    return new PickledDtype(parseDescr(args[0] as string, 'numpy.dtype'));
  } catch (err) {
    return ctx.fail((err as Error).message);
  }
}

function scalar(args: PyTuple, ctx: PickleContext): PyValue {
  const dtype = asDtype(args[0], 'numpy scalar', ctx);
  const bytes = asBytes(args[1] ?? null, 'numpy scalar data', ctx);
  const arr = decodeIn(ctx, bytes, dtype, [1], false);
  const v = arr.data[0];
  if (arr.dtype === 'bool') return v !== 0;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  return v;
}

function frombuffer(args: PyTuple, ctx: PickleContext): PyValue {
  const [buf, dtype, shape, order] = args;
  const arr = new PickledNdArray();
  arr.fill(
    asBytes(buf, 'numpy _frombuffer data', ctx),
    asDtype(dtype, 'numpy _frombuffer dtype', ctx),
    asShape(shape, 'numpy _frombuffer shape', ctx),
    order === 'F',
    ctx,
  );
  return arr;
}

function setOf(args: PyTuple, ctx: PickleContext): PyValue {
  const items = args[0] ?? [];
  if (!Array.isArray(items)) return ctx.fail(`set(): expected a list, found ${describe(items)}`);
  return new Set<PyValue>(items);
}

/** Plain-Python globals that protocol-2 pickles use for sets and bytes (`_codecs.encode(s, 'latin1')`). */
export const BUILTIN_GLOBALS: PickleGlobals = {
  '_codecs.encode': {
    reduce: (args, ctx) => {
      const [s, enc] = args;
      if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) {
        return ctx.fail(
          `_codecs.encode: only (str, 'latin1') is allowed, found (${describe(s)}, ${String(enc)})`,
        );
      }
      return latin1Bytes(s, ctx);
    },
  },
  'builtins.set': { reduce: setOf },
  'builtins.frozenset': { reduce: setOf },
  'builtins.bytearray': {
    reduce: (args, ctx) => (args.length === 0 ? new Uint8Array(0) : asBytes(args[0], 'bytearray', ctx)),
  },
};

const ndarrayGlobal: PickleGlobal = {};

/** numpy arrays, dtypes and scalars (numpy 1 `numpy.core.*` and numpy 2 `numpy._core.*`) + builtins. */
export const NUMPY_GLOBALS: PickleGlobals = {
  ...BUILTIN_GLOBALS,
  'numpy.ndarray': ndarrayGlobal,
  'numpy.dtype': { reduce: makeDtype },
  'numpy.core.multiarray._reconstruct': { reduce: reconstruct },
  'numpy._core.multiarray._reconstruct': { reduce: reconstruct },
  'numpy.core.multiarray.scalar': { reduce: scalar },
  'numpy._core.multiarray.scalar': { reduce: scalar },
  'numpy.core.numeric._frombuffer': { reduce: frombuffer },
  'numpy._core.numeric._frombuffer': { reduce: frombuffer },
};

// ---------------------------------------------------------------------------------------------------
// the virtual machine

const MARK = Symbol('mark');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads a pickle file with `parsePickle`. A missing file is E_DATA_LAYOUT. */
export async function loadPickle(path: string, options: PickleOptions = {}): Promise<PyValue> {
  await refuseSpecialFile(path, 'E_PICKLE');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new McoreError(
      code === 'ENOENT' ? 'E_DATA_LAYOUT' : 'E_PICKLE',
      `${path}: cannot read pickle file (${code ?? String(err)})`,
    );
  }
  return parsePickle(bytes, { ...options, name: options.name ?? path });
}

/**
 * Runs the pickle in `bytes` and returns the unpickled value. Throws McoreError('E_PICKLE') naming
 * the file and byte offset for forbidden globals, truncated or corrupted data and unsupported opcodes.
 */
export function parsePickle(input: Uint8Array, options: PickleOptions = {}): PyValue {
  // a plain Uint8Array view, so that slice() copies even when `input` is a Node Buffer
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const file = options.name ?? '<buffer>';
  const globals = options.globals ?? NUMPY_GLOBALS;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: (PyValue | typeof MARK)[] = [];
  const memo = new Map<number, PyValue>();
  const limits = resolveLimits(options.limits);
  const budget = options.budget ?? new DecodeBudget(file, 'E_PICKLE', limits, bytes.length);
  let pos = 0;
  let opPos = 0;
  let op = 0;

  const fail = (message: string): never => {
    throw new McoreError('E_PICKLE', `${file}: ${message} (at byte ${opPos})`);
  };
  const ctx: PickleContext = {
    file,
    get offset() {
      return opPos;
    },
    fail,
    charge: (n, what) => budget.charge(n, what),
  };
  const need = (n: number): void => {
    if (n > bytes.length - pos) {
      throw new McoreError(
        'E_PICKLE',
        `${file}: truncated pickle: opcode 0x${op.toString(16)} at byte ${opPos} needs ${n} more bytes but the data ends at byte ${bytes.length}`,
      );
    }
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++];
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) need(Number.MAX_SAFE_INTEGER);
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const text = (n: number): string => {
    try {
      return utf8.decode(take(n));
    } catch (err) {
      if (err instanceof McoreError) throw err;
      return fail('invalid UTF-8 in a string');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) need(bytes.length - pos + 1);
    const s = Buffer.from(bytes.subarray(pos, end)).toString('latin1');
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) return fail('corrupted pickle: stack underflow');
    if (v === MARK) return fail('corrupted pickle: unexpected MARK');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail('corrupted pickle: stack underflow');
    return v;
  };
  const popMark = (): PyValue[] => {
    let i = stack.length - 1;
    while (i >= 0 && stack[i] !== MARK) i--;
    if (i < 0) fail('corrupted pickle: no MARK on the stack');
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const tuple = (items: PyValue[]): PyTuple => Object.freeze(items);
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`corrupted pickle: memo entry ${i} is missing`);
    return memo.get(i) as PyValue;
  };
  const resolveGlobal = (module: string, name: string): PyGlobalRef => {
    const qualified = `${module}.${name}`;
    const impl = Object.hasOwn(globals, qualified) ? globals[qualified] : undefined;
    if (impl === undefined) {
      return fail(
        `forbidden global '${qualified}': only allow-listed globals are loaded (${Object.keys(globals).length} allowed); ` +
          'if this file is trusted and needs it, add a constructor for it to the allow-list',
      );
    }
    return new PyGlobalRef(module, name, impl);
  };
  const call = (fn: PyValue, args: PyValue, how: 'reduce' | 'newobj'): PyValue => {
    if (!(fn instanceof PyGlobalRef)) return fail(`${how.toUpperCase()} on ${describe(fn)}, not a global`);
    if (!isTuple(args))
      return fail(`${how.toUpperCase()} of ${fn.qualifiedName}: arguments are ${describe(args)}`);
    const impl = fn.impl[how];
    if (impl === undefined)
      return fail(`global '${fn.qualifiedName}' cannot be called by ${how.toUpperCase()}`);
    try {
      return impl(args, ctx);
    } catch (err) {
      if (err instanceof McoreError) throw err;
      return fail(`${fn.qualifiedName}: ${(err as Error).message}`);
    }
  };
  const setItems = (target: PyValue, kv: PyValue[]): void => {
    if (!(target instanceof PyDict)) fail(`SETITEMS on ${describe(target)}, not a dict`);
    if (kv.length % 2 !== 0) fail('corrupted pickle: odd number of items for SETITEMS');
    const d = target as PyDict;
    for (let i = 0; i < kv.length; i += 2) {
      try {
        d.set(kv[i], kv[i + 1]);
      } catch (err) {
        fail((err as Error).message);
      }
    }
  };
  const appendItems = (target: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(target) || isTuple(target)) fail(`APPENDS on ${describe(target)}, not a list`);
    for (const it of items) (target as PyValue[]).push(it);
  };
  const addItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof Set)) fail(`ADDITEMS on ${describe(target)}, not a set`);
    for (const it of items) (target as Set<PyValue>).add(it);
  };
  const toInt = (v: bigint): number | bigint => (Number.isSafeInteger(Number(v)) ? Number(v) : v);
  const long = (n: number): number | bigint => {
    const b = take(n);
    if (n === 0) return 0;
    // little-endian two's complement; through hex, linear in n (shifting a BigInt per byte is quadratic)
    let v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
    if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return toInt(v);
  };

  for (;;) {
    opPos = pos;
    if (pos >= bytes.length) {
      throw new McoreError(
        'E_PICKLE',
        `${file}: truncated pickle: the data ends at byte ${bytes.length} before the STOP opcode`,
      );
    }
    op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unsupported pickle protocol (newer than 5)');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: {
        // STOP
        const v = pop();
        checkTree(v, limits, fail);
        return v;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.pop() === undefined) fail('corrupted pickle: stack underflow');
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        need(2);
        stack.push(view.getUint16(pos, true));
        pos += 2;
        break;
      case 0x8a: // LONG1
        stack.push(long(u8()));
        break;
      case 0x8b: {
        // LONG4
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) fail('corrupted pickle: negative LONG4 length');
        stack.push(long(n));
        break;
      }
      case 0x47: // BINFLOAT (big endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()).slice());
        break;
      case 0x54: // BINSTRING (Python 2 str, read as latin-1)
        stack.push(Buffer.from(take(u32())).toString('latin1'));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(Buffer.from(take(u8())).toString('latin1'));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set<PyValue>());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        addItems(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set<PyValue>(popMark()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL 'module\nname\n'
        const module = line();
        const name = line();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          fail('corrupted pickle: STACK_GLOBAL needs two strings');
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args, 'reduce'));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args, 'newobj'));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof PyDict) || kwargs.size > 0)
          fail('NEWOBJ_EX with keyword arguments is not supported');
        stack.push(call(cls, args, 'newobj'));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj === null || typeof obj !== 'object' || !(PY_SETSTATE in obj)) {
          fail(`BUILD on ${describe(obj)}, which takes no state`);
        }
        try {
          (obj as unknown as PySettable)[PY_SETSTATE](state, ctx);
        } catch (err) {
          if (err instanceof McoreError) throw err;
          fail(`BUILD of ${describe(obj)}: ${(err as Error).message}`);
        }
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        const load = options.persistentLoad;
        if (load === undefined) return fail('persistent id found but no persistentLoad hook was given');
        try {
          stack.push(load(pid, ctx));
        } catch (err) {
          if (err instanceof McoreError) throw err;
          fail(`persistentLoad: ${(err as Error).message}`);
        }
        break;
      }
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        fail('out-of-band buffers (pickle protocol 5 buffer_callback) are not supported');
        break;
      default:
        fail(
          `unsupported or corrupt opcode 0x${op.toString(16).padStart(2, '0')}` +
            ' (only binary pickles of protocol 2-5 holding data and numpy arrays are read)',
        );
    }
  }
}

/** The containers below `v` (dict keys and values, list and tuple items, set members). */
function childrenOf(v: PyValue): readonly PyValue[] | undefined {
  if (Array.isArray(v)) return v as readonly PyValue[];
  if (v instanceof PyDict) {
    const out: PyValue[] = [];
    for (const [k, x] of v) out.push(k, x);
    return out;
  }
  if (v instanceof Set) return [...v];
  return undefined;
}

/**
 * Checks the unpickled value against the limits (./limits.ts) without recursion: its depth, its size
 * expanded as a tree (a sub-structure shared through the memo counts once per use, so a "billion
 * laughs" pickle of a few KB is refused instead of hanging whoever walks it) and reference cycles (a
 * dict that holds itself), which no reader here expects. Each container is visited once.
 */
function checkTree(root: PyValue, limits: ReadLimits, fail: (message: string) => never): void {
  const { maxDepth, maxObjects } = limits;
  const sizes = new Map<object, number>();
  const heights = new Map<object, number>();
  const open = new Set<object>();
  interface Frame {
    node: object;
    children: readonly PyValue[];
    next: number;
    size: number;
    height: number;
  }
  const frames: Frame[] = [];
  const tooMany = (): never =>
    fail(
      `the unpickled value expands to more than ${maxObjects} objects (a sub-structure shared through the memo ` +
        `counts once per use; ${limitHint('maxObjects', maxObjects)})`,
    );
  const tooDeep = (): never =>
    fail(`the unpickled value is nested deeper than ${maxDepth} levels (${limitHint('maxDepth', maxDepth)})`);
  // size and height of the value `enter` looked at, unless it opened a frame for it
  let size = 1;
  let height = 0;
  /** True after opening a frame for a new container; else `size` and `height` describe `v`. */
  const enter = (v: PyValue): boolean => {
    size = 1;
    height = 0;
    if (v === null || typeof v !== 'object') return false;
    const known = sizes.get(v);
    if (known !== undefined) {
      size = known;
      height = heights.get(v) as number;
      return false;
    }
    if (open.has(v))
      fail('the unpickled value contains itself (a reference cycle), which mcore does not read');
    const children = childrenOf(v);
    if (children === undefined) return false;
    if (children.length === 0) {
      height = 1;
      return false;
    }
    if (frames.length + 1 > maxDepth) tooDeep();
    open.add(v);
    frames.push({ node: v, children, next: 0, size: 1, height: 1 });
    return true;
  };
  const account = (): void => {
    const f = frames[frames.length - 1];
    f.size += size;
    if (f.size > maxObjects) tooMany();
    if (height + 1 > f.height) {
      f.height = height + 1;
      if (frames.length - 1 + f.height > maxDepth) tooDeep();
    }
  };
  if (!enter(root)) return;
  while (frames.length > 0) {
    const f = frames[frames.length - 1];
    if (f.next < f.children.length) {
      const child = f.children[f.next++];
      if (child === null || typeof child !== 'object') {
        // a leaf: one node, no height
        if (++f.size > maxObjects) tooMany();
      } else if (!enter(child)) account();
      continue;
    }
    frames.pop();
    open.delete(f.node);
    sizes.set(f.node, f.size);
    heights.set(f.node, f.height);
    size = f.size;
    height = f.height;
    if (frames.length > 0) account();
  }
}
