// The responder's logic and the framing helpers, without any memif: hand-built frames in, replies out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildIcmpEcho,
  formatIpv4,
  formatMac,
  ICMP_ECHO_REPLY,
  inetChecksum,
  parseArp,
  parseIcmpEcho,
  parseIpv4,
  parseMac,
  writeUdpFrame,
} from './frames.js';
import { respond } from './respond.js';

const me = { mac: parseMac('02:fe:00:00:00:01'), ip: parseIpv4('198.18.0.1') };
const peerMac = parseMac('02:fe:00:00:00:02');
const peerIp = parseIpv4('198.18.0.2');

function arpRequest(targetIp: number): Uint8Array {
  return buildArp(BROADCAST_MAC, {
    op: ARP_REQUEST,
    senderMac: peerMac,
    senderIp: peerIp,
    targetMac: new Uint8Array(6),
    targetIp,
  });
}

function ping(dst: number, ethDst = me.mac, data = new Uint8Array([1, 2, 3, 4, 5])): Uint8Array {
  return buildIcmpEcho({ ethDst, ethSrc: peerMac, src: peerIp, dst, ident: 0x1234, seq: 7, data });
}

describe('frames', () => {
  it('formats and parses addresses, and refuses bad ones', () => {
    assert.equal(formatMac(parseMac('02:FE:0:0:a:1')), '02:fe:00:00:0a:01');
    assert.equal(formatIpv4(parseIpv4('198.18.255.7')), '198.18.255.7');
    assert.throws(() => parseMac('02:fe:00:00:00'), /bad MAC/);
    assert.throws(() => parseIpv4('198.18.0.256'), /bad IPv4/);
  });

  it('computes the Internet checksum of RFC 1071 example data', () => {
    // RFC 1071 section 3: the one's complement sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
    const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    assert.equal(inetChecksum(b, 0, b.length), ~0xddf2 & 0xffff);
    // Odd length: the last byte is padded with zero.
    assert.equal(inetChecksum(new Uint8Array([0xff]), 0, 1), ~0xff00 & 0xffff);
  });

  it('a built ICMP echo parses back with valid checksums; a flipped bit makes it unreadable', () => {
    const f = ping(me.ip);
    const e = parseIcmpEcho(f);
    assert.ok(e);
    assert.deepEqual([e.type, e.ident, e.seq, [...e.data]], [8, 0x1234, 7, [1, 2, 3, 4, 5]]);
    const bad = f.slice();
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    assert.equal(parseIcmpEcho(bad), undefined);
  });

  it('writes a UDP frame of the requested size with the sequence number in its payload', () => {
    const out = new Uint8Array(100);
    const f = { ethDst: me.mac, ethSrc: peerMac, src: peerIp, dst: me.ip, srcPort: 9, dstPort: 9 };
    writeUdpFrame(out, 10, 64, f, 0xabcdef01);
    assert.equal(formatMac(out, 10), '02:fe:00:00:00:01');
    assert.equal(inetChecksum(out, 10 + 14, 10 + 34), 0);
    assert.equal(new DataView(out.buffer).getUint32(10 + 42), 0xabcdef01);
    assert.equal(new DataView(out.buffer).getUint16(10 + 16), 64 - 14);
  });
});

describe('respond', () => {
  it('answers an ARP request for its address with its MAC', () => {
    const r = respond(arpRequest(me.ip), me);
    assert.equal(r.verdict, 'arp');
    assert.ok(r.reply);
    assert.equal(formatMac(r.reply, 0), formatMac(peerMac));
    assert.equal(formatMac(r.reply, 6), formatMac(me.mac));
    const arp = parseArp(r.reply);
    assert.ok(arp);
    assert.equal(arp.op, ARP_REPLY);
    assert.equal(formatMac(arp.senderMac), formatMac(me.mac));
    assert.equal(arp.senderIp, me.ip);
    assert.equal(formatMac(arp.targetMac), formatMac(peerMac));
    assert.equal(arp.targetIp, peerIp);
  });

  it('ignores ARP for other addresses and ARP replies', () => {
    assert.equal(respond(arpRequest(parseIpv4('198.18.0.9')), me).verdict, 'ignored');
    const reply = buildArp(me.mac, {
      op: ARP_REPLY,
      senderMac: peerMac,
      senderIp: peerIp,
      targetMac: me.mac,
      targetIp: me.ip,
    });
    assert.equal(respond(reply, me).verdict, 'ignored');
  });

  it('answers an ICMP echo request with an echo reply carrying the same id, sequence and data', () => {
    const data = Uint8Array.from({ length: 56 }, (_, i) => i);
    for (const ethDst of [me.mac, BROADCAST_MAC]) {
      const r = respond(ping(me.ip, ethDst, data), me);
      assert.equal(r.verdict, 'icmp');
      assert.ok(r.reply);
      const e = parseIcmpEcho(r.reply);
      assert.ok(e, 'the reply has valid IPv4 and ICMP checksums');
      assert.equal(e.type, ICMP_ECHO_REPLY);
      assert.deepEqual([e.ident, e.seq, e.ip.src, e.ip.dst], [0x1234, 7, me.ip, peerIp]);
      assert.deepEqual([...e.data], [...data]);
      assert.equal(formatMac(r.reply, 0), formatMac(peerMac));
      assert.equal(formatMac(r.reply, 6), formatMac(me.mac));
    }
  });

  it('ignores pings to other addresses or MACs, echo replies, and malformed or truncated frames', () => {
    assert.equal(respond(ping(parseIpv4('198.18.0.9')), me).verdict, 'ignored');
    assert.equal(respond(ping(me.ip, peerMac), me).verdict, 'ignored');
    const reply = buildIcmpEcho(
      { ethDst: me.mac, ethSrc: peerMac, src: peerIp, dst: me.ip, ident: 1, seq: 1, data: new Uint8Array(4) },
      ICMP_ECHO_REPLY,
    );
    assert.equal(respond(reply, me).verdict, 'ignored');
    const good = ping(me.ip);
    for (let len = 0; len < good.length; len++) {
      assert.equal(respond(good.subarray(0, len), me).verdict, 'ignored', `truncated to ${len}`);
    }
    const lying = good.slice();
    new DataView(lying.buffer).setUint16(16, 60000); // IPv4 total length beyond the frame
    assert.equal(respond(lying, me).verdict, 'ignored');
    assert.equal(respond(new Uint8Array(1500).fill(0xff), me).verdict, 'ignored');
  });
});
