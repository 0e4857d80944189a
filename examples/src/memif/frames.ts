// Ethernet / ARP / IPv4 / ICMP / UDP framing for the memif examples (ethernet mode). Only what an
// ARP + ping responder and a packet generator need; every reader bounds-checks its input, because a
// memif peer's frames are untrusted.

export const ETH_HLEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const IPPROTO_ICMP = 1;
export const IPPROTO_UDP = 17;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;
export const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** 'aa:bb:cc:dd:ee:ff' -> 6 bytes. */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new Error(`bad MAC address '${text}'`);
  }
  return new Uint8Array(parts.map((p) => Number.parseInt(p, 16)));
}

export function formatMac(b: Uint8Array, at = 0): string {
  return Array.from(b.subarray(at, at + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Dotted IPv4 -> u32. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`bad IPv4 address '${text}'`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0) >>> 0;
}

export function formatIpv4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

/** The Internet checksum (RFC 1071) of b[start, end). */
export function inetChecksum(b: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += ((b[i] as number) << 8) | (b[i + 1] as number);
  if (i < end) sum += (b[i] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function writeEth(out: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  out.set(dst.subarray(0, 6), 0);
  out.set(src.subarray(0, 6), 6);
  view(out).setUint16(12, type);
}

export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

/** A 42-byte ARP frame (Ethernet + ARP for IPv4 over Ethernet). */
export function buildArp(ethDst: Uint8Array, arp: ArpPacket): Uint8Array {
  const out = new Uint8Array(ETH_HLEN + 28);
  writeEth(out, ethDst, arp.senderMac, ETHERTYPE_ARP);
  const v = view(out);
  v.setUint16(14, 1); // hardware type: Ethernet
  v.setUint16(16, ETHERTYPE_IPV4);
  out[18] = 6;
  out[19] = 4;
  v.setUint16(20, arp.op);
  out.set(arp.senderMac.subarray(0, 6), 22);
  v.setUint32(28, arp.senderIp);
  out.set(arp.targetMac.subarray(0, 6), 32);
  v.setUint32(38, arp.targetIp);
  return out;
}

/** Parses an ARP frame for IPv4 over Ethernet; undefined for anything else. */
export function parseArp(frame: Uint8Array): ArpPacket | undefined {
  if (frame.length < ETH_HLEN + 28) return undefined;
  const v = view(frame);
  if (v.getUint16(12) !== ETHERTYPE_ARP) return undefined;
  if (v.getUint16(14) !== 1 || v.getUint16(16) !== ETHERTYPE_IPV4 || frame[18] !== 6 || frame[19] !== 4) {
    return undefined;
  }
  return {
    op: v.getUint16(20),
    senderMac: frame.slice(22, 28),
    senderIp: v.getUint32(28),
    targetMac: frame.slice(32, 38),
    targetIp: v.getUint32(38),
  };
}

export interface Ipv4Header {
  /** Header length in bytes. */
  ihl: number;
  totalLength: number;
  protocol: number;
  src: number;
  dst: number;
  ttl: number;
}

/** Parses the IPv4 header after the Ethernet header; undefined if malformed or a fragment. */
export function parseIpv4Header(frame: Uint8Array): Ipv4Header | undefined {
  if (frame.length < ETH_HLEN + 20) return undefined;
  const v = view(frame);
  if (v.getUint16(12) !== ETHERTYPE_IPV4) return undefined;
  const vihl = frame[ETH_HLEN] as number;
  const ihl = (vihl & 15) * 4;
  if (vihl >>> 4 !== 4 || ihl < 20) return undefined;
  const totalLength = v.getUint16(ETH_HLEN + 2);
  if (totalLength < ihl || ETH_HLEN + totalLength > frame.length) return undefined;
  if ((v.getUint16(ETH_HLEN + 6) & 0x3fff) !== 0) return undefined; // MF or a fragment offset
  if (inetChecksum(frame, ETH_HLEN, ETH_HLEN + ihl) !== 0) return undefined;
  return {
    ihl,
    totalLength,
    protocol: frame[ETH_HLEN + 9] as number,
    ttl: frame[ETH_HLEN + 8] as number,
    src: v.getUint32(ETH_HLEN + 12),
    dst: v.getUint32(ETH_HLEN + 16),
  };
}

function writeIpv4(
  out: Uint8Array,
  protocol: number,
  src: number,
  dst: number,
  payloadLen: number,
  id: number,
): void {
  const v = view(out);
  out[ETH_HLEN] = 0x45;
  out[ETH_HLEN + 1] = 0;
  v.setUint16(ETH_HLEN + 2, 20 + payloadLen);
  v.setUint16(ETH_HLEN + 4, id & 0xffff);
  v.setUint16(ETH_HLEN + 6, 0x4000); // DF
  out[ETH_HLEN + 8] = 64;
  out[ETH_HLEN + 9] = protocol;
  v.setUint16(ETH_HLEN + 10, 0);
  v.setUint32(ETH_HLEN + 12, src);
  v.setUint32(ETH_HLEN + 16, dst);
  v.setUint16(ETH_HLEN + 10, inetChecksum(out, ETH_HLEN, ETH_HLEN + 20));
}

export interface EchoRequest {
  ethDst: Uint8Array;
  ethSrc: Uint8Array;
  src: number;
  dst: number;
  ident: number;
  seq: number;
  data: Uint8Array;
}

/** An ICMP echo request (or reply, with `type`) in an Ethernet + IPv4 frame. */
export function buildIcmpEcho(e: EchoRequest, type = ICMP_ECHO_REQUEST): Uint8Array {
  const icmpLen = 8 + e.data.length;
  const out = new Uint8Array(ETH_HLEN + 20 + icmpLen);
  writeEth(out, e.ethDst, e.ethSrc, ETHERTYPE_IPV4);
  writeIpv4(out, IPPROTO_ICMP, e.src, e.dst, icmpLen, e.seq);
  const at = ETH_HLEN + 20;
  const v = view(out);
  out[at] = type;
  out[at + 1] = 0;
  v.setUint16(at + 4, e.ident);
  v.setUint16(at + 6, e.seq);
  out.set(e.data, at + 8);
  v.setUint16(at + 2, inetChecksum(out, at, out.length));
  return out;
}

export interface IcmpEcho {
  type: number;
  ip: Ipv4Header;
  ident: number;
  seq: number;
  /** Offset of the ICMP header in the frame. */
  at: number;
  data: Uint8Array;
}

/** Parses an ICMP echo request or reply with a valid checksum; undefined for anything else. */
export function parseIcmpEcho(frame: Uint8Array): IcmpEcho | undefined {
  const ip = parseIpv4Header(frame);
  if (!ip || ip.protocol !== IPPROTO_ICMP) return undefined;
  const at = ETH_HLEN + ip.ihl;
  const end = ETH_HLEN + ip.totalLength;
  if (end - at < 8) return undefined;
  const type = frame[at] as number;
  if ((type !== ICMP_ECHO_REQUEST && type !== ICMP_ECHO_REPLY) || frame[at + 1] !== 0) return undefined;
  if (inetChecksum(frame, at, end) !== 0) return undefined;
  const v = view(frame);
  return {
    type,
    ip,
    ident: v.getUint16(at + 4),
    seq: v.getUint16(at + 6),
    at,
    data: frame.slice(at + 8, end),
  };
}

/**
 * Writes a UDP/IPv4 frame of `size` bytes (>= 42) at out[at...]: the generator's packet. `seq` goes
 * into the first 4 payload bytes (when there is room) so a receiver can check order and loss.
 */
export function writeUdpFrame(
  out: Uint8Array,
  at: number,
  size: number,
  f: { ethDst: Uint8Array; ethSrc: Uint8Array; src: number; dst: number; srcPort: number; dstPort: number },
  seq: number,
): void {
  const frame = out.subarray(at, at + size);
  const udpLen = size - ETH_HLEN - 20;
  writeEth(frame, f.ethDst, f.ethSrc, ETHERTYPE_IPV4);
  writeIpv4(frame, IPPROTO_UDP, f.src, f.dst, udpLen, seq);
  const v = view(frame);
  const u = ETH_HLEN + 20;
  v.setUint16(u, f.srcPort);
  v.setUint16(u + 2, f.dstPort);
  v.setUint16(u + 4, udpLen);
  v.setUint16(u + 6, 0); // no checksum (allowed for UDP over IPv4)
  if (udpLen >= 12) v.setUint32(u + 8, seq >>> 0);
}
