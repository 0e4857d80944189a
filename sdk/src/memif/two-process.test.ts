// Ferry to Ferry over memif in two processes: an echo peer in a child process, this process on the
// other end. Both roles, chained buffers, several queues, interrupt and poll mode, abstract and
// filesystem sockets; a peer that is killed, and the client reconnecting when it returns.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MemifDownReason, MemifLinkInfo } from './link-info.js';
import { createMemif, type Memif } from './memif.js';
import type { MemifOptions } from './options.js';
import { type RawChannel, rawConnect } from './testing/raw-peer.js';
import { abstractName, nextEvent, packet, socketPath } from './testing/util.js';

const PEER = fileURLToPath(new URL('./testing/echo-peer.js', import.meta.url));

interface Peer {
  child: ChildProcess;
  lines: string[];
  waitLine(prefix: string, timeoutMs?: number): Promise<string>;
}

const children: ChildProcess[] = [];
const memifs: Memif[] = [];
after(async () => {
  for (const m of memifs) await m.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function startPeer(o: MemifOptions, maxFds?: number): Peer {
  const args = [PEER, JSON.stringify(o)];
  const child =
    maxFds === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn('sh', ['-c', `ulimit -n ${maxFds} && exec "$0" "$@"`, process.execPath, ...args], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
  children.push(child);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  let seen = 0;
  const waitLine = (prefix: string, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`peer did not print '${prefix}' (got ${lines.join(' | ')})`)),
        timeoutMs,
      );
      const look = (): void => {
        for (; seen < lines.length; seen++) {
          const l = lines[seen] as string;
          if (l.startsWith(prefix)) {
            seen++;
            clearTimeout(timer);
            resolve(l);
            return;
          }
        }
        waiters.push(look);
      };
      look();
    });
  return { child, lines, waitLine };
}

function local(o: MemifOptions): Memif {
  const m = createMemif(o);
  memifs.push(m);
  return m;
}

/** Sends every packet on queue q and collects as many echoes (copied), interleaved. */
async function echo(m: Memif, q: number, pkts: Uint8Array[], timeoutMs = 10_000): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  let sent = 0;
  const deadline = Date.now() + timeoutMs;
  while (got.length < pkts.length) {
    if (sent < pkts.length) sent += m.send(q, pkts, sent, Math.min(32, pkts.length - sent));
    got.push(...m.receive(q));
    if (Date.now() > deadline)
      throw new Error(`queue ${q}: sent ${sent}, echoed ${got.length} of ${pkts.length}`);
    await new Promise((r) => setImmediate(r));
  }
  return got;
}

const mixed = (seed: number, n: number, max: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => packet(seed + i, 1 + ((i * 397) % max)));

describe('memif: Ferry to Ferry in two processes', () => {
  it('our client, echo server in a child (interrupt mode, abstract socket, chained, 2 queues)', async () => {
    const socket = abstractName('2p-cli');
    const peer = startPeer({ role: 'server', socket, id: 7, queues: { rx: 2, tx: 2 }, rxMode: 'interrupt' });
    const m = local({
      role: 'client',
      socket,
      id: 7,
      queues: { rx: 2, tx: 2 },
      bufferSize: 512,
      rxMode: 'interrupt',
    });
    const info = await m.waitUp(10_000);
    await peer.waitLine('up');
    assert.deepEqual(info.queues, { rx: 2, tx: 2 });
    for (let q = 0; q < 2; q++) {
      const pkts = mixed(q * 10_000, 400, 3000); // up to 6 buffers of 512 per packet
      assert.deepEqual(await echo(m, q, pkts), pkts, `queue ${q}`);
    }
    peer.child.kill('SIGTERM');
    const [reason] = await nextEvent<[MemifDownReason]>(m, 'down');
    assert.equal(reason.peerMessage, 'Interface closed');
  });

  it('our server, echo client in a child (poll mode, filesystem socket, chained, 3 queues)', async () => {
    const socket = socketPath('2p-srv');
    const m = local({ role: 'server', socket, id: 0, queues: { rx: 3, tx: 3 }, rxMode: 'poll' });
    const peer = startPeer({
      role: 'client',
      socket,
      id: 0,
      queues: { rx: 3, tx: 3 },
      bufferSize: 256,
      rxMode: 'poll',
    });
    const info = await m.waitUp(10_000);
    await peer.waitLine('up');
    assert.deepEqual(info.queues, { rx: 3, tx: 3 });
    for (let q = 0; q < 3; q++) {
      const pkts = mixed(q * 777, 300, 2000);
      assert.deepEqual(await echo(m, q, pkts), pkts, `queue ${q}`);
    }
    peer.child.kill('SIGTERM');
    await nextEvent(m, 'down');
  });

  it('a killed server peer: our client goes down (peer gone), then reconnects when a new one starts', async () => {
    const socket = abstractName('2p-kill');
    const first = startPeer({ role: 'server', socket, id: 1 });
    const m = local({ role: 'client', socket, id: 1, reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
    await m.waitUp(10_000);
    assert.deepEqual(await echo(m, 0, mixed(1, 50, 1400)), mixed(1, 50, 1400));
    const down = nextEvent<[MemifDownReason]>(m, 'down');
    first.child.kill('SIGKILL');
    const [reason] = await down;
    assert.equal(reason.code, 'ERR_FERRY_MEMIF_PEER_GONE');
    assert.equal(reason.willRetry, true);
    const up = nextEvent<[MemifLinkInfo]>(m, 'up', 10_000);
    startPeer({ role: 'server', socket, id: 1 });
    const [info] = await up;
    assert.equal(info.connection, 2);
    assert.deepEqual(await echo(m, 0, mixed(2, 50, 1400)), mixed(2, 50, 1400));
  });

  it('a server out of descriptors (EMFILE) recovers once connections go away', async () => {
    const socket = abstractName('2p-emfile');
    startPeer({ role: 'server', socket, id: 2, handshakeTimeoutMs: 60_000 }, 40);
    // Wait for the listener, then open connections until the server (or its backlog) is full.
    const raw: RawChannel[] = [];
    const deadline = Date.now() + 10_000;
    while (raw.length === 0) {
      try {
        raw.push(rawConnect(socket));
      } catch {
        if (Date.now() > deadline) throw new Error('peer never listened');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    // Connect until the backlog stays full: the server has stopped accepting (out of fds).
    let failures = 0;
    while (raw.length < 100 && failures < 15) {
      try {
        raw.push(rawConnect(socket));
        failures = 0;
      } catch {
        failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.equal(failures, 15, `the peer kept accepting (${raw.length} connections)`);
    await new Promise((r) => setTimeout(r, 300));
    for (const c of raw) c.close();
    const m = local({ role: 'client', socket, id: 2, reconnect: { minDelayMs: 50, maxDelayMs: 200 } });
    await m.waitUp(15_000);
    assert.deepEqual(await echo(m, 0, mixed(9, 10, 500)), mixed(9, 10, 500));
  });

  it('a killed client peer: our server goes down (peer gone) and takes the next client', async () => {
    const socket = abstractName('2p-killcli');
    const m = local({ role: 'server', socket, id: 3, rxMode: 'adaptive' });
    const first = startPeer({ role: 'client', socket, id: 3 });
    await m.waitUp(10_000);
    await first.waitLine('up');
    assert.deepEqual(await echo(m, 0, mixed(3, 20, 1000)), mixed(3, 20, 1000));
    const down = nextEvent<[MemifDownReason]>(m, 'down');
    first.child.kill('SIGKILL');
    const [reason] = await down;
    assert.equal(reason.code, 'ERR_FERRY_MEMIF_PEER_GONE');
    assert.equal(m.state, 'listening');
    const second = startPeer({ role: 'client', socket, id: 3 });
    await nextEvent(m, 'up', 10_000);
    await second.waitLine('up');
    assert.deepEqual(await echo(m, 0, mixed(4, 20, 1000)), mixed(4, 20, 1000));
  });
});
