// The responder's logic, without I/O: given one received Ethernet frame, the reply to send (if any).
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildIcmpEcho,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  parseArp,
  parseIcmpEcho,
} from './frames.js';

export interface Identity {
  mac: Uint8Array;
  /** IPv4 address as a u32. */
  ip: number;
}

export type Verdict = 'arp' | 'icmp' | 'ignored';

function sameMac(a: Uint8Array, b: Uint8Array, at = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

/**
 * ARP requests for our IP get an ARP reply; ICMP echo requests to our IP (sent to our MAC or to
 * broadcast) get an echo reply with the same identifier, sequence and data. Everything else,
 * including malformed frames, is ignored.
 */
export function respond(frame: Uint8Array, me: Identity): { verdict: Verdict; reply?: Uint8Array } {
  const arp = parseArp(frame);
  if (arp) {
    if (arp.op !== ARP_REQUEST || arp.targetIp !== me.ip) return { verdict: 'ignored' };
    const reply = buildArp(arp.senderMac, {
      op: ARP_REPLY,
      senderMac: me.mac,
      senderIp: me.ip,
      targetMac: arp.senderMac,
      targetIp: arp.senderIp,
    });
    return { verdict: 'arp', reply };
  }
  if (!sameMac(frame, me.mac) && !sameMac(frame, BROADCAST_MAC)) return { verdict: 'ignored' };
  const echo = parseIcmpEcho(frame);
  if (!echo || echo.type !== ICMP_ECHO_REQUEST || echo.ip.dst !== me.ip) return { verdict: 'ignored' };
  const reply = buildIcmpEcho(
    {
      ethDst: frame.slice(6, 12),
      ethSrc: me.mac,
      src: me.ip,
      dst: echo.ip.src,
      ident: echo.ident,
      seq: echo.seq,
      data: echo.data,
    },
    ICMP_ECHO_REPLY,
  );
  return { verdict: 'icmp', reply };
}
