/**
 * A small pickle writer (protocol 2, what torch.save uses): the Python objects of a checkpoint built
 * as `Py` nodes and encoded the way CPython's pickler encodes them (BININT1/BININT2/BININT/LONG1 ints,
 * BINFLOAT, BINUNICODE, EMPTY_DICT + SETITEMS, EMPTY_LIST + APPENDS, TUPLE1-3, GLOBAL + REDUCE, BUILD,
 * BINPERSID). Bytes are written as protocol 2 writes them, `_codecs.encode(latin1 text, 'latin1')`.
 * Each GLOBAL is memoised once and fetched again with BINGET, so a file with thousands of tensors
 * names `torch._utils._rebuild_tensor_v2` once. ./pickle.ts reads everything written here.
 *
 * @example
 * const bytes = encodePickle(py.dict([[py.str('epoch'), py.int(3)], [py.str('lr'), py.float(1e-3)]]));
 */
import { McoreError } from '../errors.ts';

export type Py =
  | { t: 'none' }
  | { t: 'bool'; v: boolean }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'str'; v: string }
  | { t: 'bytes'; v: Uint8Array }
  | { t: 'tuple'; items: Py[] }
  | { t: 'list'; items: Py[] }
  | { t: 'dict'; entries: [Py, Py][] }
  | { t: 'global'; module: string; name: string }
  /** callable(*args): REDUCE. */
  | { t: 'reduce'; fn: Py; args: Py[] }
  /** Items set on an object made by REDUCE (how an OrderedDict pickles): obj, then MARK k v ... SETITEMS. */
  | { t: 'setitems'; obj: Py; entries: [Py, Py][] }
  /** obj.__setstate__(state) (or __dict__ update): BUILD. */
  | { t: 'build'; obj: Py; state: Py }
  /** A persistent id (torch: a storage reference): BINPERSID. */
  | { t: 'persid'; id: Py };

/** Constructors of Py nodes. */
export const py = {
  none: (): Py => ({ t: 'none' }),
  bool: (v: boolean): Py => ({ t: 'bool', v }),
  int: (v: number | bigint): Py => {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) {
      throw new McoreError('E_SHAPE', `pickle: ${v} is not an integer`);
    }
    return { t: 'int', v: BigInt(v) };
  },
  float: (v: number): Py => ({ t: 'float', v }),
  str: (v: string): Py => ({ t: 'str', v }),
  bytes: (v: Uint8Array): Py => ({ t: 'bytes', v }),
  tuple: (...items: Py[]): Py => ({ t: 'tuple', items }),
  list: (items: Py[]): Py => ({ t: 'list', items }),
  dict: (entries: [Py, Py][]): Py => ({ t: 'dict', entries }),
  /** A dict with string keys, in the given order. */
  strDict: (entries: [string, Py][]): Py => ({ t: 'dict', entries: entries.map(([k, v]) => [py.str(k), v]) }),
  global: (module: string, name: string): Py => ({ t: 'global', module, name }),
  reduce: (fn: Py, ...args: Py[]): Py => ({ t: 'reduce', fn, args }),
  setitems: (obj: Py, entries: [Py, Py][]): Py => ({ t: 'setitems', obj, entries }),
  build: (obj: Py, state: Py): Py => ({ t: 'build', obj, state }),
  persid: (id: Py): Py => ({ t: 'persid', id }),
};

const BATCH = 1000;

class Out {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(1 << 16);
  private at = 0;
  private readonly enc = new TextEncoder();

  byte(b: number): void {
    if (this.at === this.buf.length) this.flush();
    this.buf[this.at++] = b;
  }
  bytes(b: Uint8Array): void {
    if (b.length > this.buf.length - this.at) {
      this.flush();
      if (b.length > this.buf.length) {
        this.chunks.push(b.slice());
        return;
      }
    }
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  ascii(s: string): void {
    this.bytes(this.enc.encode(s));
  }
  utf8(s: string): Uint8Array {
    return this.enc.encode(s);
  }
  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    this.bytes(b);
  }
  i32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n, true);
    this.bytes(b);
  }
  f64be(x: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    this.bytes(b);
  }
  private flush(): void {
    if (this.at > 0) this.chunks.push(this.buf.slice(0, this.at));
    this.at = 0;
  }
  result(): Uint8Array {
    this.flush();
    const total = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** Two's complement little-endian bytes of `v`, as pickle's LONG1 (minimal length). */
function longBytes(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const sign = out[out.length - 1] & 0x80;
    if ((x === 0n && !sign) || (x === -1n && sign)) break;
  }
  return Uint8Array.from(out);
}

/** Encodes `root` as a protocol-2 pickle. */
export function encodePickle(root: Py): Uint8Array {
  const out = new Out();
  const memo = new Map<string, number>();
  const put = (i: number) => {
    if (i < 256) {
      out.byte(0x71); // BINPUT
      out.byte(i);
    } else {
      out.byte(0x72); // LONG_BINPUT
      out.u32(i);
    }
  };
  const get = (i: number) => {
    if (i < 256) {
      out.byte(0x68); // BINGET
      out.byte(i);
    } else {
      out.byte(0x6a); // LONG_BINGET
      out.u32(i);
    }
  };
  const str = (s: string) => {
    const b = out.utf8(s);
    out.byte(0x58); // BINUNICODE
    out.u32(b.length);
    out.bytes(b);
  };
  const write = (v: Py): void => {
    switch (v.t) {
      case 'none':
        out.byte(0x4e);
        return;
      case 'bool':
        out.byte(v.v ? 0x88 : 0x89);
        return;
      case 'int': {
        const n = v.v;
        if (n >= 0n && n < 256n) {
          out.byte(0x4b); // BININT1
          out.byte(Number(n));
        } else if (n >= 0n && n < 65536n) {
          out.byte(0x4d); // BININT2
          out.byte(Number(n) & 0xff);
          out.byte(Number(n) >> 8);
        } else if (n >= -(2n ** 31n) && n < 2n ** 31n) {
          out.byte(0x4a); // BININT
          out.i32(Number(n));
        } else {
          const b = longBytes(n);
          out.byte(0x8a); // LONG1
          out.byte(b.length);
          out.bytes(b);
        }
        return;
      }
      case 'float':
        out.byte(0x47); // BINFLOAT
        out.f64be(v.v);
        return;
      case 'str':
        str(v.v);
        return;
      case 'bytes': {
        // Protocol 2 has no bytes opcode: _codecs.encode(text whose code points are the bytes, 'latin1').
        let text = '';
        for (const b of v.v) text += String.fromCharCode(b);
        write(py.reduce(py.global('_codecs', 'encode'), py.str(text), py.str('latin1')));
        return;
      }
      case 'tuple': {
        const n = v.items.length;
        if (n === 0) {
          out.byte(0x29); // EMPTY_TUPLE
          return;
        }
        if (n > 3) out.byte(0x28); // MARK
        for (const x of v.items) write(x);
        out.byte(n === 1 ? 0x85 : n === 2 ? 0x86 : n === 3 ? 0x87 : 0x74); // TUPLE1-3 / TUPLE
        return;
      }
      case 'list':
        out.byte(0x5d); // EMPTY_LIST
        for (let i = 0; i < v.items.length; i += BATCH) {
          out.byte(0x28);
          for (const x of v.items.slice(i, i + BATCH)) write(x);
          out.byte(0x65); // APPENDS
        }
        return;
      case 'dict':
      case 'setitems':
        if (v.t === 'dict')
          out.byte(0x7d); // EMPTY_DICT
        else write(v.obj);
        for (let i = 0; i < v.entries.length; i += BATCH) {
          out.byte(0x28);
          for (const [k, x] of v.entries.slice(i, i + BATCH)) {
            write(k);
            write(x);
          }
          out.byte(0x75); // SETITEMS
        }
        return;
      case 'global': {
        const key = `${v.module}\n${v.name}`;
        const known = memo.get(key);
        if (known !== undefined) {
          get(known);
          return;
        }
        out.byte(0x63); // GLOBAL
        out.ascii(`${key}\n`);
        const i = memo.size;
        memo.set(key, i);
        put(i);
        return;
      }
      case 'reduce':
        write(v.fn);
        write(py.tuple(...v.args));
        out.byte(0x52); // REDUCE
        return;
      case 'build':
        write(v.obj);
        write(v.state);
        out.byte(0x62); // BUILD
        return;
      case 'persid':
        write(v.id);
        out.byte(0x51); // BINPERSID
        return;
    }
  };
  out.byte(0x80); // PROTO 2
  out.byte(2);
  write(root);
  out.byte(0x2e); // STOP
  return out.result();
}
