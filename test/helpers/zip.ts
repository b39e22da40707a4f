/**
 * A minimal zip writer for tests, independent of the reader in src/io/torch.ts: stored members, or
 * deflated ones whose declared size may lie (inflate bombs), optionally with zip64 records.
 */
import { crc32 } from '../../src/io/zip.ts';

export interface Member {
  name: string;
  /** The member's (uncompressed) bytes; stored as they are unless `deflated` is given. */
  data: Uint8Array;
  /**
   * Method-8 (deflate) bytes to store instead of `data`; the directory then declares `declaredSize`
   * (default data.length) as the uncompressed size and the CRC of `data`.
   */
  deflated?: Uint8Array;
  declaredSize?: number;
}

export function zip(members: Member[], opts: { zip64?: boolean } = {}): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = enc.encode(m.name);
    const stored = m.deflated ?? m.data;
    const size = m.declaredSize ?? m.data.length;
    const method = m.deflated ? 8 : 0;
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc32(m.data), true);
    lv.setUint32(18, stored.length, true);
    lv.setUint32(22, size >>> 0, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const extra = opts.zip64 ? new Uint8Array(4 + 24) : new Uint8Array(0);
    if (opts.zip64) {
      const ev = new DataView(extra.buffer);
      ev.setUint16(0, 0x0001, true);
      ev.setUint16(2, 24, true);
      ev.setBigUint64(4, BigInt(size), true);
      ev.setBigUint64(12, BigInt(stored.length), true);
      ev.setBigUint64(20, BigInt(offset), true);
    }
    const c = new Uint8Array(46 + name.length + extra.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc32(m.data), true);
    cv.setUint32(20, opts.zip64 ? 0xffffffff : stored.length, true);
    cv.setUint32(24, opts.zip64 ? 0xffffffff : size, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extra.length, true);
    cv.setUint32(42, opts.zip64 ? 0xffffffff : offset, true);
    c.set(name, 46);
    c.set(extra, 46 + name.length);
    central.push(c);
    chunks.push(local, stored);
    offset += local.length + stored.length;
  }
  const dirOffset = offset;
  const dirSize = central.reduce((a, c) => a + c.length, 0);
  const tail: Uint8Array[] = [];
  if (opts.zip64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setBigUint64(24, BigInt(members.length), true);
    rv.setBigUint64(32, BigInt(members.length), true);
    rv.setBigUint64(40, BigInt(dirSize), true);
    rv.setBigUint64(48, BigInt(dirOffset), true);
    const loc = new Uint8Array(20);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x07064b50, true);
    lv.setBigUint64(8, BigInt(dirOffset + dirSize), true);
    lv.setUint32(16, 1, true);
    tail.push(rec, loc);
  }
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, opts.zip64 ? 0xffff : members.length, true);
  ev.setUint16(10, opts.zip64 ? 0xffff : members.length, true);
  ev.setUint32(12, opts.zip64 ? 0xffffffff : dirSize, true);
  ev.setUint32(16, opts.zip64 ? 0xffffffff : dirOffset, true);
  const parts = [...chunks, ...central, ...tail, eocd];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
