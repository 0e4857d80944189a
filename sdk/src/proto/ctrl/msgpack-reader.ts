// A msgpack reader for control messages, which arrive from other processes and are treated as
// hostile: every length is checked against the bytes left before anything is read or allocated,
// nesting is bounded, invalid UTF-8 is refused, and only MsgpackError (or nothing) comes out.
//
// Every standard type is read, so that a key a newer peer adds with any value is skipped rather
// than failing the message; values the schema cannot hold (bin, ext, floats that are not integers)
// come out as something the schema check refuses where it expects a field.

/** Malformed msgpack: the codec turns it into ERR_FERRY_PROTO_MALFORMED. */
export class MsgpackError extends Error {}

/** A control message nests two levels (a map in the message map); anything deeper is refused. */
const MAX_DEPTH = 8;
const TWO_32 = 2 ** 32;

/** What an ext value (msgpack's extension types, which control messages never use) reads as. */
export const EXT_VALUE: unique symbol = Symbol('msgpack ext');

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

let src: Uint8Array = new Uint8Array(0);
let pos = 0;
let end = 0;

/** Reads exactly one msgpack value that spans all of `bytes`. */
export function readMsgpack(bytes: Uint8Array): unknown {
  src = bytes;
  pos = 0;
  end = bytes.length;
  try {
    const v = readValue(0);
    if (pos !== end) throw new MsgpackError(`${end - pos} bytes after the value`);
    return v;
  } finally {
    // Do not keep the caller's buffer alive.
    src = new Uint8Array(0);
  }
}

function need(n: number): void {
  if (n > end - pos) throw new MsgpackError(`needs ${n} bytes at ${pos}, ${end - pos} left`);
}

function u8(): number {
  need(1);
  return src[pos++] as number;
}

function u16(): number {
  need(2);
  const v = ((src[pos] as number) << 8) | (src[pos + 1] as number);
  pos += 2;
  return v;
}

function u32(): number {
  need(4);
  const v =
    (src[pos] as number) * 0x100_0000 +
    (((src[pos + 1] as number) << 16) | ((src[pos + 2] as number) << 8) | (src[pos + 3] as number));
  pos += 4;
  return v;
}

/** A 64-bit integer as a number: above 2^53 it is inexact, which the schema refuses (not safe). */
function u64(): number {
  const hi = u32();
  return hi * TWO_32 + u32();
}

function i64(): number {
  const hi = u32();
  const lo = u32();
  return (hi >= 0x8000_0000 ? hi - TWO_32 : hi) * TWO_32 + lo;
}

function float(bytes: 4 | 8): number {
  need(bytes);
  const view = new DataView(src.buffer, src.byteOffset + pos, bytes);
  pos += bytes;
  return bytes === 4 ? view.getFloat32(0) : view.getFloat64(0);
}

function readValue(depth: number): unknown {
  const b = u8();
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b < 0x90) return readMap(b & 0x0f, depth);
  if (b < 0xa0) return readArray(b & 0x0f, depth);
  if (b < 0xc0) return readString(b & 0x1f);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBin(u8());
    case 0xc5:
      return readBin(u16());
    case 0xc6:
      return readBin(u32());
    case 0xc7:
      return skipExt(u8());
    case 0xc8:
      return skipExt(u16());
    case 0xc9:
      return skipExt(u32());
    case 0xca:
      return float(4);
    case 0xcb:
      return float(8);
    case 0xcc:
      return u8();
    case 0xcd:
      return u16();
    case 0xce:
      return u32();
    case 0xcf:
      return u64();
    case 0xd0:
      return (u8() << 24) >> 24;
    case 0xd1:
      return (u16() << 16) >> 16;
    case 0xd2:
      return u32() | 0;
    case 0xd3:
      return i64();
    case 0xd4:
      return skipExt(1);
    case 0xd5:
      return skipExt(2);
    case 0xd6:
      return skipExt(4);
    case 0xd7:
      return skipExt(8);
    case 0xd8:
      return skipExt(16);
    case 0xd9:
      return readString(u8());
    case 0xda:
      return readString(u16());
    case 0xdb:
      return readString(u32());
    case 0xdc:
      return readArray(u16(), depth);
    case 0xdd:
      return readArray(u32(), depth);
    case 0xde:
      return readMap(u16(), depth);
    case 0xdf:
      return readMap(u32(), depth);
    default:
      // 0xc1 is never used.
      throw new MsgpackError(`byte 0x${b.toString(16)} at ${pos - 1} starts no value`);
  }
}

function readString(n: number): string {
  need(n);
  const start = pos;
  pos += n;
  if (n <= 32) {
    // Short ASCII (keys, types, URIs): no decoder call.
    let s = '';
    for (let i = start; i < pos; i++) {
      const c = src[i] as number;
      if (c >= 0x80) return decodeUtf8(start, pos);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decodeUtf8(start, pos);
}

function decodeUtf8(from: number, to: number): string {
  try {
    return utf8.decode(src.subarray(from, to));
  } catch {
    throw new MsgpackError(`invalid UTF-8 in the string at ${from}`);
  }
}

// Keys repeat in every message ('t', 'id', 'session', ...): a key read as a fresh string costs a
// string-table lookup on every property store, so short keys come from a small cache keyed by
// their bytes, as the same (internalized) string each time.
const KEY_CACHE_SIZE = 256;
const KEY_MAX = 24;
const keyBytes: (Uint8Array | undefined)[] = new Array(KEY_CACHE_SIZE);
const keyStrings: string[] = new Array(KEY_CACHE_SIZE).fill('');

function readKey(depth: number): unknown {
  need(1);
  const b = src[pos] as number;
  const n = b & 0x1f;
  if ((b & 0xe0) !== 0xa0 || n > KEY_MAX) return readValue(depth + 1);
  pos++;
  need(n);
  const start = pos;
  let h = n;
  for (let i = start; i < start + n; i++) h = (h * 31 + (src[i] as number)) | 0;
  const slot = h & (KEY_CACHE_SIZE - 1);
  const cached = keyBytes[slot];
  if (cached !== undefined && cached.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (cached[i] !== src[start + i]) {
        same = false;
        break;
      }
    }
    if (same) {
      pos += n;
      return keyStrings[slot];
    }
  }
  const key = readString(n);
  keyBytes[slot] = src.slice(start, start + n);
  keyStrings[slot] = key;
  return key;
}

function readBin(n: number): Uint8Array {
  need(n);
  const out = src.slice(pos, pos + n);
  pos += n;
  return out;
}

function skipExt(n: number): typeof EXT_VALUE {
  need(n + 1); // the type byte, then the data
  pos += n + 1;
  return EXT_VALUE;
}

function readArray(n: number, depth: number): unknown[] {
  if (depth >= MAX_DEPTH) throw new MsgpackError('nested too deep');
  // Every element takes at least one byte: a declared length beyond that is refused unread.
  need(n);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(readValue(depth + 1));
  return out;
}

function readMap(n: number, depth: number): Record<string, unknown> {
  if (depth >= MAX_DEPTH) throw new MsgpackError('nested too deep');
  need(2 * n);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = readKey(depth);
    if (typeof k !== 'string') throw new MsgpackError('a map key that is not a string');
    const v = readValue(depth + 1);
    if (k === '__proto__') {
      // An own property named __proto__ (skipped by the schema check), never a prototype change.
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    } else out[k] = v;
  }
  return out;
}
