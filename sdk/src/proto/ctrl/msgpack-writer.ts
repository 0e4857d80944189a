// A msgpack writer for the values a checked control message holds: maps with string keys, strings,
// integers, booleans, nil and arrays. Always the smallest form of each (fixint, fixstr, fixmap, ...),
// which is what msgpackr writes for these values too, so the golden fixtures hold either way. A
// control message is encoded on every request, reply and notice: a general encoder spends most of
// its time on type dispatch and options this subset never needs.

const SCRATCH_START = 1024;
const TWO_32 = 2 ** 32;

let buf = new Uint8Array(SCRATCH_START);
let view = new DataView(buf.buffer);
let pos = 0;
const utf8 = new TextEncoder();

/**
 * Encodes `value` into a scratch buffer and returns a view of it, valid until the next call: a
 * caller that sends the bytes at once (sendmsg copies them) then pays for no new ArrayBuffer, whose
 * allocation costs more than encoding a control message. Copy the view to keep it.
 */
export function writeMsgpack(value: unknown): Uint8Array {
  pos = 0;
  writeValue(value);
  return buf.subarray(0, pos);
}

function room(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  view = new DataView(buf.buffer);
}

function writeValue(v: unknown): void {
  switch (typeof v) {
    case 'string':
      writeString(v);
      return;
    case 'number':
      writeInteger(v);
      return;
    case 'boolean':
      room(1);
      buf[pos++] = v ? 0xc3 : 0xc2;
      return;
    case 'object':
      if (v === null) {
        room(1);
        buf[pos++] = 0xc0;
      } else if (Array.isArray(v)) writeArray(v);
      else writeMap(v as Record<string, unknown>);
      return;
    default:
      // The schema check runs first and lets nothing else through: reaching this is a bug.
      throw new TypeError(`cannot encode a ${typeof v} in a control message`);
  }
}

function writeInteger(n: number): void {
  room(9);
  if (!Number.isSafeInteger(n)) throw new TypeError('control messages hold only safe integers');
  if (n >= 0) {
    if (n < 0x80) buf[pos++] = n;
    else if (n < 0x100) {
      buf[pos++] = 0xcc;
      buf[pos++] = n;
    } else if (n < 0x10000) {
      buf[pos++] = 0xcd;
      view.setUint16(pos, n);
      pos += 2;
    } else if (n < TWO_32) {
      buf[pos++] = 0xce;
      view.setUint32(pos, n);
      pos += 4;
    } else {
      // int64, as msgpackr writes a bigint (and as ferryd's peers read sizes above 2^32).
      buf[pos++] = 0xd3;
      view.setUint32(pos, Math.floor(n / TWO_32));
      view.setUint32(pos + 4, n >>> 0);
      pos += 8;
    }
    return;
  }
  if (n >= -0x20) buf[pos++] = 0x100 + n;
  else if (n >= -0x80) {
    buf[pos++] = 0xd0;
    buf[pos++] = n + 0x100;
  } else if (n >= -0x8000) {
    buf[pos++] = 0xd1;
    view.setInt16(pos, n);
    pos += 2;
  } else if (n >= -0x8000_0000) {
    buf[pos++] = 0xd2;
    view.setInt32(pos, n);
    pos += 4;
  } else {
    buf[pos++] = 0xd3;
    view.setBigInt64(pos, BigInt(n));
    pos += 8;
  }
}

function writeString(s: string): void {
  const len = s.length;
  // Header sized for the worst case (3 bytes per UTF-16 unit), moved down once the length is known.
  const max = len * 3;
  const header = max < 0x20 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
  room(header + max);
  const start = pos + header;
  let end = start;
  let ascii = true;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    buf[end++] = c;
  }
  if (!ascii) end = start + utf8.encodeInto(s, buf.subarray(start)).written;
  const n = end - start;
  const need = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  if (need < header) buf.copyWithin(pos + need, start, end);
  if (need === 1) buf[pos] = 0xa0 | n;
  else if (need === 2) {
    buf[pos] = 0xd9;
    buf[pos + 1] = n;
  } else if (need === 3) {
    buf[pos] = 0xda;
    view.setUint16(pos + 1, n);
  } else {
    buf[pos] = 0xdb;
    view.setUint32(pos + 1, n);
  }
  pos += need + n;
}

function writeArray(a: readonly unknown[]): void {
  room(5);
  const n = a.length;
  if (n < 0x10) buf[pos++] = 0x90 | n;
  else if (n < 0x10000) {
    buf[pos++] = 0xdc;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = 0xdd;
    view.setUint32(pos, n);
    pos += 4;
  }
  for (const v of a) writeValue(v);
}

function writeMap(m: Record<string, unknown>): void {
  // Own enumerable string keys in insertion order, as msgpackr writes a plain object.
  const keys = Object.keys(m);
  const n = keys.length;
  room(5);
  if (n < 0x10) buf[pos++] = 0x80 | n;
  else if (n < 0x10000) {
    buf[pos++] = 0xde;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = 0xdf;
    view.setUint32(pos, n);
    pos += 4;
  }
  for (const k of keys) {
    writeString(k);
    writeValue(m[k]);
  }
}
