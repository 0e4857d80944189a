/** `ferry perf client`: throughput, rate, rtt and cps workloads against a perf server. */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { PERF_MODE, perfHeader } from './protocol.js';
import type { Stack } from './stack.js';

export type PerfWorkload = 'throughput' | 'rate' | 'rtt' | 'cps';

export interface PerfOptions {
  workload: PerfWorkload;
  target: string;
  /** throughput: total bytes; rate: message count; rtt: round trips; cps: connections. */
  count: number;
  /** throughput: bytes per write; rate / rtt / cps: message size. */
  size: number;
  /** cps: connections in flight at once. */
  concurrency: number;
  /** Upper bound on the run, in ms; the run fails past it. */
  timeoutMs: number;
  /** Told of the work done as it is done: bytes (throughput), messages (rate), round trips (rtt),
   *  connections (cps). For progress reports and the chart. */
  onProgress?: (units: number) => void;
  /** Receives every round-trip time (us) of an rtt run, for the chart's histogram. */
  onRttSamples?: (samplesUs: readonly number[]) => void;
  /**
   * rtt: round trips made first on the same connection; cps: connections made first, the same
   * way as the measured ones; rate: messages (throughput: bytes) sent first over a connection of
   * their own, to the same server. Left out of every figure (time, CPU, percentiles): the first
   * ones compile the code on both sides (and, over Ferry, attach and take the first pool) and are
   * several times slower than the steady state a long-running app sees. Default 0.
   */
  warmup?: number;
  /** Called when the measured part starts (after the warm-up). */
  onMeasureStart?: () => void;
  /**
   * rtt: report this many of the slowest measured round trips with when each started (CLOCK_MONOTONIC,
   * the clock of process.hrtime and of a tracefs instance set to `mono`), so that a trace of the
   * scheduler can say what ran while each waited. Default 0.
   */
  slowest?: number;
}

/** One of the slowest round trips (PerfOptions.slowest). */
export interface SlowRoundTrip {
  /** Its index among the measured round trips. */
  index: number;
  /** When it started, in us of CLOCK_MONOTONIC. */
  atUs: number;
  us: number;
}

export interface PerfResult {
  stack: string;
  workload: PerfWorkload;
  target: string;
  count: number;
  size: number;
  seconds: number;
  /** throughput: bytes/s; rate: messages/s; cps: connections/s; rtt: round trips/s. */
  perSecond: number;
  gbps?: number;
  p50us?: number;
  p99us?: number;
  p999us?: number;
  /** CPU time this client process used during the workload (user + system, all threads), in us. */
  cpuUs: number;
  /**
   * With a warm-up: what it took (its `count` round trips or connections, their wall time and this
   * process's CPU), so that a fresh process's cost can be told from the steady state's.
   */
  warmup?: { count: number; seconds: number; cpuUs: number };
  /** rtt with PerfOptions.slowest: the slowest round trips, slowest first. */
  slowest?: SlowRoundTrip[];
}

async function connected(s: Duplex): Promise<void> {
  await Promise.race([once(s, 'connect'), once(s, 'error').then(([e]) => Promise.reject(e))]);
}

async function writeAll(s: Duplex, b: Buffer): Promise<void> {
  if (!s.write(b)) await once(s, 'drain');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function sinkRun(stack: Stack, o: PerfOptions, msgBytes: number, total: number): Promise<number> {
  const s = stack.connect(o.target);
  await connected(s);
  const ack = new Promise<void>((resolve, reject) => {
    s.on('data', () => {});
    s.once('end', () => resolve());
    s.once('error', reject);
  });
  const chunk = Buffer.alloc(msgBytes, 0x5a);
  const start = process.hrtime.bigint();
  await writeAll(s, perfHeader(PERF_MODE.SINK, total));
  // Progress counts what was handed to the socket, in units of the workload.
  const unit = o.workload === 'rate' ? o.size : 1;
  const onProgress = o.onProgress;
  // Writes go out back to back and the loop waits only when write() asks for it ('drain'), as an
  // app that streams does: awaiting every write (an async call and a microtask each) would be most
  // of a 64 B message's cost and would measure the loop, not the transport.
  for (let sent = 0; sent < total; sent += msgBytes) {
    const piece = sent + msgBytes <= total ? chunk : chunk.subarray(0, total - sent);
    const more = s.write(piece);
    onProgress?.(piece.length / unit);
    if (!more) await once(s, 'drain');
  }
  await ack;
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  s.destroy();
  return secs;
}

/**
 * throughput / rate: `o.warmup` units (bytes / messages of `unitBytes`) first, on a connection of
 * their own and unreported, then the measured `count` units on a fresh one. Seconds of the latter.
 */
async function sinkWarmRun(stack: Stack, o: PerfOptions, count: number, unitBytes: number): Promise<number> {
  const warm = Math.max(0, Math.floor(o.warmup ?? 0));
  if (warm > 0) {
    const { onProgress: _unreported, ...quiet } = o;
    await sinkRun(stack, quiet, o.size, warm * unitBytes);
  }
  o.onMeasureStart?.();
  return sinkRun(stack, o, o.size, count * unitBytes);
}

/** rtt: the end of the run while the warm-up goes on (a number, as the index it becomes). */
const NOT_YET = 2 ** 52;

/**
 * The measured round trips (us) and the seconds they took, after at least `o.warmup` unmeasured ones.
 *
 * The warm-up runs the very code the measured part runs, with no branch between them in the round
 * trip's own code: every round trip is timed and recorded, and the warm-up's are dropped at the end.
 * The switch is made by a timer (every ms until the warm-up is done). A branch taken for the first
 * time in optimized code deoptimizes it, and when the switch was in the round trip's handler, the
 * measured part began by compiling the handler and all it had inlined (the SDK's write path) again,
 * on V8's worker threads, which took a CPU from the client or the server: 4-16 TurboFan jobs of up
 * to 27 ms each after even 100,000 warm-up round trips (--trace-opt; BENCHMARKS.md, tail1, session 7).
 */
async function rttRun(
  stack: Stack,
  o: PerfOptions,
): Promise<{ samples: number[]; starts: number[] | null; secs: number }> {
  const s = stack.connect(o.target);
  await connected(s);
  const msg = Buffer.alloc(o.size, 0x33);
  s.write(perfHeader(PERF_MODE.ECHO, 0));
  const samples: number[] = [];
  // Start times (us, CLOCK_MONOTONIC) only when asked: a number array of doubles, no allocation each.
  const starts: number[] | null = (o.slowest ?? 0) > 0 ? [] : null;
  const warm = Math.max(0, Math.floor(o.warmup ?? 0));
  let got = 0;
  let t0 = 0n;
  /** Index of the first measured round trip, and one past the last. */
  let first = 0;
  let end = warm === 0 ? o.count : NOT_YET;
  let start = process.hrtime.bigint();
  if (warm === 0) o.onMeasureStart?.();
  let phase: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    if (warm > 0) {
      phase = setInterval(() => {
        if (samples.length < warm) return;
        clearInterval(phase);
        first = samples.length;
        end = first + o.count;
        o.onMeasureStart?.();
        start = process.hrtime.bigint();
      }, 1);
    }
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got < o.size) return;
      got -= o.size;
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
      starts?.push(Number(t0) / 1000);
      o.onProgress?.(1);
      if (samples.length >= end) {
        resolve();
        return;
      }
      t0 = process.hrtime.bigint();
      s.write(msg);
    });
    t0 = process.hrtime.bigint();
    s.write(msg);
  }).finally(() => clearInterval(phase));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  s.end();
  return { samples: samples.slice(first), starts: starts?.slice(first) ?? null, secs };
}

async function oneConnection(stack: Stack, o: PerfOptions, req: Buffer): Promise<void> {
  const s = stack.connect(o.target);
  s.write(req);
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= o.size) s.end();
    });
    s.once('close', () => (got >= o.size ? resolve() : reject(new Error(`short echo: ${got} B`))));
  });
}

/** `count` connections, `concurrency` at a time. */
async function connections(stack: Stack, o: PerfOptions, req: Buffer, count: number, measured: boolean) {
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      await oneConnection(stack, o, req);
      if (measured) o.onProgress?.(1);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
}

/** Seconds the measured connections took, after `o.warmup` unmeasured ones. */
async function cpsRun(stack: Stack, o: PerfOptions): Promise<number> {
  const req = Buffer.concat([perfHeader(PERF_MODE.ECHO, 0), Buffer.alloc(o.size, 0x44)]);
  const warm = Math.max(0, Math.floor(o.warmup ?? 0));
  if (warm > 0) await connections(stack, o, req, warm, false);
  o.onMeasureStart?.();
  const start = process.hrtime.bigint();
  await connections(stack, o, req, o.count, true);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** The `n` slowest round trips, slowest first. */
export function slowestOf(samples: readonly number[], starts: readonly number[], n: number): SlowRoundTrip[] {
  const idx = Array.from(samples, (_, i) => i);
  idx.sort((a, b) => (samples[b] as number) - (samples[a] as number));
  return idx
    .slice(0, Math.max(0, n))
    .map((i) => ({ index: i, atUs: starts[i] as number, us: samples[i] as number }));
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

export async function runPerf(stack: Stack, o: PerfOptions): Promise<PerfResult> {
  let cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const warmCount = Math.max(0, Math.floor(o.warmup ?? 0));
  let warmup: PerfResult['warmup'];
  const r = await runWorkload(stack, {
    ...o,
    onMeasureStart: () => {
      const used = process.cpuUsage(cpu0);
      if (warmCount > 0 && warmup === undefined) {
        warmup = {
          count: warmCount,
          seconds: Number(process.hrtime.bigint() - t0) / 1e9,
          cpuUs: used.user + used.system,
        };
      }
      cpu0 = process.cpuUsage();
      o.onMeasureStart?.();
    },
  });
  const cpu = process.cpuUsage(cpu0);
  return { ...r, cpuUs: cpu.user + cpu.system, ...(warmup ? { warmup } : {}) };
}

async function runWorkload(stack: Stack, o: PerfOptions): Promise<Omit<PerfResult, 'cpuUs'>> {
  const base = { stack: stack.name, workload: o.workload, target: o.target, count: o.count, size: o.size };
  switch (o.workload) {
    case 'throughput': {
      const secs = await withTimeout(sinkWarmRun(stack, o, o.count, 1), o.timeoutMs, 'throughput');
      return { ...base, seconds: secs, perSecond: o.count / secs, gbps: o.count / secs / 1e9 };
    }
    case 'rate': {
      const secs = await withTimeout(sinkWarmRun(stack, o, o.count, o.size), o.timeoutMs, 'rate');
      return { ...base, seconds: secs, perSecond: o.count / secs };
    }
    case 'rtt': {
      const { samples, starts, secs } = await withTimeout(rttRun(stack, o), o.timeoutMs, 'rtt');
      o.onRttSamples?.(samples);
      const slowest = starts ? slowestOf(samples, starts, o.slowest ?? 0) : undefined;
      samples.sort((a, b) => a - b);
      return {
        ...base,
        seconds: secs,
        perSecond: samples.length / secs,
        p50us: pct(samples, 0.5),
        p99us: pct(samples, 0.99),
        p999us: pct(samples, 0.999),
        ...(slowest ? { slowest } : {}),
      };
    }
    case 'cps': {
      const secs = await withTimeout(cpsRun(stack, o), o.timeoutMs, 'cps');
      return { ...base, seconds: secs, perSecond: o.count / secs };
    }
  }
}
