/**
 * `npm run bench`: cut-through sessions against node:net over a unix socket and over TCP
 * loopback, in one run, several interleaved rounds, medians and ratios to the unix socket.
 * The remote path (SDK app -> ferryd A -> TCP -> ferryd B -> SDK app: two ferryd on one machine
 * model two hosts) is measured in the same run and compared with TCP loopback.
 * Every measurement is a fresh server and client process pair (`ferry perf`), so a spinning
 * poll-mode app never runs beside another measurement. Bounded: fixed counts and a timeout each.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median as medianOf } from './median.js';
import { cpuUsOf } from './proc-cpu.js';
import {
  activity,
  describeIntervals,
  describeThread,
  SchedTrace,
  sweepStale,
  type Trace,
  threadsOf,
} from './sched-trace.js';
import { wholeOption } from './whole-option.js';

const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));
const HTTP = fileURLToPath(new URL('./http.js', import.meta.url));

interface Case {
  name: string;
  workload: 'throughput' | 'rate' | 'rtt' | 'cps' | 'http';
  count: number;
  size: number;
  concurrency?: number;
  /** stack/mode variants measured for this case. */
  variants: Variant[];
}
interface Variant {
  label: string;
  stack: 'ferry' | 'net';
  mode?: 'interrupt' | 'poll' | 'adaptive';
  net?: 'unix' | 'tcp';
  /** The server attaches to the second ferryd: the client's ferryd reaches it over TCP. */
  remote?: boolean;
  /** `tcp://` mode of both apps (FERRY_TCP_MODE): relay through ferryd, or the kernel socket handed over. */
  tcpMode?: 'relay' | 'handoff';
}

const UNIX: Variant = { label: 'unix socket', stack: 'net', net: 'unix' };
const TCP: Variant = { label: 'tcp loopback', stack: 'net', net: 'tcp' };
const ct = (mode: 'interrupt' | 'poll' | 'adaptive'): Variant => ({
  label: `ferry ct ${mode}`,
  stack: 'ferry',
  mode,
});

const remote = (mode: 'interrupt' | 'adaptive'): Variant => ({
  label: `ferry remote ${mode}`,
  stack: 'ferry',
  mode,
  remote: true,
  tcpMode: 'relay',
});

/** Both ferryd decide and connect; the apps get the kernel sockets (the notifier mode is moot). */
const HANDOFF: Variant = {
  label: 'ferry remote handoff',
  stack: 'ferry',
  remote: true,
  tcpMode: 'handoff',
};

function cases(scale: number): Case[] {
  return [
    {
      name: 'stream GB/s (256 KiB writes)',
      workload: 'throughput',
      count: Math.round(1024 * 1024 * 1024 * scale),
      size: 256 * 1024,
      variants: [UNIX, TCP, ct('adaptive'), ct('poll'), remote('interrupt'), remote('adaptive'), HANDOFF],
    },
    {
      name: '64 B messages/s (one per write)',
      workload: 'rate',
      count: Math.round(500_000 * scale),
      size: 64,
      variants: [UNIX, TCP, ct('adaptive'), ct('poll')],
    },
    {
      name: 'RTT 64 B (us)',
      workload: 'rtt',
      count: Math.round(10_000 * scale),
      size: 64,
      variants: [
        UNIX,
        TCP,
        ct('interrupt'),
        ct('adaptive'),
        ct('poll'),
        remote('interrupt'),
        remote('adaptive'),
        HANDOFF,
      ],
    },
    {
      name: 'connections/s (connect, 64 B echo, close)',
      workload: 'cps',
      // 10,000: 3,000 took ~73 ms on a quiet fast kernel, while the server is sampled in 10 ms ticks.
      count: Math.round(10_000 * scale),
      size: 64,
      concurrency: 8,
      variants: [UNIX, TCP, ct('adaptive'), remote('interrupt'), remote('adaptive'), HANDOFF],
    },
    {
      // node:http server, undici Pool client with 8 connections, one request in flight on each.
      name: 'HTTP req/s, 16 B bodies (undici, 8 conns)',
      workload: 'http',
      count: Math.round(20_000 * scale),
      size: 16,
      concurrency: 8,
      variants: [UNIX, TCP, ct('adaptive'), ct('interrupt'), ct('poll')],
    },
    {
      name: 'HTTP req/s, 64 KiB bodies (undici, 8 conns)',
      workload: 'http',
      count: Math.round(10_000 * scale),
      size: 64 * 1024,
      concurrency: 8,
      variants: [UNIX, TCP, ct('adaptive'), ct('interrupt'), ct('poll')],
    },
  ];
}

/**
 * Unmeasured round trips before an RTT case's measured ones. V8 goes on compiling the round trip's
 * code (TurboFan, on its worker threads) long after the first few thousand: after 2,000 the client
 * still ran 38-41 compile jobs during the 10,000 measured round trips, Ferry's server's helper
 * threads 34-57 ms of CPU, and each job takes a CPU from the client or the server on 2 vCPUs: the
 * p99.9 measured the JIT (BENCHMARKS.md, tail1, session 7). After 20,000, the server's helper
 * threads ran ~0.1 ms and the client's few remaining jobs are rare paths (a fifo's wrap).
 */
const RTT_WARMUP = 20_000;
/**
 * Unmeasured connections before a connections/s case's measured ones, for every variant alike: each
 * round starts a fresh server and client, and their first connections compile the code (over Ferry
 * they also attach and take the first pools), which a long-running server does not pay per
 * connection. Ferry's longer JavaScript path takes longer to reach its steady state than node:net's:
 * CPU per connection against a unix socket, 3 rounds each at load 9-13 (BENCHMARKS.md, conn7): 1.55x
 * after 0 and after 2,000 warm-up connections, 1.24x after 5,000, 0.74x after 10,000, 0.83x after
 * 20,000; node:net's own stayed within its noise. The warm-up's own figures are reported as well
 * (freshPerSecond, freshCpuUsPerOp): what a process that makes few connections in its life sees.
 */
const CPS_WARMUP = 10_000;
/**
 * Unmeasured HTTP requests before an HTTP case's measured ones, every stack alike. With 500 (the
 * earlier warm-up) every stack's CPU per request in the measured 20,000 was 40-45% higher and its
 * req/s a third lower than after 10,000 (tail1, session 7): the measured part was compiling
 * node:http, undici and our socket glue. A keep-alive server runs warm; the measured part should too.
 */
const HTTP_WARMUP = 10_000;

/**
 * 64 B messages sent before the measured ones, over a connection of their own to the same server,
 * every stack alike. The measured 500,000 were mostly a fresh process warming up: the sender's
 * first 30,000 writes took 10-12 ms of its ~53 ms main-thread CPU and V8's compile threads as much
 * again, while warm the same client sent 10.1 M/s (data8, session 8). An app that streams small
 * messages runs warm; the measured part should too.
 */
const RATE_WARMUP = 200_000;
/** Bytes streamed (in the case's writes) before the measured GiB, for the same reason. */
const STREAM_WARMUP = 256 * 1024 * 1024;

interface Warmups {
  cps: number;
  rtt: number;
  http: number;
  rate: number;
  stream: number;
}

function run(args: string[], env: NodeJS.ProcessEnv, script = FERRY): ChildProcess {
  return spawn(process.execPath, [...nodeFlags(), script, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** --cpu-prof for the measured processes when FERRY_BENCH_PROF names a directory. */
function nodeFlags(): string[] {
  const dir = process.env['FERRY_BENCH_PROF'];
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

function firstLine(p: ChildProcess, timeoutMs: number): Promise<string> {
  return lineReader(p)(timeoutMs);
}

/**
 * ferryd's first line is about its configuration; its socket accepts once it says 'listening'.
 * Waiting for the first line only let the first measurement race ferryd's start-up.
 */
async function listening(p: ChildProcess, timeoutMs: number): Promise<void> {
  const next = lineReader(p);
  const deadline = Date.now() + timeoutMs;
  while (!(await next(Math.max(1, deadline - Date.now()))).includes('listening'));
}

/** Reads a child's stdout line by line: each call resolves with the next line. */
function lineReader(p: ChildProcess): (timeoutMs: number) => Promise<string> {
  let buf = '';
  let exited: number | null | undefined;
  let waiter: (() => void) | null = null;
  p.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    waiter?.();
  });
  p.once('exit', (code) => {
    exited = code;
    waiter?.();
  });
  return (timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error('timed out'));
      }, timeoutMs);
      const check = () => {
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          clearTimeout(timer);
          waiter = null;
          resolve(line);
        } else if (exited !== undefined) {
          clearTimeout(timer);
          waiter = null;
          reject(new Error(`exited ${exited} before printing`));
        }
      };
      waiter = check;
      check();
    });
}

/** Units of work a run's CPU time is divided by: MiB for streams, else messages or connections. */
function opsOf(c: Case): number {
  return c.workload === 'throughput' ? c.count / (1024 * 1024) : c.count;
}

async function measure(
  c: Case,
  v: Variant,
  dir: string,
  sockets: { a: string; b: string },
  port: number,
  daemons: ChildProcess[],
  warmups: Warmups,
  schedTrace?: { file: string; round: number },
): Promise<Record<string, number>> {
  const env = {
    ...process.env,
    FERRY_SOCKET: sockets.a,
    ...(v.mode ? { FERRY_MODE: v.mode } : {}),
    ...(v.tcpMode ? { FERRY_TCP_MODE: v.tcpMode } : {}),
  };
  const serverEnv = v.remote ? { ...env, FERRY_SOCKET: sockets.b } : env;
  const uri = v.net === 'unix' ? `unix:${join(dir, `net-${port}.sock`)}` : `tcp://127.0.0.1:${port}`;
  const http = c.workload === 'http';
  const rtt = c.workload === 'rtt';
  const warmup = {
    rtt: warmups.rtt,
    cps: warmups.cps,
    rate: warmups.rate,
    throughput: warmups.stream,
    http: 0,
  }[c.workload];
  const server = http
    ? run(['server', v.stack, uri], serverEnv, HTTP)
    : run(['perf', 'server', '--uri', uri, '--stack', v.stack], serverEnv);
  try {
    await firstLine(server, 10_000);
    // The server and both ferryd are sampled around the client's run (which counts its own CPU,
    // without its start-up): every process of the path, whether the variant uses ferryd or not.
    const others = [server, ...daemons];
    const before = others.map((p) => cpuUsOf(p.pid));
    if (rtt && schedTrace) sweepStale('ferry-bench-');
    const tracing = rtt && schedTrace ? SchedTrace.start(`ferry-bench-${process.pid}`) : null;
    const client = http
      ? run(
          ['client', v.stack, uri, '--size', String(c.size), '--count', String(c.count)].concat([
            '--connections',
            String(c.concurrency ?? 8),
            '--warmup',
            String(warmups.http),
          ]),
          env,
          HTTP,
        )
      : run(
          [
            'perf',
            'client',
            '--uri',
            uri,
            '--stack',
            v.stack,
            '--workload',
            c.workload,
            '--count',
            String(c.count),
            '--size',
            String(c.size),
            '--concurrency',
            String(c.concurrency ?? 1),
            '--json',
            '--timeout-ms',
            '120000',
            // Round trips or connections before the measured ones, left out of every figure (as the
            // HTTP client's warm-up): the first ones compile the code on both sides, 10-100x slower
            // than the rest (round trips: they were the p99.9 of a run of 10,000 on their own).
            ...(warmup > 0 ? ['--warmup', String(warmup)] : []),
            ...(tracing ? ['--slowest', String(SCHED_SLOWEST)] : []),
          ],
          env,
        );
    const next = lineReader(client);
    let warmUs = 0;
    let roles = new Map<number, string>();
    let measuredFromUs = 0;
    if (http || warmup > 0) {
      // The clients say when their warm-up is over: sample the others from there.
      await next(130_000);
      others.forEach((p, i) => {
        const now = cpuUsOf(p.pid);
        warmUs += now - (before[i] ?? 0);
        before[i] = now;
      });
      if (tracing) {
        roles = threadRoles({ client, server, ferryd: daemons[0], 'ferryd B': daemons[1] });
        measuredFromUs = Number(process.hrtime.bigint()) / 1000;
      }
    }
    let trace: Trace | null = null;
    const res = JSON.parse(
      await next(130_000).finally(() => {
        trace = tracing?.stop() ?? null;
      }),
    ) as Record<string, number> & {
      warmup?: { count: number; seconds: number; cpuUs: number };
      slowest?: { index: number; atUs: number; us: number }[];
    };
    if (trace && schedTrace) {
      // The measured round trips only: not the client's sorting and printing after them.
      const seconds = typeof res['seconds'] === 'number' ? res['seconds'] : Number.POSITIVE_INFINITY;
      const window = {
        from: measuredFromUs,
        to: Math.min(Number(process.hrtime.bigint()) / 1000, measuredFromUs + seconds * 1e6),
      };
      writeSchedReport(schedTrace, c, v, res, trace, roles, client, server, window);
    }
    const usedUs = others.map((p, i) => cpuUsOf(p.pid) - (before[i] ?? 0));
    const othersUs = usedUs.reduce((a, b) => a + b, 0);
    const ops = opsOf(c);
    const { warmup: warm, slowest: _slowest, ...figures } = res;
    return {
      ...figures,
      cpuUsPerOp: ((res['cpuUs'] ?? Number.NaN) + othersUs) / ops,
      clientUsPerOp: (res['cpuUs'] ?? Number.NaN) / ops,
      serverUsPerOp: (usedUs[0] ?? Number.NaN) / ops,
      // The HTTP client's mark-compacts per 1,000 requests and main-thread GC pauses per request:
      // at 64 KiB its CPU per request follows them (http.ts, GcCounter).
      ...(res['gcMajor'] !== undefined
        ? {
            clientMajorGcPerKOp: (res['gcMajor'] * 1000) / ops,
            clientGcPauseUsPerOp: (res['gcPauseUs'] ?? Number.NaN) / ops,
          }
        : {}),
      // The HTTP client's main thread: sleeps and preemptions per 1,000 requests (http.ts). The
      // client limits the rate, and its wakes are what its transport costs it (BENCHMARKS.md, http10).
      ...(res['sleeps'] !== undefined
        ? {
            clientSleepsPerKOp: (res['sleeps'] * 1000) / ops,
            clientPreemptionsPerKOp: ((res['preemptions'] ?? Number.NaN) * 1000) / ops,
          }
        : {}),
      // The warm-up's connections (or 64 B messages), made by the fresh server and client of this
      // round: what a process that makes only a few thousand connections (or sends a few hundred
      // thousand messages) in its life sees. Its time includes the first connect.
      ...((c.workload === 'cps' || c.workload === 'rate') && warm && warm.count > 0
        ? {
            freshPerSecond: warm.count / warm.seconds,
            freshCpuUsPerOp: (warm.cpuUs + warmUs) / warm.count,
          }
        : {}),
    };
  } finally {
    // SIGTERM lets a profiled server write its --cpu-prof; SIGKILL otherwise (poll mode spins).
    server.kill(process.env['FERRY_BENCH_PROF'] ? 'SIGTERM' : 'SIGKILL');
  }
}

/** Slow round trips described per RTT measurement with --sched-trace. */
const SCHED_SLOWEST = 20;

/** Each thread of the given processes (and of this bench) by role: "client main", "server thread"... */
function threadRoles(procs: Record<string, ChildProcess | undefined>): Map<number, string> {
  const roles = new Map<number, string>();
  const all: [string, number | undefined][] = [
    ['bench', process.pid],
    ...Object.entries(procs).map(([k, p]): [string, number | undefined] => [k, p?.pid]),
  ];
  for (const [name, pid] of all) {
    if (pid === undefined) continue;
    // Node names none of its threads: their order of creation tells them apart (V8's workers first).
    const tids = threadsOf(pid).sort((a, b) => a - b);
    tids.forEach((tid, i) => {
      roles.set(tid, tid === pid ? `${name} main` : `${name} thread #${i}`);
    });
  }
  return roles;
}

/**
 * One JSON line per RTT measurement: its percentiles and, for each of its slowest round trips, what
 * the client's and the server's main threads did meanwhile (ran, waited for a CPU, slept) and which
 * other threads held the CPUs; then the same totals over all of them.
 */
function writeSchedReport(
  st: { file: string; round: number },
  c: Case,
  v: Variant,
  res: Record<string, unknown> & { slowest?: { index: number; atUs: number; us: number }[] },
  trace: Trace,
  roles: Map<number, string>,
  client: ChildProcess,
  server: ChildProcess,
  window: { from: number; to: number },
): void {
  const names = new Map<number, string>();
  const label = (tid: number, comm: string): string => {
    const known = roles.get(tid);
    if (known) return known;
    let n = names.get(tid);
    if (n === undefined) {
      n = describeThread(tid, comm);
      names.set(tid, n);
    }
    return n;
  };
  const slow = res.slowest ?? [];
  const reports = describeIntervals(
    trace,
    slow,
    { client: client.pid ?? -1, server: server.pid ?? -1 },
    label,
  );
  const totals = new Map<string, number>();
  const states = { client: { run: 0, wait: 0, sleep: 0 }, server: { run: 0, wait: 0, sleep: 0 } };
  for (const r of reports) {
    for (const o of r.others) totals.set(o.who, (totals.get(o.who) ?? 0) + o.us);
    for (const side of ['client', 'server'] as const) {
      const w = r.watched[side];
      if (!w) continue;
      states[side].run += w.run;
      states[side].wait += w.wait;
      states[side].sleep += w.sleep;
    }
  }
  const line = {
    case: c.name,
    variant: v.label,
    round: st.round,
    p50us: res['p50us'],
    p99us: res['p99us'],
    p999us: res['p999us'],
    loadavg: loadavg(),
    events: trace.switches.length + trace.wakeups.length,
    lost: trace.lost,
    // Every run of the round trip's own other threads while measured (the main threads left out).
    ours: activity(trace, window.from, window.to, (tid) =>
      tid === client.pid || tid === server.pid ? undefined : roles.get(tid),
    ),
    totals: { ...states, others: Object.fromEntries([...totals].sort((a, b) => b[1] - a[1]).slice(0, 12)) },
    slowest: slow.map((s, i) => ({ ...s, ...reports[i], others: reports[i]?.others.slice(0, 5) })),
  };
  appendFileSync(st.file, `${JSON.stringify(line)}\n`);
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
  } catch {
    return '';
  }
}

/** No samples read as 0, as this bench always reported them. */
const median = (xs: number[]): number => medianOf(xs, 0);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      scale: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      /** Only variants whose label contains this (the baselines are always measured). */
      only: { type: 'string' },
      /** Only cases whose name contains this (e.g. HTTP, stream, RTT). */
      case: { type: 'string' },
      /** Unmeasured connections before each connections/s measurement (default CPS_WARMUP). */
      'cps-warmup': { type: 'string' },
      /** Unmeasured round trips before each RTT measurement (default RTT_WARMUP). */
      'rtt-warmup': { type: 'string' },
      /** Unmeasured requests before each HTTP measurement (default HTTP_WARMUP). */
      'http-warmup': { type: 'string' },
      /** Unmeasured messages before each 64 B messages/s measurement (default RATE_WARMUP). */
      'rate-warmup': { type: 'string' },
      /** Unmeasured bytes before each stream measurement (default STREAM_WARMUP). */
      'stream-warmup': { type: 'string' },
      /**
       * RTT cases: trace the scheduler (tracefs, root) during each measurement and append, to this
       * file, what ran while each of the slowest round trips waited (sched-trace.ts).
       */
      'sched-trace': { type: 'string' },
    },
  });
  const warmups: Warmups = {
    cps: wholeOption(values['cps-warmup'], CPS_WARMUP, 'cps-warmup'),
    rtt: wholeOption(values['rtt-warmup'], RTT_WARMUP, 'rtt-warmup'),
    http: wholeOption(values['http-warmup'], HTTP_WARMUP, 'http-warmup'),
    rate: wholeOption(values['rate-warmup'], RATE_WARMUP, 'rate-warmup'),
    stream: wholeOption(values['stream-warmup'], STREAM_WARMUP, 'stream-warmup'),
  };
  const rounds = Number(values.rounds);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const sockets = { a: join(dir, 'ferryd-a.sock'), b: join(dir, 'ferryd-b.sock') };
  const daemon = run(['daemon', '--socket', sockets.a], process.env);
  const daemonB = run(['daemon', '--socket', sockets.b], process.env);
  await listening(daemon, 10_000);
  await listening(daemonB, 10_000);
  const only = values.only;
  const all = cases(Number(values.scale))
    .filter((c) => !values.case || c.name.includes(values.case))
    .map((c) => ({
      ...c,
      variants: c.variants.filter((v) => v === UNIX || v === TCP || !only || v.label.includes(only)),
    }))
    .filter((c) => c.variants.length > 2 || !only);
  const samples = new Map<string, Record<string, number>[]>();
  // Below the kernel's ephemeral range, so cps clients never hold it; FERRY_BENCH_PORT moves it
  // (two benchmarks on one machine would otherwise collide).
  let port = Number(process.env['FERRY_BENCH_PORT'] ?? 21000);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of all) {
        for (const v of r % 2 ? [...c.variants].reverse() : c.variants) {
          const res = await measure(
            c,
            v,
            dir,
            sockets,
            port++,
            [daemon, daemonB],
            warmups,
            values['sched-trace'] ? { file: values['sched-trace'], round: r } : undefined,
          );
          const key = `${c.name}|${v.label}`;
          samples.set(key, [...(samples.get(key) ?? []), res]);
          if (!values.json) process.stderr.write('.');
        }
      }
    }
  } finally {
    daemon.kill('SIGTERM');
    daemonB.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  if (!values.json) process.stderr.write('\n');
  const report: Record<string, unknown>[] = [];
  for (const c of all) {
    const metric = (v: Variant, field: string) =>
      median((samples.get(`${c.name}|${v.label}`) ?? []).map((s) => s[field] ?? Number.NaN));
    const fields = [
      ...(c.workload === 'rtt'
        ? ['p50us', 'p99us', 'p999us']
        : c.workload === 'throughput'
          ? ['gbps']
          : ['perSecond']),
      'cpuUsPerOp',
      ...((c.workload === 'cps' && warmups.cps > 0) || (c.workload === 'rate' && warmups.rate > 0)
        ? ['freshPerSecond', 'freshCpuUsPerOp']
        : []),
      // Each side's share: for streams and messages the client sends and the server receives; for
      // connections, ferryd's is cpuUsPerOp less the two (both ferryd are sampled).
      ...(c.workload === 'http' ||
      c.workload === 'throughput' ||
      c.workload === 'rate' ||
      c.workload === 'cps'
        ? ['clientUsPerOp', 'serverUsPerOp']
        : []),
      ...(c.workload === 'http'
        ? ['clientMajorGcPerKOp', 'clientGcPauseUsPerOp', 'clientSleepsPerKOp', 'clientPreemptionsPerKOp']
        : []),
    ];
    for (const f of fields) {
      const base = metric(UNIX, f);
      const tcp = metric(TCP, f);
      for (const v of c.variants) {
        const value = metric(v, f);
        report.push({
          case: c.name,
          metric: f,
          variant: v.label,
          median: value,
          vsUnix: value / base,
          vsTcp: value / tcp,
          rounds,
        });
      }
    }
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ rounds, warmups, results: report })}\n`);
    return;
  }
  process.stdout.write(
    `Ferry benchmark: medians of ${rounds} rounds, ratios to node:net (unix socket, TCP loopback) in the same run\n` +
      `("ferry remote": SDK app -> ferryd A -> TCP -> ferryd B -> SDK app; compare it with x tcp;\n` +
      ` "remote handoff": both ferryd decide and connect, the apps get the kernel sockets)\n` +
      `(cpuUsPerOp: CPU us of client + server + both ferryd per MiB, message, round trip or connection)\n` +
      `(connections/s: perSecond and cpuUsPerOp after ${warmups.cps} warm-up connections; fresh*: those warm-up\n` +
      ` connections themselves, made by the round's fresh server and client)\n` +
      `(64 B messages/s after ${warmups.rate} warm-up messages, stream after ${warmups.stream} warm-up bytes, each on a\n` +
      ` connection of its own; fresh*: the warm-up messages themselves)\n\n`,
  );
  process.stdout.write(
    `${'case'.padEnd(44)} ${'metric'.padEnd(10)} ${'variant'.padEnd(22)} ${'median'.padStart(12)} ${'x unix'.padStart(8)} ${'x tcp'.padStart(8)}\n`,
  );
  for (const r of report) {
    const v = r['median'] as number;
    const shown =
      r['metric'] === 'gbps'
        ? v.toFixed(2)
        : r['metric'] === 'perSecond' || r['metric'] === 'freshPerSecond'
          ? Math.round(v).toString()
          : v.toFixed(1);
    process.stdout.write(
      `${String(r['case']).padEnd(44)} ${String(r['metric']).padEnd(10)} ${String(r['variant']).padEnd(22)} ${shown.padStart(12)} ${(r['vsUnix'] as number).toFixed(2).padStart(8)} ${(r['vsTcp'] as number).toFixed(2).padStart(8)}\n`,
    );
  }
}

await main();
