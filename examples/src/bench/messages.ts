// Messaging benchmark (`npm run bench:messages`): @ferry/sdk/messages against the obvious
// do-it-yourself, node:net over a unix socket with msgpackr's PackrStream/UnpackrStream, and against
// zeromq.js over ipc://, in one run: each case and variant in fresh server and client processes,
// interleaved over rounds, medians, ratios to node:net, CPU per operation of every process on the
// path (client, server, ferryd).
//
//   npm run bench:messages -- [--rounds 5] [--scale 1] [--case oneway,rtt,bulk,pubsub] [--json]
//     [--variants net,zmq,ferry,ferry-interrupt(,ferry-poll)] [--warmup 20000] [--oneway-warmup 100000] [--pace-ns 0]
//     [--pin] [--rtt-detail]
//
// --pin: client and server each on a vCPU of its own (see pinSelf). --rtt-detail: each round's
// line (without --json) carries both ends' expectation counters and poll budgets (`detail`).
// Cases: one-way small objects ({ id, ts, name, vals: [1, 2, 3] }), request/response round trips
// (p50, p99), 1 MiB binary payloads one way (Ferry: the loan API), publish/subscribe to 1, 2, 4 and
// 8 subscribers (publisher's rate and each subscriber's).

import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectMessages, createMessageServer, publish, ReceivedLoan, subscribe } from '@ferry/sdk/messages';
import { Packr, PackrStream, Unpackr, UnpackrStream } from 'msgpackr';
import { median as medianOf } from './median.js';
import { cpuUsOf } from './proc-cpu.js';

const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

type Variant = 'net' | 'zmq' | 'ferry';
/** What the table shows: Ferry in its default (adaptive) mode and in interrupt mode (never spins);
 *  on request poll mode (always spins: the floor adaptive can reach; ferryd stays adaptive). */
type Shown = Variant | 'ferry-interrupt' | 'ferry-poll';

/** The processes' variant and environment for a shown variant. */
function runAs(v: Shown, env: NodeJS.ProcessEnv): { variant: Variant; env: NodeJS.ProcessEnv } {
  if (v === 'ferry-interrupt') return { variant: 'ferry', env: { ...env, FERRY_MODE: 'interrupt' } };
  if (v === 'ferry-poll') return { variant: 'ferry', env: { ...env, FERRY_MODE: 'poll' } };
  return { variant: v, env };
}
type Workload = 'oneway' | 'rtt' | 'bulk';
const BULK_BYTES = 1024 * 1024;
/** The same value options on every variant: records shared per direction (msgpackr's sequential). */
const MP = { sequential: true, useRecords: true } as const;

const smallObject = (i: number) => ({ id: i, ts: 1_700_000_000_000 + i, name: 'sensor-7', vals: [1, 2, 3] });
/** Pub/sub warm-up: the timed messages' shape and value kinds (ids from 0), told apart by an earlier ts. */
const WARM_TS = 1_600_000_000_000;
const warmObject = (i: number) => ({ id: i, ts: WARM_TS + i, name: 'sensor-7', vals: [1, 2, 3] });

interface Result {
  /** Operations per second (messages, round trips, payloads) at the receiver. */
  rate: number;
  p50Us?: number;
  p99Us?: number;
  cpuUs: number;
  /**
   * Ferry RTT: shares of the round trips (warm-up included) whose reply the client, and whose next
   * request the server, found while polling rather than after a wake-up from sleep.
   */
  replyFoundPolling?: number;
  requestFoundPolling?: number;
  /** Ferry RTT: share of awaited replies the client chose to poll for; its notifier's turns taken
   *  as in interrupt mode (contended, sys/run-wait.ts) per round trip. */
  replyPollChoice?: number;
  /** Ferry RTT: the same over the timed round trips only (the p50 and p99 are theirs). */
  timedReplyPollChoice?: number;
  contendedPerRtt?: number;
  /** Ferry RTT: the client's wait for a CPU while awake, as a share of its awake time (the contention
   *  rule's input, sys/run-wait.ts; whole process life). */
  awakeWaitShare?: number;
  /** Ferry RTT: the machine's runnable tasks (/proc/loadavg) as the client read them while it
   *  slept for replies (sys/run-queue.ts, at most once per ms; NaN: never read); above the CPUs by
   *  0.75 the notifier does not poll on its own then. Polls for replies are gated by
   *  pollWaitShare instead (since msgs11). */
  runnableMean?: number;
  /** Ferry RTT: the client's wait for a CPU while it polled for replies, as a share of that time
   *  (sys/poll-contention.ts; NaN: never polled), and the share of its decisions that found the
   *  polls contended (they are vetoed then, for a pause). */
  pollWaitShare?: number;
  pollContendedShare?: number;
  /** Ferry RTT: the client's polling time measured for that share, in µs per round trip. */
  pollUsPerRtt?: number;
  /** --rtt-detail: the raw counters (see rttDetail). */
  detail?: string;
  /** The client's CPU over the timed part only (after connect and warm-up). */
  loopCpuUs?: number | undefined;
  /** Ferry one-way and bulk: the receiver's wake-ups from sleep and turns taken as in interrupt
   *  mode (contended) per 1,000 messages (warm-up included), and its wait share while awake. */
  rxWakesPerKMsg?: number;
  rxContendedPerKMsg?: number;
  rxAwakeWaitShare?: number;
}

/** CPU at the start of the timed part; the parent is told so it can read the server's there too. */
let loopCpu0: NodeJS.CpuUsage | null = null;
function markTimedStart(): void {
  loopCpu0 = process.cpuUsage();
  process.send?.({ mark: true });
}
function timedCpuUs(): number | undefined {
  if (loopCpu0 === null) return undefined;
  const c = process.cpuUsage(loopCpu0);
  return c.user + c.system;
}

// ---------------------------------------------------------------- servers

async function serve(variant: Variant, workload: Workload, target: string): Promise<void> {
  if (variant === 'ferry') {
    let count = 0;
    const server = createMessageServer({
      onMessage: (v) => {
        // A loan's bytes are read where they lie, then the fifo space goes back.
        if (v instanceof ReceivedLoan) v.release();
        count++;
      },
      // 'rtt-stats': how this side waited for each next request (MessageChannel.roundTripStats).
      // 'rx-stats': the receiver's notifier counters (wake-ups, contended turns, its wait share).
      onRequest: (v, ctx) =>
        v === 'count'
          ? count
          : v === 'rtt-stats'
            ? ctx.channel.roundTripStats.request
            : v === 'rx-stats'
              ? ctx.channel.roundTripStats.notifier
              : v,
    }).listen(target);
    await server.ready();
    process.send?.({ target: server.uri });
    return;
  } else if (variant === 'net') {
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      const out = new PackrStream(MP);
      out.pipe(s);
      const inp = new UnpackrStream(MP);
      s.pipe(inp);
      let count = 0;
      inp.on('data', (v: unknown) => {
        if (workload === 'rtt') out.write(v);
        else if (v === 'count') out.write(count);
        else count++;
      });
    });
    await new Promise<void>((resolve) => srv.listen(target, resolve));
  } else {
    const zmq = await import('zeromq');
    const sock = new zmq.Pair();
    await sock.bind(target);
    const packr = new Packr(MP);
    const unpackr = new Unpackr(MP);
    let count = 0;
    void (async () => {
      for await (const [msg] of sock) {
        const v = unpackr.unpack(msg as Buffer);
        if (workload === 'rtt') await sock.send(packr.pack(v));
        else if (v === 'count') await sock.send(packr.pack(count));
        else count++;
      }
    })();
  }
  process.send?.({ target });
}

// ---------------------------------------------------------------- clients

async function client(variant: Variant, workload: Workload, target: string, n: number): Promise<Result> {
  const cpu0 = process.cpuUsage();
  const r =
    variant === 'ferry'
      ? await ferryClient(workload, target, n)
      : variant === 'net'
        ? await netClient(workload, target, n)
        : await zmqClient(workload, target, n);
  const cpu = process.cpuUsage(cpu0);
  return { ...r, cpuUs: cpu.user + cpu.system, loopCpuUs: timedCpuUs() };
}

/**
 * One-way messages sent (and counted by the server) before the timed part, by every variant alike
 * (`--oneway-warmup`, default 100,000; round trips `--warmup`, default 20,000; 0 for none): the figure is then each variant's steady rate, not
 * mostly its JIT warming up (at 90,000 messages, a third of Ferry's CPU per message was that).
 * Round trips likewise (see roundTrips), not capped at the timed count.
 */
function warmupOf(workload: Workload, n: number): number {
  if (workload === 'bulk') return 0;
  // One-way has its own, larger default: 20,000 small messages (~960 KB) never filled the 1 MiB
  // fifo, so the ring's first wrap and the receiver's recompiles after it (11-28 ms, msgs14) fell
  // inside a timed part of ~80 ms at 3.7 M/s. 100,000 wraps it about four times.
  const w = Number(
    (workload === 'oneway' ? process.env['BENCH_ONEWAY_WARMUP'] : undefined) ??
      process.env['BENCH_WARMUP'] ??
      20_000,
  );
  if (!(Number.isFinite(w) && w > 0)) return 0;
  // Round trips: the whole warm-up whatever n (see roundTrips).
  return workload === 'rtt' ? Math.round(w) : Math.min(Math.round(w), n);
}

function payload(workload: Workload, i: number, bulk: Buffer): unknown {
  if (workload !== 'bulk') return smallObject(i);
  // Producing the payload (as the loan case does in place).
  bulk.fill(i & 0xff);
  return { seq: i, data: bulk };
}

// ---------------------------------------------------------------- publish/subscribe

const PUBSUB_END = { end: true };

/** A publisher: ready once bound/attached; on 'go' publishes n small objects, then end markers. */
async function pubsubPublisher(variant: Variant, target: string, n: number): Promise<void> {
  let send: (v: unknown) => Promise<void> | undefined;
  if (variant === 'ferry') {
    const pub = await publish(target);
    send = (v) => {
      pub.send(v);
      return undefined;
    };
  } else {
    const zmq = await import('zeromq');
    const sock = new zmq.Publisher();
    await sock.bind(target);
    const packr = new Packr();
    send = (v) => sock.send(packr.pack(v));
  }
  process.send?.({ ready: true });
  await new Promise((r) => process.once('message', r));
  // Warm-up (--warmup, as round trips'; every variant alike): messages with an earlier ts, which the
  // subscribers receive but do not count, then a pause in which they catch up; the timed part
  // is then each side's steady cost, not mostly its JIT warming up. Their ids run from 0 as the
  // timed ones do: numbered below 0 (negative ints, a kind the timed part never sends), the
  // warm-up left the decoders' paths for small positive ints cold, and a subscriber's first
  // 60,000 timed messages cost it 1.4-2.4x what they cost after a warm-up of the same kinds
  // (one process, CPU time, 3 runs each; BENCHMARKS.md, topic10).
  const warm = pubsubWarmup(n);
  for (let i = 0; i < warm; i++) {
    const p = send(warmObject(i));
    if (p) await p;
  }
  if (warm > 0) await new Promise((r) => setTimeout(r, 200));
  const cpu0 = process.cpuUsage();
  const wait0 = runWaitNs();
  const t0 = performance.now();
  // --pace-ns: the publisher waits (spinning) this long before each message, to compare
  // subscribers at a publisher rate they keep up with against ones it laps.
  const paceMs = Number(process.env['BENCH_PACE_NS'] ?? 0) / 1e6;
  for (let i = 0; i < n; i++) {
    if (paceMs > 0) {
      const until = performance.now() + paceMs;
      while (performance.now() < until) {}
    }
    const p = send(smallObject(i));
    if (p) await p;
  }
  const wallMs = performance.now() - t0;
  const rate = (n / wallMs) * 1000;
  const cpu = process.cpuUsage(cpu0);
  // Share of the timed part the publisher's thread spent runnable but waiting for a CPU.
  const waitShare = (runWaitNs() - wait0) / 1e6 / wallMs;
  for (let k = 0; k < 20; k++) {
    await send(PUBSUB_END);
    await new Promise((r) => setTimeout(r, 25));
  }
  process.send?.({ rate, cpuUs: cpu.user + cpu.system, waitShare });
}

/** This thread's time spent runnable but not running, in ns (/proc/thread-self/schedstat; 0 elsewhere). */
function runWaitNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Messages published before the timed part of a pub/sub run of `n` (BENCH_WARMUP, capped at n). */
function pubsubWarmup(n: number): number {
  const w = Number(process.env['BENCH_WARMUP'] ?? 20_000);
  return Number.isFinite(w) && w > 0 ? Math.min(Math.round(w), n) : 0;
}

/**
 * A subscriber: counts what arrives until the end marker, from the first message of the timed part
 * (warm-up messages carry an earlier ts); rate from its first counted message to its last clock
 * reading (every 64th), CPU from the first counted message to the end marker (per message
 * received, it grows when the subscriber is lapped).
 */
async function pubsubSubscriber(variant: Variant, target: string): Promise<void> {
  let received = 0;
  let first = 0;
  let last = 0;
  /** Messages counted before the last clock reading (the rate's span ends there). */
  let atLast = 0;
  let cpu0 = process.cpuUsage();
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => {
    done = r;
  });
  let timed = false;
  /** Ferry: times the subscriber was woken from sleep, from the first timed message to the end marker. */
  let wakeups = 0;
  let wakes0 = 0;
  let wakes: () => number = () => 0;
  const onValue = (v: unknown) => {
    if ((v as { end?: boolean }).end) {
      done();
      return;
    }
    if ((v as { ts: number }).ts < 1_700_000_000_000) return;
    if (!timed) {
      timed = true;
      cpu0 = process.cpuUsage();
      wakes0 = wakes();
    }
    // The clock at the first message and then every 64th, the same for every variant: read per
    // message it was a fifth of a fast subscriber's CPU (0.17 µs per message in all, topic10), the
    // bench weighing on what it measures. The rate runs to the last reading, over the messages
    // counted by then.
    if (received === 0) first = performance.now();
    else if ((received & 63) === 0) {
      last = performance.now();
      atLast = received;
    }
    received++;
  };
  if (variant === 'ferry') {
    const sub = await subscribe(target, { onMessage: onValue });
    process.send?.({ ready: true });
    wakes = () => sub.notifierStats.wakeups;
    await finished;
    wakeups = wakes() - wakes0;
    await sub.close();
  } else {
    const zmq = await import('zeromq');
    const sock = new zmq.Subscriber();
    sock.connect(target);
    sock.subscribe();
    const unpackr = new Unpackr();
    process.send?.({ ready: true });
    void (async () => {
      for await (const [m] of sock) onValue(unpackr.unpack(m as Buffer));
    })();
    await finished;
    sock.close();
  }
  const cpu = process.cpuUsage(cpu0);
  const secs = (last - first) / 1000;
  process.send?.({ received, rate: secs > 0 ? atLast / secs : 0, cpuUs: cpu.user + cpu.system, wakeups });
}

async function measurePubsub(
  shown: Shown,
  subscribers: number,
  n: number,
  dir: string,
  k: number,
  baseEnv: NodeJS.ProcessEnv,
): Promise<{
  pubRate: number;
  subRate: number;
  receivedShare: number;
  subCpuUsPerMsg: number;
  /** Ferry: wake-ups from sleep per 1,000 messages received (median subscriber). */
  subWakesPerKMsg: number;
  pubCpuUsPerMsg: number;
  /** Share of the publisher's timed part spent waiting for a CPU (runnable, not running). */
  pubWaitShare: number;
}> {
  const { variant, env } = runAs(shown, baseEnv);
  const target = variant === 'ferry' ? `bench-${k}` : `ipc://${join(dir, `zmq-pub-${k}.ipc`)}`;
  const pub = child(['ppub', variant, target, String(n)], env);
  const subs: ChildProcess[] = [];
  try {
    await message(pub, 60_000);
    for (let i = 0; i < subscribers; i++) subs.push(child(['psub', variant, target], env));
    await Promise.all(subs.map((s) => message(s, 60_000)));
    // zeromq subscriptions reach the publisher asynchronously (its "slow joiner"): give them time.
    await new Promise((r) => setTimeout(r, 300));
    const results = subs.map(
      (s) =>
        message(s, 300_000) as Promise<{ received: number; rate: number; cpuUs: number; wakeups: number }>,
    );
    pub.send('go');
    const p = (await message(pub, 300_000)) as { rate: number; cpuUs: number; waitShare: number };
    const r = await Promise.all(results);
    return {
      pubRate: p.rate,
      subRate: median(r.map((x) => x.rate)),
      receivedShare: median(r.map((x) => x.received / n)),
      subCpuUsPerMsg: median(r.map((x) => x.cpuUs / Math.max(1, x.received))),
      subWakesPerKMsg: median(r.map((x) => (1000 * (x.wakeups ?? 0)) / Math.max(1, x.received))),
      pubCpuUsPerMsg: p.cpuUs / n,
      pubWaitShare: p.waitShare,
    };
  } finally {
    pub.kill('SIGKILL');
    for (const s of subs) s.kill('SIGKILL');
  }
}

async function ferryClient(workload: Workload, target: string, n: number): Promise<Omit<Result, 'cpuUs'>> {
  const big = workload === 'bulk' ? 4 * 1024 * 1024 : 0;
  const ch = await connectMessages(target, big ? { rxFifoSize: big, txFifoSize: big } : {});
  const bulk = Buffer.alloc(BULK_BYTES, 0x5a);
  try {
    if (workload === 'rtt') {
      let atTimed: ExpectCounts | null = null;
      const r = await roundTrips(
        n,
        (v) => ch.request(v),
        () => {
          atTimed = { ...ch.roundTripStats.reply };
        },
      );
      const reply = ch.roundTripStats.reply;
      const t0 = atTimed as ExpectCounts | null;
      const timedPolled =
        t0 === null
          ? Number.NaN
          : reply.polledPeerPolling + reply.polledPeerAsleep - t0.polledPeerPolling - t0.polledPeerAsleep;
      const request = (await ch.request('rtt-stats')) as typeof reply;
      const share = (s: typeof reply) => +(s.foundPolling / (s.foundPolling + s.foundWoken)).toFixed(3);
      const polled = reply.polledPeerPolling + reply.polledPeerAsleep;
      const chosen = polled + reply.sleptPeerPolling + reply.sleptPeerAsleep;
      return {
        ...r,
        replyFoundPolling: share(reply),
        requestFoundPolling: share(request),
        replyPollChoice: +(polled / chosen).toFixed(3),
        timedReplyPollChoice: +(timedPolled / n).toFixed(3),
        contendedPerRtt: +(ch.roundTripStats.notifier.contendedTurns / chosen).toFixed(3),
        awakeWaitShare: (({ awakeWaitedMs, awakeMs }) => +(awakeWaitedMs / awakeMs).toFixed(3))(
          ch.roundTripStats.notifier.runWait,
        ),
        runnableMean: (({ runnableSum, samples }) => +(runnableSum / samples).toFixed(2))(
          ch.roundTripStats.notifier.runQueue,
        ),
        pollWaitShare: (({ pollWaitedMs, pollMs }) => +(pollWaitedMs / pollMs).toFixed(3))(
          ch.roundTripStats.notifier.polling,
        ),
        pollContendedShare: (({ contendedDecisions, decisions }) =>
          +(contendedDecisions / decisions).toFixed(3))(ch.roundTripStats.notifier.polling),
        pollUsPerRtt: +((1000 * ch.roundTripStats.notifier.polling.pollMs) / chosen).toFixed(2),
        ...(process.env['BENCH_RTT_DETAIL'] === '1' ? { detail: rttDetail(ch.roundTripStats, request) } : {}),
      };
    }
    const warm = warmupOf(workload, n);
    for (let i = 0; i < warm; i++) if (!ch.send(smallObject(i))) await ch.ready();
    if (warm > 0 && (await ch.request('count')) !== warm) throw new Error('warm-up lost messages');
    markTimedStart();
    const t0 = performance.now();
    if (workload === 'bulk') {
      // The loan API: the payload is written in place in the fifo (a fill stands for producing it).
      for (let i = 0; i < n; i++) {
        const loan = ch.loan(BULK_BYTES);
        loan.bytes.fill(i & 0xff);
        if (!loan.commit(i)) await ch.ready();
      }
    } else {
      for (let i = 0; i < n; i++) {
        if (!ch.send(payload(workload, i, bulk))) await ch.ready();
      }
    }
    const got = await ch.request('count');
    const rate = (n / (performance.now() - t0)) * 1000;
    if (got !== n + warm) throw new Error(`server counted ${String(got)} of ${n + warm}`);
    const rx = (await ch.request('rx-stats')) as typeof ch.roundTripStats.notifier;
    const perK = (x: number) => +((1000 * x) / (n + warm)).toFixed(3);
    return {
      rate,
      rxWakesPerKMsg: perK(rx.wakeups),
      rxContendedPerKMsg: perK(rx.contendedTurns),
      rxAwakeWaitShare: +(rx.runWait.awakeWaitedMs / rx.runWait.awakeMs).toFixed(3),
    };
  } finally {
    await ch.close();
  }
}

/** Polled and slept expectations by the peer's state (MessageChannel.roundTripStats). */
interface ExpectCounts {
  polledPeerPolling: number;
  polledPeerAsleep: number;
  sleptPeerPolling: number;
  sleptPeerAsleep: number;
}

/** --rtt-detail: both ends' expectation counters and budgets, and the client's notifier counts. */
function rttDetail(
  stats: { reply: object; notifier: { preemptions: number; wakeups: number; contendedTurns: number } },
  request: object,
): string {
  const { preemptions, wakeups, contendedTurns } = stats.notifier;
  return JSON.stringify({ reply: stats.reply, request, preemptions, wakeups, contendedTurns });
}

async function netClient(workload: Workload, target: string, n: number): Promise<Omit<Result, 'cpuUs'>> {
  const s = net.connect(target);
  await new Promise((r) => s.once('connect', r));
  const out = new PackrStream(MP);
  out.pipe(s);
  const inp = new UnpackrStream(MP);
  s.pipe(inp);
  const replies: ((v: unknown) => void)[] = [];
  inp.on('data', (v: unknown) => replies.shift()?.(v));
  const ask = (v: unknown) =>
    new Promise<unknown>((resolve) => {
      replies.push(resolve);
      out.write(v);
    });
  const bulk = Buffer.alloc(BULK_BYTES, 0x5a);
  try {
    if (workload === 'rtt') return await roundTrips(n, ask);
    const warm = warmupOf(workload, n);
    for (let i = 0; i < warm; i++) {
      out.write(smallObject(i));
      if (s.writableNeedDrain) await new Promise((r) => s.once('drain', r));
    }
    if (warm > 0 && (await ask('count')) !== warm) throw new Error('warm-up lost messages');
    markTimedStart();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      // PackrStream pushes into the socket: wait on the socket's own backpressure.
      out.write(payload(workload, i, bulk));
      if (s.writableNeedDrain) await new Promise((r) => s.once('drain', r));
    }
    const got = await ask('count');
    if (got !== n + warm) throw new Error(`server counted ${String(got)} of ${n + warm}`);
    return { rate: (n / (performance.now() - t0)) * 1000 };
  } finally {
    s.destroy();
  }
}

async function zmqClient(workload: Workload, target: string, n: number): Promise<Omit<Result, 'cpuUs'>> {
  const zmq = await import('zeromq');
  const sock = new zmq.Pair();
  sock.connect(target);
  const packr = new Packr(MP);
  const unpackr = new Unpackr(MP);
  const ask = async (v: unknown) => {
    await sock.send(packr.pack(v));
    const [m] = await sock.receive();
    return unpackr.unpack(m as Buffer);
  };
  const bulk = Buffer.alloc(BULK_BYTES, 0x5a);
  try {
    if (workload === 'rtt') return await roundTrips(n, ask);
    const warm = warmupOf(workload, n);
    for (let i = 0; i < warm; i++) await sock.send(packr.pack(smallObject(i)));
    if (warm > 0 && (await ask('count')) !== warm) throw new Error('warm-up lost messages');
    markTimedStart();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await sock.send(packr.pack(payload(workload, i, bulk)));
    const got = await ask('count');
    if (got !== n + warm) throw new Error(`server counted ${String(got)} of ${n + warm}`);
    return { rate: (n / (performance.now() - t0)) * 1000 };
  } finally {
    sock.close();
  }
}

/**
 * `n` timed round trips after `--warmup` untimed ones (default 20,000) of the same loop, every
 * variant alike: a warm-up in a loop of its own (1,000 round trips until session 7) left the timed
 * loop to be compiled while it was timed, and its p50 and p99 measured the JIT as much as the
 * transport (tail1 found p99 0.6-2.8 ms fall to 31-77 us with this warm-up).
 */
async function roundTrips(
  n: number,
  ask: (v: unknown) => Promise<unknown>,
  onTimed?: () => void,
): Promise<Omit<Result, 'cpuUs'>> {
  const warm = warmupOf('rtt', n);
  const us: number[] = new Array(n);
  let t0 = 0;
  for (let k = 0; k < warm + n; k++) {
    if (k === warm) {
      onTimed?.();
      markTimedStart();
      t0 = performance.now();
    }
    const a = performance.now();
    await ask(smallObject(k));
    const d = (performance.now() - a) * 1000;
    if (k >= warm) us[k - warm] = d;
  }
  const rate = (n / (performance.now() - t0)) * 1000;
  us.sort((a, b) => a - b);
  return { rate, p50Us: us[Math.floor(n * 0.5)] ?? 0, p99Us: us[Math.floor(n * 0.99)] ?? 0 };
}

// ---------------------------------------------------------------- driver

/** Node flags for the client and server processes (NODE_OPTIONS refuses --cpu-prof): profiling. */
const CHILD_EXEC_ARGV = (process.env['FERRY_BENCH_CHILD_ARGS'] ?? '').split(' ').filter((a) => a !== '');

function child(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return fork(SELF, args, {
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...process.execArgv, ...CHILD_EXEC_ARGV],
  });
}

/**
 * `--pin`: the client on CPU 0 and the server on CPU 1, every thread (taskset -a): each end then
 * has a vCPU the other never takes. Without it, on a machine with no idle vCPU the scheduler puts
 * the end woken by a ring on the ringer's vCPU (wake9), where a polling ringer holds it off
 * (msgs14): the setting tells that placement from the rest.
 */
function pinSelf(role: 'client' | 'server'): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', role === 'client' ? '0' : '1', String(process.pid)], {
    stdio: 'ignore',
  });
  if (r.status !== 0)
    process.stderr.write(`--pin: taskset failed (${r.error?.message ?? r.status}), not pinned\n`);
}

/** Resolves when `p` has exited, or after `ms`. */
function exited(p: ChildProcess, ms: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** CPU per operation, whole and over the timed part by process (us). */
interface Measured {
  cpuUsPerOp: number;
  clientUsPerOp: number;
  serverUsPerOp: number;
  daemonUsPerOp: number;
}

function message(
  p: ChildProcess,
  timeoutMs: number,
  accept: (m: unknown) => boolean = () => true,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child timed out')), timeoutMs);
    const onMessage = (m: unknown) => {
      if (!accept(m)) return;
      p.off('message', onMessage);
      clearTimeout(timer);
      resolve(m);
    };
    p.on('message', onMessage);
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited ${code}`));
    });
  });
}

function targetOf(variant: Variant, dir: string, k: number): string {
  if (variant === 'ferry') return 'tcp://127.0.0.1:0';
  if (variant === 'net') return join(dir, `net-${k}.sock`);
  return `ipc://${join(dir, `zmq-${k}.ipc`)}`;
}

async function measure(
  shown: Shown,
  workload: Workload,
  n: number,
  dir: string,
  k: number,
  baseEnv: NodeJS.ProcessEnv,
  daemon: ChildProcess,
): Promise<Result & Measured> {
  const { variant, env } = runAs(shown, baseEnv);
  const server = child(['server', variant, workload, targetOf(variant, dir, k)], env);
  try {
    const { target } = (await message(server, 60_000)) as { target: string };
    const before = [cpuUsOf(server.pid), cpuUsOf(daemon.pid)];
    const c = child(['client', variant, workload, target, String(n)], env);
    // The server's and ferryd's CPU from the start of the timed part (the client says when).
    let atMark: number[] | null = null;
    c.on('message', (m: { mark?: boolean }) => {
      if (m?.mark) atMark = [cpuUsOf(server.pid), cpuUsOf(daemon.pid)];
    });
    const res = (await message(c, 300_000, (m) => !(m as { mark?: boolean })?.mark)) as Result;
    const after = [cpuUsOf(server.pid), cpuUsOf(daemon.pid)];
    const others = (after[0] ?? 0) - (before[0] ?? 0) + ((after[1] ?? 0) - (before[1] ?? 0));
    // A profiled client exits by itself once its channel closes, then writes its profile: a
    // SIGTERM then (its handlers already gone) would kill it half way through the write.
    if (CHILD_EXEC_ARGV.length > 0) await exited(c, 30_000);
    c.kill();
    const mark = atMark as number[] | null;
    return {
      ...res,
      // Whole processes (start-up included) over every message they carried, warm-up included.
      cpuUsPerOp: (res.cpuUs + others) / (n + warmupOf(workload, n)),
      clientUsPerOp: res.loopCpuUs !== undefined ? res.loopCpuUs / n : Number.NaN,
      serverUsPerOp: mark ? ((after[0] ?? 0) - (mark[0] ?? 0)) / n : Number.NaN,
      daemonUsPerOp: mark ? ((after[1] ?? 0) - (mark[1] ?? 0)) / n : Number.NaN,
    };
  } finally {
    // Profiled children write their profile on exit (SIGTERM makes them exit, see main).
    server.kill(CHILD_EXEC_ARGV.length > 0 ? 'SIGTERM' : 'SIGKILL');
  }
}

/** Over the finite samples only (a round that failed reports NaN). */
const median = (xs: number[]): number => medianOf(xs.filter((x) => Number.isFinite(x)));

async function zmqAvailable(): Promise<string | null> {
  try {
    await import('zeromq');
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

async function main(): Promise<void> {
  const role = process.argv[2];
  if (process.env['BENCH_PIN'] === '1' && (role === 'client' || role === 'server')) pinSelf(role);
  if (role !== undefined && CHILD_EXEC_ARGV.length > 0) process.on('SIGTERM', () => process.exit(0));
  if (role === 'server') {
    await serve(process.argv[3] as Variant, process.argv[4] as Workload, process.argv[5] ?? '');
    return;
  }
  if (role === 'ppub') {
    await pubsubPublisher(process.argv[3] as Variant, process.argv[4] ?? '', Number(process.argv[5]));
    return;
  }
  if (role === 'psub') {
    await pubsubSubscriber(process.argv[3] as Variant, process.argv[4] ?? '');
    return;
  }
  if (role === 'client') {
    const r = await client(
      process.argv[3] as Variant,
      process.argv[4] as Workload,
      process.argv[5] ?? '',
      Number(process.argv[6]),
    );
    process.send?.(r);
    return;
  }
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      scale: { type: 'string', default: '1' },
      case: { type: 'string', default: 'oneway,rtt,bulk,pubsub' },
      json: { type: 'boolean', default: false },
      variants: { type: 'string', default: 'net,zmq,ferry,ferry-interrupt' },
      warmup: { type: 'string', default: '20000' },
      'oneway-warmup': { type: 'string', default: '100000' },
      'pace-ns': { type: 'string', default: '0' },
      pin: { type: 'boolean', default: false },
      'rtt-detail': { type: 'boolean', default: false },
    },
  });
  if (values.pin) {
    if (availableParallelism() < 2) throw new Error('--pin needs 2 CPUs');
    process.env['BENCH_PIN'] = '1';
  }
  if (values['rtt-detail']) process.env['BENCH_RTT_DETAIL'] = '1';
  const rounds = Number(values.rounds);
  const scale = Number(values.scale);
  const all = String(values.case).split(',');
  const cases = all.filter((c) => c !== 'pubsub') as Workload[];
  const pubsub = all.includes('pubsub');
  const warmup = Number(values.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new Error(`--warmup must be a whole number of messages, got '${values.warmup}'`);
  }
  process.env['BENCH_WARMUP'] = String(warmup);
  const onewayWarmup = Number(values['oneway-warmup']);
  if (!Number.isInteger(onewayWarmup) || onewayWarmup < 0) {
    throw new Error(`--oneway-warmup must be a whole number of messages, got '${values['oneway-warmup']}'`);
  }
  process.env['BENCH_ONEWAY_WARMUP'] = String(onewayWarmup);
  const paceNs = Number(values['pace-ns']);
  if (!Number.isFinite(paceNs) || paceNs < 0) {
    throw new Error(`--pace-ns must be a number of nanoseconds >= 0, got '${values['pace-ns']}'`);
  }
  process.env['BENCH_PACE_NS'] = String(paceNs);
  const counts: Record<Workload, number> = {
    oneway: Math.round(300_000 * scale),
    rtt: Math.round(10_000 * scale),
    bulk: Math.round(1000 * scale),
  };
  const zmqMissing = await zmqAvailable();
  const asked = String(values.variants).split(',') as Shown[];
  const variants = asked.filter((v) => !(zmqMissing && v === 'zmq'));
  if (zmqMissing) console.error(`zeromq is not usable here, measured without it: ${zmqMissing}`);

  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-msg-'));
  const socket = join(dir, 'ferryd.sock');
  const env = { ...process.env, FERRY_SOCKET: socket };
  const daemon = fork(FERRY, ['daemon', '--socket', socket], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    daemon.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) resolve();
    });
    daemon.once('exit', (c) => reject(new Error(`ferryd exited ${c}`)));
  });
  const samples = new Map<string, (Result & Measured)[]>();
  const psSamples = new Map<string, Awaited<ReturnType<typeof measurePubsub>>[]>();
  const psVariants = variants.filter((v) => v !== 'net');
  let k = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const w of cases) {
        for (const v of variants) {
          let res: Result & Measured;
          try {
            res = await measure(v, w, counts[w], dir, k++, env, daemon);
          } catch (err) {
            // A loaded machine can starve a process past the timeouts: record the miss, go on.
            process.stderr.write(`round ${round + 1} ${w} ${v}: failed: ${(err as Error).message}\n`);
            continue;
          }
          const key = `${w}|${v}`;
          samples.set(key, [...(samples.get(key) ?? []), res]);
          if (!values.json) process.stderr.write(`round ${round + 1} ${w} ${v}: ${JSON.stringify(res)}\n`);
        }
      }
      if (!pubsub) continue;
      for (const subs of [1, 2, 4, 8]) {
        for (const v of psVariants) {
          let res: Awaited<ReturnType<typeof measurePubsub>>;
          try {
            res = await measurePubsub(v, subs, Math.round(200_000 * scale), dir, k++, env);
          } catch (err) {
            process.stderr.write(
              `round ${round + 1} pubsub x${subs} ${v}: failed: ${(err as Error).message}\n`,
            );
            continue;
          }
          const key = `${subs}|${v}`;
          psSamples.set(key, [...(psSamples.get(key) ?? []), res]);
          if (!values.json)
            process.stderr.write(`round ${round + 1} pubsub x${subs} ${v}: ${JSON.stringify(res)}\n`);
        }
      }
    }
  } finally {
    daemon.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const table = [];
  for (const w of cases) {
    const base = samples.get(`${w}|net`) ?? [];
    const baseRate = median(base.map((r) => r.rate));
    const baseP50 = median(base.map((r) => r.p50Us ?? Number.NaN));
    const baseP99 = median(base.map((r) => r.p99Us ?? Number.NaN));
    const baseCpu = median(base.map((r) => r.cpuUsPerOp));
    for (const v of variants) {
      const s = samples.get(`${w}|${v}`) ?? [];
      const rate = median(s.map((r) => r.rate));
      const p50 = median(s.map((r) => r.p50Us ?? Number.NaN));
      const p99 = median(s.map((r) => r.p99Us ?? Number.NaN));
      const cpu = median(s.map((r) => r.cpuUsPerOp));
      table.push({
        case: w,
        variant: v,
        rate: Math.round(rate),
        xRate: +(rate / baseRate).toFixed(2),
        ...(w === 'rtt'
          ? {
              p50Us: +p50.toFixed(1),
              xP50: +(p50 / baseP50).toFixed(2),
              p99Us: +p99.toFixed(1),
              xP99: +(p99 / baseP99).toFixed(2),
            }
          : {}),
        cpuUsPerOp: +cpu.toFixed(2),
        xCpu: +(cpu / baseCpu).toFixed(2),
        ...(w === 'rtt' && s.some((r) => r.replyFoundPolling !== undefined)
          ? {
              replyFoundPolling: +median(s.map((r) => r.replyFoundPolling ?? Number.NaN)).toFixed(3),
              requestFoundPolling: +median(s.map((r) => r.requestFoundPolling ?? Number.NaN)).toFixed(3),
              replyPollChoice: +median(s.map((r) => r.replyPollChoice ?? Number.NaN)).toFixed(3),
              timedReplyPollChoice: +median(s.map((r) => r.timedReplyPollChoice ?? Number.NaN)).toFixed(3),
              contendedPerRtt: +median(s.map((r) => r.contendedPerRtt ?? Number.NaN)).toFixed(3),
              awakeWaitShare: +median(s.map((r) => r.awakeWaitShare ?? Number.NaN)).toFixed(3),
              runnableMean: +median(s.map((r) => r.runnableMean ?? Number.NaN)).toFixed(2),
              pollWaitShare: +median(s.map((r) => r.pollWaitShare ?? Number.NaN)).toFixed(3),
              pollContendedShare: +median(s.map((r) => r.pollContendedShare ?? Number.NaN)).toFixed(3),
              pollUsPerRtt: +median(s.map((r) => r.pollUsPerRtt ?? Number.NaN)).toFixed(2),
            }
          : {}),
        // Timed part only, by process: what a message costs each side once running.
        ...(w !== 'rtt' && s.some((r) => r.rxWakesPerKMsg !== undefined)
          ? {
              rxWakesPerKMsg: +median(s.map((r) => r.rxWakesPerKMsg ?? Number.NaN)).toFixed(3),
              rxContendedPerKMsg: +median(s.map((r) => r.rxContendedPerKMsg ?? Number.NaN)).toFixed(3),
              rxAwakeWaitShare: +median(s.map((r) => r.rxAwakeWaitShare ?? Number.NaN)).toFixed(3),
            }
          : {}),
        clientUs: +median(s.map((r) => r.clientUsPerOp)).toFixed(2),
        serverUs: +median(s.map((r) => r.serverUsPerOp)).toFixed(2),
        daemonUs: +median(s.map((r) => r.daemonUsPerOp)).toFixed(2),
      });
    }
  }
  const psTable = [];
  for (const subs of pubsub ? [1, 2, 4, 8] : []) {
    const zmqSub = median((psSamples.get(`${subs}|zmq`) ?? []).map((r) => r.subRate));
    for (const v of psVariants) {
      const s = psSamples.get(`${subs}|${v}`) ?? [];
      const subRate = median(s.map((r) => r.subRate));
      psTable.push({
        subscribers: subs,
        variant: v,
        pubRate: Math.round(median(s.map((r) => r.pubRate))),
        subRate: Math.round(subRate),
        xZmqSub: +(subRate / zmqSub).toFixed(2),
        received: +median(s.map((r) => r.receivedShare)).toFixed(3),
        subCpuUsPerMsg: +median(s.map((r) => r.subCpuUsPerMsg)).toFixed(2),
        subWakesPerKMsg: +median(s.map((r) => r.subWakesPerKMsg)).toFixed(1),
        pubCpuUsPerMsg: +median(s.map((r) => r.pubCpuUsPerMsg)).toFixed(2),
        pubWaitShare: +median(s.map((r) => r.pubWaitShare)).toFixed(2),
      });
    }
  }
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          rounds,
          scale,
          counts,
          onewayWarmup: warmup,
          pubsubWarmup: warmup,
          zmq: zmqMissing ?? 'yes',
          table,
          pubsub: psTable,
        },
        null,
        2,
      ),
    );
  } else {
    console.table(table);
    if (psTable.length > 0) console.table(psTable);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
