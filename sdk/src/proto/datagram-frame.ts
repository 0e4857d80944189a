/**
 * Datagram framing in a byte fifo: each datagram is one frame, a 24-byte header then the payload,
 * written with a single tail publication (FifoProducer.enqueueAtomic), so a reader never sees
 * part of a frame.
 *
 * Header, little-endian:
 *   0  u32  payload length in bytes (at most DGRAM_MAX_PAYLOAD)
 *   4  u16  port of the peer address
 *   6  u8   address family: 0 (none), 4 or 6
 *   7  u8   reserved, 0
 *   8  16B  address: IPv4 in bytes 8..11 (rest zero), or IPv6 in network order
 *
 * The address is the destination in frames an app writes to ferryd (relay session) and the
 * source in frames ferryd writes to the app. In a cut-through pair both apps write family 0: the
 * receiver takes the sender's address from ferryd (the session's remote URI), never from a peer.
 */
import { ferryError } from '../errors.js';

export const DGRAM_HEADER_BYTES = 24;
/** Largest UDP payload over IPv4 (65535 - 20 IP header - 8 UDP header); the limit for every path. */
export const DGRAM_MAX_PAYLOAD = 65507;

export type DgramFamily = 'IPv4' | 'IPv6';

export interface DgramAddress {
  /** Numeric address: dotted IPv4 or IPv6 text. */
  address: string;
  port: number;
  family: DgramFamily;
}

export interface DgramHeader {
  length: number;
  /** null for family 0 (cut-through frames). */
  peer: DgramAddress | null;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The 4 bytes of a dotted IPv4 address, or null when `text` is not one. */
export function parseIPv4(text: string): Uint8Array | null {
  const m = IPV4.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const v = Number(m[i + 1]);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** The 16 bytes of an IPv6 address (with `::` and a trailing dotted IPv4), or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIPv4(item);
        if (!v4) return null;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
      out.push(Number.parseInt(item, 16));
    }
    return out;
  };
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** RFC 5952 text of 16 address bytes: lower case, the longest run of two or more zero groups as `::`. */
export function formatIPv6(b: Uint8Array): string {
  // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted tail, as RFC 5952 and Node write it.
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[2 * i] as number) << 8) | (b[2 * i + 1] as number));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/**
 * Writes a header for `length` payload bytes to `dst` (at least DGRAM_HEADER_BYTES long). Throws
 * EMSGSIZE for an oversized payload and EINVAL for an address that is not a numeric IP.
 */
export function encodeDgramHeader(dst: Uint8Array, length: number, peer: DgramAddress | null): void {
  if (!Number.isInteger(length) || length < 0 || length > DGRAM_MAX_PAYLOAD) {
    throw ferryError('EMSGSIZE', `a datagram carries at most ${DGRAM_MAX_PAYLOAD} bytes, not ${length}`);
  }
  const v = new DataView(dst.buffer, dst.byteOffset, DGRAM_HEADER_BYTES);
  dst.fill(0, 0, DGRAM_HEADER_BYTES);
  v.setUint32(0, length, true);
  if (!peer) return;
  if (!Number.isInteger(peer.port) || peer.port < 0 || peer.port > 65535) {
    throw ferryError('EINVAL', `port ${peer.port} is out of range`);
  }
  const v4 = parseIPv4(peer.address);
  const bytes = v4 ?? parseIPv6(peer.address);
  if (!bytes) throw ferryError('EINVAL', `'${peer.address}' is not a numeric IP address`);
  v.setUint16(4, peer.port, true);
  dst[6] = v4 ? 4 : 6;
  dst.set(bytes, 8);
}

/**
 * Reads a header a peer wrote (hostile input): ERR_FERRY_FIFO_CORRUPT for a length above
 * `maxPayload` or an unknown family. Never throws anything else.
 */
export function decodeDgramHeader(src: Uint8Array, maxPayload = DGRAM_MAX_PAYLOAD): DgramHeader {
  if (src.length < DGRAM_HEADER_BYTES) {
    throw ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram header of ${src.length} bytes`);
  }
  const v = new DataView(src.buffer, src.byteOffset, DGRAM_HEADER_BYTES);
  const length = v.getUint32(0, true);
  if (length > Math.min(maxPayload, DGRAM_MAX_PAYLOAD)) {
    throw ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram length ${length} exceeds ${maxPayload}`);
  }
  const family = src[6];
  if (family === 0) return { length, peer: null };
  const port = v.getUint16(4, true);
  if (family === 4) {
    return { length, peer: { address: `${src[8]}.${src[9]}.${src[10]}.${src[11]}`, port, family: 'IPv4' } };
  }
  if (family === 6) {
    return { length, peer: { address: formatIPv6(src.subarray(8, 24)), port, family: 'IPv6' } };
  }
  throw ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram address family ${family}`);
}

/** The family of a numeric address, or null when it is neither. */
export function dgramFamilyOf(address: string): DgramFamily | null {
  if (parseIPv4(address)) return 'IPv4';
  if (parseIPv6(address)) return 'IPv6';
  return null;
}
