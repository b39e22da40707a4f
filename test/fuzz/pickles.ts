/**
 * Hostile pickles, written opcode by opcode for each protocol 0-5 (no Python needed): code-execution
 * payloads through every way to name a global, "billion laughs" memo expansion, nesting 10^5 deep,
 * values that contain themselves, exponential dict keys, lying lengths, out-of-band buffers and numpy
 * arrays that decode to far more than the file holds.
 */

/** Builds a pickle for one protocol: protocol 0 text opcodes where it has them, binary ones from 1. */
export class PickleWriter {
  readonly #out: number[] = [];
  #memo = 0;
  constructor(readonly protocol: number) {}

  op(...bytes: number[]): this {
    for (const b of bytes) this.#out.push(b);
    return this;
  }
  text(s: string): this {
    for (let i = 0; i < s.length; i++) this.#out.push(s.charCodeAt(i) & 0xff);
    return this;
  }
  u32(n: number): this {
    return this.op(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  u64(n: bigint): this {
    for (let i = 0n; i < 8n; i++) this.#out.push(Number((n >> (8n * i)) & 0xffn));
    return this;
  }
  /** PROTO n (protocol >= 2). */
  start(): this {
    if (this.protocol >= 2) this.op(0x80, this.protocol);
    return this;
  }
  str(s: string): this {
    const bytes = Buffer.from(s, 'utf8');
    if (this.protocol === 0) return this.text(`S'${s}'\n`); // STRING: text protocol
    if (this.protocol >= 4 && bytes.length < 256) return this.op(0x8c, bytes.length, ...bytes); // SHORT_BINUNICODE
    return this.op(0x58)
      .u32(bytes.length)
      .op(...bytes); // BINUNICODE
  }
  global(module: string, name: string): this {
    if (this.protocol >= 4) return this.str(module).str(name).op(0x93); // STACK_GLOBAL
    return this.text(`c${module}\n${name}\n`); // GLOBAL
  }
  /** Memoises the top of the stack; returns its index through `at`. */
  put(at?: (i: number) => void): this {
    const i = this.#memo++;
    at?.(i);
    if (this.protocol >= 4) return this.op(0x94); // MEMOIZE
    if (this.protocol === 0) return this.text(`p${i}\n`); // PUT
    return i < 256 ? this.op(0x71, i) : this.op(0x72).u32(i); // BINPUT / LONG_BINPUT
  }
  get(i: number): this {
    if (this.protocol === 0) return this.text(`g${i}\n`);
    return i < 256 ? this.op(0x68, i) : this.op(0x6a).u32(i); // BINGET / LONG_BINGET
  }
  mark(): this {
    return this.op(0x28);
  }
  emptyList(): this {
    return this.protocol === 0 ? this.mark().op(0x6c) : this.op(0x5d); // (l or ]
  }
  emptyDict(): this {
    return this.protocol === 0 ? this.mark().op(0x64) : this.op(0x7d); // (d or }
  }
  /** A tuple of the items since the last mark. */
  tuple(): this {
    return this.op(0x74);
  }
  stop(): Uint8Array {
    this.op(0x2e);
    if (this.protocol < 4) return Uint8Array.from(this.#out);
    // protocol 4+: one FRAME after PROTO holding the rest, as Python writes it
    const body = this.#out.slice(2);
    const head = [...this.#out.slice(0, 2), 0x95];
    const len = BigInt(body.length);
    for (let i = 0n; i < 8n; i++) head.push(Number((len >> (8n * i)) & 0xffn));
    return Uint8Array.from([...head, ...body]);
  }
}

export const PROTOCOLS = [0, 1, 2, 3, 4, 5] as const;

/** Globals that would run code or touch the system if a reader resolved them. */
export const DANGEROUS_GLOBALS: readonly [string, string][] = [
  ['os', 'system'],
  ['posix', 'system'],
  ['nt', 'system'],
  ['subprocess', 'Popen'],
  ['builtins', 'eval'],
  ['builtins', 'exec'],
  ['builtins', '__import__'],
  ['builtins', 'getattr'],
  ['__builtin__', 'eval'],
  ['shutil', 'rmtree'],
  ['runpy', '_run_code'],
  ['torch', 'load'],
];

/** `module.name('touch <marker>')` through REDUCE: refused at the global, so the marker never appears. */
export function reducePayload(protocol: number, module: string, name: string, marker: string): Uint8Array {
  return new PickleWriter(protocol)
    .start()
    .global(module, name)
    .mark()
    .str(`touch ${marker}`)
    .tuple()
    .op(0x52) // REDUCE
    .stop();
}

/**
 * "Billion laughs": level 0 a list of ten strings, level i a list of ten references to level i-1
 * (through the memo), `levels` deep: ~30 bytes a level, 10^levels nodes when expanded.
 */
export function billionLaughs(protocol: number, levels = 30): Uint8Array {
  const w = new PickleWriter(protocol).start();
  let prev = -1;
  w.emptyList().put((i) => {
    prev = i;
  });
  w.mark();
  for (let k = 0; k < 10; k++) w.str('lol');
  w.op(0x65).op(0x30); // APPENDS, POP (kept in the memo)
  for (let level = 1; level < levels; level++) {
    let cur = -1;
    w.emptyList().put((i) => {
      cur = i;
    });
    w.mark();
    for (let k = 0; k < 10; k++) w.get(prev);
    w.op(0x65).op(0x30);
    prev = cur;
  }
  return w.get(prev).stop();
}

/** Lists nested `depth` deep: `depth` empty lists, then each appended to the one below. */
export function deepLists(protocol: number, depth = 100_000): Uint8Array {
  const w = new PickleWriter(protocol).start();
  if (protocol === 0) {
    for (let i = 0; i < depth; i++) w.mark();
    for (let i = 0; i < depth; i++) w.op(0x6c); // LIST: each wraps the one above
    return w.stop();
  }
  for (let i = 0; i < depth; i++) w.op(0x5d);
  for (let i = 1; i < depth; i++) w.op(0x61); // APPEND
  return w.stop();
}

/** A tuple nested `depth` deep (TUPLE1 over and over), used as a dict key when `asKey`. */
export function deepTuple(protocol: number, depth = 100_000, asKey = false): Uint8Array {
  const w = new PickleWriter(protocol).start();
  if (asKey) w.emptyDict();
  w.op(0x29); // EMPTY_TUPLE
  for (let i = 0; i < depth; i++) w.op(0x85); // TUPLE1
  if (asKey) w.op(0x4e, 0x73); // NONE, SETITEM
  return w.stop();
}

/** A dict that holds itself under 'self' (d['self'] = d). */
export function selfDict(protocol: number): Uint8Array {
  let at = 0;
  const w = new PickleWriter(protocol)
    .start()
    .emptyDict()
    .put((i) => {
      at = i;
    });
  return w.str('self').get(at).op(0x73).stop(); // SETITEM
}

/** A list that holds itself (l.append(l)). */
export function selfList(protocol: number): Uint8Array {
  let at = 0;
  const w = new PickleWriter(protocol)
    .start()
    .emptyList()
    .put((i) => {
      at = i;
    });
  return w.get(at).op(0x61).stop();
}

/** t_0 = ('a',), t_i = (t_{i-1}, t_{i-1}) shared through the memo, 64 levels, used as a dict key. */
export function exponentialKey(protocol: number, levels = 64): Uint8Array {
  const w = new PickleWriter(protocol).start().emptyDict();
  let prev = 0;
  w.mark()
    .str('a')
    .tuple()
    .put((i) => {
      prev = i;
    });
  for (let level = 1; level < levels; level++) {
    w.op(0x30) // POP the previous level (it stays in the memo)
      .mark()
      .get(prev)
      .get(prev)
      .tuple()
      .put((i) => {
        prev = i;
      });
  }
  return w.op(0x4e, 0x73).stop(); // NONE, SETITEM
}

/** Dicts shared exponentially: d_i = {'a': d_{i-1}, 'b': d_{i-1}}, `levels` deep (torch's data.pkl). */
export function sharedDicts(protocol: number, levels = 40): Uint8Array {
  const w = new PickleWriter(protocol).start();
  let prev = 0;
  w.emptyDict().put((i) => {
    prev = i;
  });
  for (let level = 1; level < levels; level++) {
    let cur = 0;
    w.op(0x30) // POP the previous level (it stays in the memo)
      .emptyDict()
      .put((i) => {
        cur = i;
      })
      .mark()
      .str('a')
      .get(prev)
      .str('b')
      .get(prev)
      .op(0x75); // SETITEMS
    prev = cur;
  }
  return w.stop();
}

/**
 * `_frombuffer(buf, dtype('f8'), (n,), 'C')` repeated `copies` times over one memoised buffer of
 * `bytes` bytes: each copy decodes the whole buffer again (protocol >= 3 for BINBYTES).
 */
export function frombufferAmplification(protocol: number, bytes: number, copies: number): Uint8Array {
  const w = new PickleWriter(protocol).start();
  let buf = 0;
  let dtype = 0;
  w.op(0x42).u32(bytes); // BINBYTES
  for (let i = 0; i < bytes; i++) w.op(0);
  w.put((i) => {
    buf = i;
  }).op(0x30);
  w.global('numpy', 'dtype')
    .mark()
    .str('f8')
    .tuple()
    .op(0x52)
    .put((i) => {
      dtype = i;
    });
  w.op(0x30).emptyList().mark();
  for (let c = 0; c < copies; c++) {
    w.global('numpy._core.numeric', '_frombuffer')
      .mark()
      .get(buf)
      .get(dtype)
      .mark()
      .op(0x4a)
      .u32(bytes / 8)
      .tuple()
      .str('C')
      .tuple()
      .op(0x52);
  }
  return w.op(0x65).stop();
}
