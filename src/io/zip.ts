/**
 * Reading zip archives in memory, as torch.save writes them (./torch.ts): the end-of-central-directory
 * record (zip64 too), the central directory, local headers, members stored or deflated. Every problem is
 * McoreError('E_WEIGHTS') naming the file. Bounded: a directory that declares more entries than it can
 * hold is refused, and a deflated member inflates at most to its declared size, charged first against
 * the caller's decoded-bytes budget (./limits.ts).
 *
 * Written here rather than taken from npm: the maintained readers (yauzl, fflate's unzip) either stream
 * from a file descriptor or inflate a member without an output cap checked against a budget before
 * allocation, which the hostile-input limits need; torch's archives use a small subset of the format.
 */
import * as zlib from 'node:zlib';
import { McoreError } from '../errors.ts';
import { DecodeBudget, resolveLimits } from './limits.ts';

function fail(file: string, message: string): never {
  throw new McoreError('E_WEIGHTS', `${file}: ${message}`);
}

/** One member of a zip archive, located by its central-directory record. */
interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  localOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE) of `bytes`: node:zlib's when the runtime has it (Node >= 20.15), else a table. */
export function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A read-only view of a zip archive in memory (central directory parsed; members read on demand). */
export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #file: string;
  /** Charged with every inflated member before it is inflated (./limits.ts). */
  readonly budget: DecodeBudget;

  constructor(bytes: Uint8Array, file: string, budget?: DecodeBudget) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#file = file;
    this.budget = budget ?? new DecodeBudget(file, 'E_WEIGHTS', resolveLimits(), bytes.length);
    this.entries = this.#readDirectory();
  }

  #damaged(what: string): never {
    return fail(
      this.#file,
      `damaged or truncated zip archive (${what}); the file is ${this.#bytes.length} bytes — download or save it again`,
    );
  }

  #u16(at: number): number {
    if (at + 2 > this.#bytes.length) this.#damaged(`record at byte ${at} runs past the end`);
    return this.#view.getUint16(at, true);
  }

  #u32(at: number): number {
    if (at + 4 > this.#bytes.length) this.#damaged(`record at byte ${at} runs past the end`);
    return this.#view.getUint32(at, true);
  }

  #u64(at: number): number {
    if (at + 8 > this.#bytes.length) this.#damaged(`record at byte ${at} runs past the end`);
    const v = this.#view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.#damaged(`64-bit field at byte ${at} is out of range`);
    return Number(v);
  }

  /** The end-of-central-directory record: the last signature within 22 + 65535 bytes of the end. */
  #findEocd(): number {
    const b = this.#bytes;
    const lowest = Math.max(0, b.length - 22 - 0xffff);
    for (let at = b.length - 22; at >= lowest; at--) {
      if (b[at] === 0x50 && b[at + 1] === 0x4b && this.#view.getUint32(at, true) === SIG_EOCD) return at;
    }
    return this.#damaged('no end-of-central-directory record');
  }

  #readDirectory(): Map<string, ZipEntry> {
    const eocd = this.#findEocd();
    let count = this.#u16(eocd + 10);
    let dirSize = this.#u32(eocd + 12);
    let dirOffset = this.#u32(eocd + 16);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      // zip64: the locator sits just before the classic record
      const loc = eocd - 20;
      if (loc < 0 || this.#u32(loc) !== SIG_EOCD64_LOCATOR) this.#damaged('zip64 locator missing');
      const rec = this.#u64(loc + 8);
      if (this.#u32(rec) !== SIG_EOCD64) this.#damaged('zip64 end-of-central-directory record missing');
      count = this.#u64(rec + 32);
      dirSize = this.#u64(rec + 40);
      dirOffset = this.#u64(rec + 48);
    }
    if (dirOffset + dirSize > this.#bytes.length) {
      this.#damaged(`central directory [${dirOffset}, ${dirOffset + dirSize}) lies beyond the end`);
    }
    const entries = new Map<string, ZipEntry>();
    // every central record takes at least 46 bytes: a count beyond that is damage, not a loop to run
    if (count > dirSize / 46)
      this.#damaged(`${count} members declared in a ${dirSize}-byte central directory`);
    let at = dirOffset;
    for (let i = 0; i < count; i++) {
      if (this.#u32(at) !== SIG_CENTRAL) this.#damaged(`central directory record ${i} has a bad signature`);
      const flags = this.#u16(at + 8);
      const method = this.#u16(at + 10);
      const crc = this.#u32(at + 16);
      let compressedSize = this.#u32(at + 20);
      let size = this.#u32(at + 24);
      const nameLen = this.#u16(at + 28);
      const extraLen = this.#u16(at + 30);
      const commentLen = this.#u16(at + 32);
      let localOffset = this.#u32(at + 42);
      const nameEnd = at + 46 + nameLen;
      if (nameEnd + extraLen > this.#bytes.length) this.#damaged(`central directory record ${i} is cut`);
      const name = new TextDecoder().decode(this.#bytes.subarray(at + 46, nameEnd));
      // zip64 extended information: the 64-bit values of the fields saturated above, in this order
      for (let x = nameEnd; x + 4 <= nameEnd + extraLen; ) {
        const id = this.#u16(x);
        const len = this.#u16(x + 2);
        if (id === 0x0001) {
          let f = x + 4;
          if (size === 0xffffffff) {
            size = this.#u64(f);
            f += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = this.#u64(f);
            f += 8;
          }
          if (localOffset === 0xffffffff) localOffset = this.#u64(f);
        }
        x += 4 + len;
      }
      if (flags & 0x1) fail(this.#file, `zip member '${name}' is encrypted`);
      entries.set(name, { name, method, crc, compressedSize, size, localOffset });
      at = nameEnd + extraLen + commentLen;
    }
    return entries;
  }

  /** The uncompressed bytes of member `name` (a view for stored members), CRC-checked. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) return fail(this.#file, `zip member '${name}' is missing`);
    if (this.#u32(e.localOffset) !== SIG_LOCAL) this.#damaged(`local header of '${name}' not found`);
    const start = e.localOffset + 30 + this.#u16(e.localOffset + 26) + this.#u16(e.localOffset + 28);
    const end = start + e.compressedSize;
    if (end > this.#bytes.length) {
      this.#damaged(`member '${name}' needs bytes [${start}, ${end})`);
    }
    const raw = this.#bytes.subarray(start, end);
    let out: Uint8Array;
    if (e.method === 0) out = raw;
    else if (e.method === 8) {
      // the output is capped at the size the directory declares, charged before inflating: a small
      // member that inflates to gigabytes (an inflate bomb) stops at its declared size
      this.budget.charge(e.size, `zip member '${name}'`);
      try {
        out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        return this.#damaged(`member '${name}' does not inflate: ${(err as Error).message}`);
      }
    } else {
      return fail(
        this.#file,
        `zip member '${name}' uses compression method ${e.method} (only stored and deflate)`,
      );
    }
    if (out.length !== e.size)
      this.#damaged(`member '${name}' has ${out.length} bytes, directory says ${e.size}`);
    if (crc32(out) !== e.crc) this.#damaged(`member '${name}' fails its CRC-32 check`);
    return out;
  }
}
