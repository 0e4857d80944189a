// Wake-latency benchmark: ping-pong between two processes, each side woken by the other, per mechanism.
//
//   node examples/dist/bench/wake.js [--rounds 5] [--iterations 2000] [--only doorbell,poller-eventfd]
//
// Mechanisms: a Doorbell (pipe read end in net.Socket), a stream socketpair in net.Socket, FdPoller
// (koffi async epoll_wait) on an eventfd, and a SEQPACKET socket watched by FdPoller. The parent
// times each round trip (two wakes: child, then parent); one-way wake is about half of it. Each
// figure is the median over rounds of that round's p50 / p99.

import { fork } from 'node:child_process';
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import {
  close,
  Doorbell,
  eventfd,
  eventfdRead,
  eventfdWrite,
  FdPoller,
  recvMsg,
  ring,
  sendMsg,
  setNonBlocking,
  socketpair,
} from '@ferry/sdk/internal';
import { upperMedian as median } from './median.js';

const MECHANISMS = ['doorbell', 'net-socketpair', 'poller-eventfd', 'poller-seqpacket'] as const;
type Mechanism = (typeof MECHANISMS)[number];

/** The child inherits the setup socket (SEQPACKET) as this fd. */
const SETUP_FD = 4;
const WARMUP = 1000;
const ROUND_TIMEOUT_MS = 30_000;
const SETUP_TIMEOUT_MS = 5_000;
const ONE = new Uint8Array([1]);

/** A wake mechanism as one side sees it: poke the peer, and be called when the peer pokes back. */
interface Endpoint {
  poke(): void;
  onWake(cb: () => void): void;
  close(): void;
}

/** Receives one setup message with fds, polling a non-blocking socket with a deadline. */
async function recvFds(fd: number, count: number): Promise<number[]> {
  const buf = new Uint8Array(16);
  const deadline = Date.now() + SETUP_TIMEOUT_MS;
  for (let i = 0; i < SETUP_TIMEOUT_MS && Date.now() < deadline; i++) {
    const r = recvMsg(fd, buf, count);
    if (r !== null) return r.fds;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error('setup: no fds from peer');
}

function doorbellEndpoint(own: Doorbell, peerRingFd: number): Endpoint {
  return {
    poke: () => ring(peerRingFd),
    onWake: (cb) => own.onRing(cb),
    close: () => {
      own.close();
      close(peerRingFd);
    },
  };
}

function netEndpoint(fd: number): Endpoint {
  const sock = new Socket({ fd, readable: true, writable: true });
  sock.setNoDelay?.(true);
  return {
    poke: () => sock.write(ONE),
    onWake: (cb) => sock.on('data', cb),
    close: () => sock.destroy(),
  };
}

function pollerEventfdEndpoint(waitFd: number, pokeFd: number): Endpoint {
  const poller = new FdPoller();
  return {
    poke: () => eventfdWrite(pokeFd),
    onWake: (cb) =>
      poller.watch(waitFd, { readable: true }, () => {
        if (eventfdRead(waitFd) !== null) cb();
      }),
    close: () => {
      poller.close();
      close(waitFd);
      close(pokeFd);
    },
  };
}

function pollerSeqpacketEndpoint(fd: number): Endpoint {
  const poller = new FdPoller();
  const buf = new Uint8Array(16);
  return {
    poke: () => sendMsg(fd, ONE),
    onWake: (cb) =>
      poller.watch(fd, { readable: true }, () => {
        let got = 0;
        for (let i = 0; i < 64; i++) {
          const r = recvMsg(fd, buf, 0);
          if (r === null || r.bytes === 0) break;
          got++;
        }
        if (got > 0) cb();
      }),
    close: () => {
      poller.close();
      close(fd);
    },
  };
}

/** Parent side of the setup: creates the resources, hands the child its share, returns our endpoint. */
async function parentSetup(mech: Mechanism, setupFd: number): Promise<Endpoint> {
  switch (mech) {
    case 'doorbell': {
      const own = Doorbell.create();
      sendMsg(setupFd, ONE, [own.ringFd]);
      own.dropRingFd();
      const [peerRing] = await recvFds(setupFd, 1);
      return doorbellEndpoint(own, peerRing ?? -1);
    }
    case 'net-socketpair':
    case 'poller-seqpacket': {
      const [ours, theirs] = socketpair(mech === 'net-socketpair' ? 'stream' : 'seqpacket', {
        nonblock: true,
      });
      sendMsg(setupFd, ONE, [theirs]);
      close(theirs);
      return mech === 'net-socketpair' ? netEndpoint(ours) : pollerSeqpacketEndpoint(ours);
    }
    case 'poller-eventfd': {
      const toChild = eventfd(0, { nonblock: true });
      const toParent = eventfd(0, { nonblock: true });
      sendMsg(setupFd, ONE, [toChild, toParent]);
      return pollerEventfdEndpoint(toParent, toChild);
    }
  }
}

/** Child side: mirrors parentSetup, then answers every wake with a poke. */
async function childMain(mech: Mechanism): Promise<void> {
  setNonBlocking(SETUP_FD, true);
  let ep: Endpoint;
  switch (mech) {
    case 'doorbell': {
      const [peerRing] = await recvFds(SETUP_FD, 1);
      const own = Doorbell.create();
      sendMsg(SETUP_FD, ONE, [own.ringFd]);
      own.dropRingFd();
      ep = doorbellEndpoint(own, peerRing ?? -1);
      break;
    }
    case 'net-socketpair':
    case 'poller-seqpacket': {
      const [fd = -1] = await recvFds(SETUP_FD, 1);
      ep = mech === 'net-socketpair' ? netEndpoint(fd) : pollerSeqpacketEndpoint(fd);
      break;
    }
    case 'poller-eventfd': {
      const [waitFd = -1, pokeFd = -1] = await recvFds(SETUP_FD, 2);
      ep = pollerEventfdEndpoint(waitFd, pokeFd);
      break;
    }
  }
  ep.onWake(() => ep.poke());
  process.send?.('ready');
  process.once('disconnect', () => {
    ep.close();
    close(SETUP_FD);
  });
}

/** Runs `count` timed round trips; resolves with the round-trip times in microseconds. */
function runRound(ep: Endpoint, count: number, onWake: { cb: () => void }): Promise<Float64Array> {
  const samples = new Float64Array(count);
  return new Promise((resolve, reject) => {
    let i = 0;
    let t0 = process.hrtime.bigint();
    const timer = setTimeout(
      () => reject(new Error(`round timed out after ${i} round trips`)),
      ROUND_TIMEOUT_MS,
    );
    onWake.cb = () => {
      samples[i++] = Number(process.hrtime.bigint() - t0) / 1000;
      if (i === count) {
        clearTimeout(timer);
        resolve(samples);
        return;
      }
      t0 = process.hrtime.bigint();
      ep.poke();
    };
    ep.poke();
  });
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

interface Session {
  mech: Mechanism;
  ep: Endpoint;
  hook: { cb: () => void };
  results: number[][];
  dispose(): void;
}

/** Forks the responder for mech and connects both sides; the child is killed by dispose(). */
async function openSession(mech: Mechanism): Promise<Session> {
  const [setupOurs, setupTheirs] = socketpair('seqpacket', { nonblock: true });
  const self = new URL(import.meta.url).pathname;
  const child = fork(self, ['--child', mech], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', setupTheirs],
  });
  close(setupTheirs);
  let ep: Endpoint | undefined;
  const dispose = (): void => {
    ep?.close();
    close(setupOurs);
    child.kill('SIGKILL');
  };
  try {
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    ep = await parentSetup(mech, setupOurs);
    const hook = { cb: () => {} };
    ep.onWake(() => hook.cb());
    await ready;
    await runRound(ep, WARMUP, hook);
    return { mech, ep, hook, results: [], dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      rounds: { type: 'string', default: '5' },
      iterations: { type: 'string', default: '2000' },
      only: { type: 'string' },
    },
  });
  if (values.child !== undefined) {
    if (!(MECHANISMS as readonly string[]).includes(values.child)) throw new Error(`unknown ${values.child}`);
    await childMain(values.child as Mechanism);
    return;
  }
  const rounds = Number(values.rounds);
  const iterations = Number(values.iterations);
  console.log(
    `wake ping-pong, ${rounds} rounds x ${iterations} round trips (+${WARMUP} warm-up), two processes`,
  );
  console.log('| mechanism | RTT p50 us | RTT p99 us | one-way p50 us | per-round p50s |');
  console.log('|---|---|---|---|---|');
  const only = values.only?.split(',');
  const sessions: Session[] = [];
  try {
    for (const mech of MECHANISMS)
      if (only === undefined || only.includes(mech)) sessions.push(await openSession(mech));
    // Rounds are interleaved across mechanisms so that all of them see the same machine conditions.
    for (let r = 0; r < rounds; r++) {
      for (const s of sessions) {
        const sorted = (await runRound(s.ep, iterations, s.hook)).sort();
        s.results.push([percentile(sorted, 0.5), percentile(sorted, 0.99)]);
      }
    }
  } finally {
    for (const s of sessions) s.dispose();
  }
  for (const { mech, results } of sessions) {
    const p50 = median(results.map((r) => r[0] ?? Number.NaN));
    const p99 = median(results.map((r) => r[1] ?? Number.NaN));
    const per = results.map((r) => (r[0] ?? 0).toFixed(1)).join(' ');
    console.log(`| ${mech} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${(p50 / 2).toFixed(1)} | ${per} |`);
  }
}

await main();
