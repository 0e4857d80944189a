/**
 * What a message round trip costs the messages layer itself: the client and the server channel in
 * one process (one attachment, one thread), so that a round trip is their whole JS work, both ends,
 * plus one loop turn, without wake-ups and without the scheduler's say. Reports per round trip the
 * main thread's CPU (/proc/thread-self/schedstat), the process's CPU and wall time, and with
 * --heap the bytes allocated (V8's sampling heap profiler, collected objects included: a figure
 * the machine's load does not move). Not a latency: two processes are messages.js's RTT case.
 *
 *   node examples/dist/bench/messages-cost.js [--case rtt|oneway] [--mode poll|adaptive|interrupt]
 *     [--n 150000] [--warmup 30000] [--rounds 3] [--heap] [--json]
 *
 * `--case oneway`: the client sends n one-way messages (messages.js's object, waiting on ready()
 * when the fifo is full) and the server counts them; per message, the sender's and the receiver's
 * JS work together (encode, frame, commit, pull, decode, deliver), without the other process's
 * scheduling that makes messages.js's one-way rate move ±30% on a loaded machine.
 *
 * The default mode is poll (the notifier spins, so a round trip never sleeps); in adaptive or
 * interrupt mode a round trip in one process also pays the doorbell and its wake. With --heap the
 * CPU figures include the profiler's own sampling (several times the rest): take CPU from a run
 * without it.
 */
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { startDaemon } from '@ferry/daemon/testing';
import { median } from './median.js';
import { wholeOption } from './whole-option.js';

const smallObject = (i: number) => ({ id: i, ts: 1_700_000_000_000 + i, name: 'sensor-7', vals: [1, 2, 3] });

/** CPU time of this thread so far, in ns (0 where schedstat is missing). */
function threadCpuNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/** Bytes a sampling profile holds (every node's self size). */
function profiledBytes(node: { selfSize: number; children: unknown[] }): number {
  let sum = node.selfSize;
  for (const c of node.children) sum += profiledBytes(c as { selfSize: number; children: unknown[] });
  return sum;
}

interface Round {
  mainUs: number;
  cpuUs: number;
  wallUs: number;
  bytes?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      case: { type: 'string', default: 'rtt' },
      mode: { type: 'string', default: 'poll' },
      n: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      heap: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const mode = String(values.mode);
  if (!['poll', 'adaptive', 'interrupt'].includes(mode)) {
    process.stderr.write(`messages-cost: --mode must be poll, adaptive or interrupt, got ${mode}\n`);
    process.exit(2);
  }
  const kind = String(values.case);
  if (kind !== 'rtt' && kind !== 'oneway') {
    process.stderr.write(`messages-cost: --case must be rtt or oneway, got ${kind}\n`);
    process.exit(2);
  }
  const n = Math.max(1, wholeOption(values.n, kind === 'oneway' ? 1_000_000 : 150_000, 'n', 'messages-cost'));
  const warmup = wholeOption(values.warmup, 30_000, 'warmup', 'messages-cost');
  const rounds = Math.max(1, wholeOption(values.rounds, 3, 'rounds', 'messages-cost'));
  // Read when the SDK attaches (below), after ferryd is up.
  process.env['FERRY_MODE'] = mode;
  const daemon = await startDaemon();
  process.env['FERRY_SOCKET'] = daemon.socket;
  const { connectMessages, createMessageServer } = await import('@ferry/sdk/messages');
  // One-way: the server counts, and resolves `arrived` once `awaited` messages are in.
  let received = 0;
  let awaited = 0;
  let arrived: () => void = () => {};
  const server = createMessageServer({
    onRequest: (v) => v,
    onMessage: () => {
      if (++received === awaited) arrived();
    },
  }).listen('tcp://127.0.0.1:0');
  const out: Round[] = [];
  try {
    await server.ready();
    const uri = server.uri;
    if (uri === null) throw new Error('the message server is not listening');
    const ch = await connectMessages(uri);
    // One loop for the warm-up and the timed part, as messages.js's RTT case (its code is compiled
    // by the time it is timed).
    const roundTrips = async (count: number, from: number): Promise<void> => {
      for (let i = 0; i < count; i++) await ch.request(smallObject(from + i));
    };
    const oneWay = async (count: number, from: number): Promise<void> => {
      const all = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      awaited = received + count;
      for (let i = 0; i < count; i++) if (!ch.send(smallObject(from + i))) await ch.ready();
      await all;
    };
    const loop = kind === 'oneway' ? oneWay : roundTrips;
    await loop(warmup, 0);
    for (let r = 0; r < rounds; r++) {
      let session: Session | null = null;
      if (values.heap) {
        session = new Session();
        session.connect();
        await session.post('HeapProfiler.startSampling', {
          samplingInterval: 256,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
      }
      const main0 = threadCpuNs();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await loop(n, warmup + r * n);
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const round: Round = {
        mainUs: +((threadCpuNs() - main0) / 1000 / n).toFixed(3),
        cpuUs: +((cpu.user + cpu.system) / n).toFixed(3),
        wallUs: +((wallMs * 1000) / n).toFixed(3),
      };
      if (session !== null) {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        round.bytes = Math.round(
          profiledBytes(profile.head as { selfSize: number; children: unknown[] }) / n,
        );
        session.disconnect();
      }
      out.push(round);
      if (!values.json) console.error(`round ${r + 1}: ${JSON.stringify(round)}`);
    }
    await ch.close();
  } finally {
    await server.close();
    await daemon.stop();
  }
  const med = (k: keyof Round) =>
    median(out.map((x) => x[k] ?? Number.NaN).filter((x) => Number.isFinite(x)));
  const per = kind === 'oneway' ? 'Msg' : 'Rtt';
  const summary = {
    case: kind,
    mode,
    n,
    warmup,
    rounds,
    // Per round trip (rtt) or per message (oneway).
    [`mainUsPer${per}`]: med('mainUs'),
    [`cpuUsPer${per}`]: med('cpuUs'),
    [`wallUsPer${per}`]: med('wallUs'),
    ...(values.heap ? { [`bytesPer${per}`]: med('bytes') } : {}),
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  if (values.json) console.log(JSON.stringify({ summary, rounds: out }));
  else console.table([summary]);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
