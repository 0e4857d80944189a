// The framing helpers against an independent implementation: dpdk-testpmd's icmpecho mode answers
// the ARP request and ping that frames.ts builds, and its replies (checksums DPDK computed) parse.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createMemif, type MemifRxBurst } from '@ferry/sdk/memif';
import { Testpmd, tempSocketDir, testpmdSkip } from '../dpdk/testpmd.js';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildIcmpEcho,
  formatMac,
  ICMP_ECHO_REPLY,
  parseArp,
  parseIcmpEcho,
  parseIpv4,
  parseMac,
} from './frames.js';

const skip = testpmdSkip();

describe('frames.ts against dpdk-testpmd icmpecho', { skip }, () => {
  const dirs = tempSocketDir('ferry-icmpecho-');
  after(() => dirs.cleanup());

  it('testpmd answers our ARP request and pings; its replies parse with valid checksums', async () => {
    const socket = dirs.path('ie.sock');
    const tp = await Testpmd.start({ role: 'server', socket });
    const m = createMemif({ role: 'client', socket, rxMode: 'interrupt' });
    try {
      const inbox: Uint8Array[] = [];
      m.onPackets((b: MemifRxBurst) => {
        for (let i = 0; i < b.count; i++) inbox.push(b.packet(i).slice());
      });
      await m.waitUp(10_000);
      await tp.waitLinkUp();
      const tpMac = parseMac((await tp.portInfo()).mac);
      await tp.setFwd('icmpecho');
      await tp.startFwd();
      const myMac = parseMac('02:fe:00:00:00:02');
      const myIp = parseIpv4('198.18.0.2');
      const itsIp = parseIpv4('198.18.0.1');
      const arp = buildArp(BROADCAST_MAC, {
        op: ARP_REQUEST,
        senderMac: myMac,
        senderIp: myIp,
        targetMac: new Uint8Array(6),
        targetIp: itsIp,
      });
      const pings = [0, 1, 57, 1000].map((len, seq) =>
        buildIcmpEcho({
          ethDst: tpMac,
          ethSrc: myMac,
          src: myIp,
          dst: itsIp,
          ident: 77,
          seq,
          data: Uint8Array.from({ length: len }, (_, k) => (k * 7 + seq) & 255),
        }),
      );
      assert.equal(m.send(0, [arp, ...pings]), 5);
      const deadline = Date.now() + 5000;
      while (inbox.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await tp.stopFwd();
      assert.equal(inbox.length, 5, `replies: ${inbox.length}`);
      const reply = parseArp(inbox[0] as Uint8Array);
      assert.ok(reply, 'first reply is not ARP');
      assert.equal(reply.op, ARP_REPLY);
      assert.equal(formatMac(reply.senderMac), formatMac(tpMac));
      assert.equal(reply.senderIp, itsIp);
      assert.equal(reply.targetIp, myIp);
      for (const [seq, f] of inbox.slice(1).entries()) {
        const e = parseIcmpEcho(f);
        assert.ok(e, `reply ${seq} does not parse (checksums?)`);
        assert.equal(e.type, ICMP_ECHO_REPLY);
        assert.deepEqual([e.ident, e.seq, e.ip.src, e.ip.dst], [77, seq, itsIp, myIp]);
        assert.deepEqual([...e.data], [...(pings[seq] as Uint8Array).subarray(42)]);
        assert.equal(formatMac(f, 0), formatMac(myMac));
      }
    } finally {
      if (tp.forwarding) await tp.stopFwd(); // before our side disconnects (DPDK may crash otherwise)
      await m.close();
      await tp.close();
    }
  });
});
