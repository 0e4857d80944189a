// The ICMP / ARP responder example as a user runs it (its own process, a memif server on an
// abstract socket), probed by a Ferry memif client in this process with hand-built frames.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMemif, type Memif, type MemifRxBurst } from '@ferry/sdk/memif';
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

const RESPONDER = fileURLToPath(new URL('./icmp-responder.js', import.meta.url));
const socket = `@ferry-icmp-test-${process.pid}`;
const responderMac = parseMac('02:fe:00:00:00:01');
const responderIp = parseIpv4('198.18.0.1');
const myMac = parseMac('02:fe:00:00:00:02');
const myIp = parseIpv4('198.18.0.2');

let child: ChildProcess;
let out = '';
let m: Memif;
const inbox: Uint8Array[] = [];

function waitOutput(re: RegExp, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (re.test(out)) return resolve();
    const t = setTimeout(() => reject(new Error(`no ${re} in responder output: ${out}`)), timeoutMs);
    child.stdout?.on('data', function onData() {
      if (re.test(out)) {
        clearTimeout(t);
        child.stdout?.off('data', onData);
        resolve();
      }
    });
  });
}

/** Sends frames and resolves with the frames that arrive within `ms` (for "no reply" checks too). */
async function exchange(frames: Uint8Array[], expect: number, ms = 5000): Promise<Uint8Array[]> {
  inbox.length = 0;
  assert.equal(m.send(0, frames), frames.length);
  const deadline = Date.now() + ms;
  while (inbox.length < expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return [...inbox];
}

before(async () => {
  child = spawn(process.execPath, [RESPONDER, '--role', 'server', '--socket', socket, '--ip', '198.18.0.1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitOutput(/listening on/);
  m = createMemif({ role: 'client', socket, id: 0, mode: 'ethernet', rxMode: 'interrupt' });
  m.onPackets((burst: MemifRxBurst) => {
    for (let i = 0; i < burst.count; i++) inbox.push(burst.packet(i).slice());
  });
  await m.waitUp(10_000);
  await waitOutput(/icmp responder up/);
});

after(async () => {
  await m?.close();
  child?.kill('SIGTERM');
});

describe('icmp responder example', () => {
  it('answers an ARP request for its address', async () => {
    const req = buildArp(BROADCAST_MAC, {
      op: ARP_REQUEST,
      senderMac: myMac,
      senderIp: myIp,
      targetMac: new Uint8Array(6),
      targetIp: responderIp,
    });
    const [reply] = await exchange([req], 1);
    assert.ok(reply, 'no ARP reply');
    const arp = parseArp(reply);
    assert.ok(arp, 'the reply is not ARP');
    assert.equal(arp.op, ARP_REPLY);
    assert.equal(formatMac(arp.senderMac), formatMac(responderMac));
    assert.equal(arp.senderIp, responderIp);
    assert.equal(arp.targetIp, myIp);
    assert.equal(formatMac(reply, 0), formatMac(myMac));
  });

  it('answers 100 pings of growing size, each with its own sequence number and data', async () => {
    const pings = Array.from({ length: 100 }, (_, seq) =>
      buildIcmpEcho({
        ethDst: responderMac,
        ethSrc: myMac,
        src: myIp,
        dst: responderIp,
        ident: 42,
        seq,
        data: Uint8Array.from({ length: seq * 10 }, (_, k) => (seq + k) & 255),
      }),
    );
    const replies = await exchange(pings, 100);
    assert.equal(replies.length, 100);
    for (const [seq, r] of replies.entries()) {
      const e = parseIcmpEcho(r);
      assert.ok(e, `reply ${seq} does not parse (bad checksum?)`);
      assert.equal(e.type, ICMP_ECHO_REPLY);
      assert.equal(e.seq, seq);
      assert.equal(e.ident, 42);
      assert.equal(e.ip.src, responderIp);
      assert.equal(e.ip.dst, myIp);
      assert.deepEqual([...e.data], [...Uint8Array.from({ length: seq * 10 }, (_, k) => (seq + k) & 255)]);
    }
  });

  it('stays silent for other addresses and garbage, and keeps answering afterwards', async () => {
    const other = buildIcmpEcho({
      ethDst: responderMac,
      ethSrc: myMac,
      src: myIp,
      dst: parseIpv4('198.18.0.77'),
      ident: 1,
      seq: 1,
      data: new Uint8Array(8),
    });
    const garbage = [new Uint8Array(1), new Uint8Array(60).fill(0xff), other];
    assert.deepEqual(await exchange(garbage, 1, 300), []);
    const ping = buildIcmpEcho({
      ethDst: responderMac,
      ethSrc: myMac,
      src: myIp,
      dst: responderIp,
      ident: 9,
      seq: 9,
      data: new Uint8Array(8),
    });
    const [r] = await exchange([ping], 1);
    assert.equal(r && parseIcmpEcho(r)?.seq, 9);
  });
});
