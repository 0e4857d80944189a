// Where do the rare slow round trips come from? A 64 B ping-pong over one cut-through session
// (or a unix socket), the client timing each round trip; for every round trip above a threshold it
// notes how much CPU the client used meanwhile (getrusage: a process that polls and keeps its core
// uses about all of the wall time, one that was preempted or slept uses less), and both processes
// note every garbage collection (PerformanceObserver 'gc', with start and duration on the wall
// clock). The report counts the slow round trips that overlap a GC of either process, and splits
// the others by the client's CPU share during them.
//
//   node examples/dist/bench/stalls.js [--stack ferry|net] [--count 200000] [--slow-us 500] [--mode poll]
//
// The Ferry variant needs a running ferryd (FERRY_SOCKET); FERRY_MODE or --mode sets both apps' mode.
// The internals it reads (cpuUsage per round trip) cost about a microsecond each: the figure is
// the cause of the stalls, not the latency.
//
// With FERRY_NOTIFIER_TRACE=1 (both processes inherit it) each notifier logs its sleeps and wakes
// and why (shm/notifier.ts TRACE_CODE); `patterns` then counts the slow round trips by what the
// client (c...) and the server (s...) did during them, e.g. `c14/s2`: the client's polling window
// ran out and a ring woke it, the server slept at once because the gaps looked long.
// STALLS_DUMP=1 prints the first events of a few slow round trips of each pattern on stderr.
// The report also gives CPU per round trip of each side (whole run, warm-up included).

import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ferry from '@ferry/sdk';

const SIZE = 64;

interface Gc {
  at: number;
  ms: number;
  kind: number;
}

/** GC pauses of this process, on the wall clock (ms since the epoch). */
function watchGc(): Gc[] {
  const out: Gc[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as unknown as { detail?: { kind?: number } }).detail;
      out.push({ at: performance.timeOrigin + e.startTime, ms: e.duration, kind: detail?.kind ?? 0 });
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return out;
}

interface TraceLog {
  t: number[];
  c: number[];
}
/** The notifier's event log (FERRY_NOTIFIER_TRACE), oldest first. */
function traceOf(): TraceLog | null {
  const tr = (globalThis as Record<symbol, unknown>)[Symbol.for('ferry.notifierTrace')] as
    | { t: Float64Array; c: Uint8Array; n: number }
    | null
    | undefined;
  if (!tr) return null;
  const size = tr.t.length;
  const from = Math.max(0, tr.n - size);
  const out: TraceLog = { t: [], c: [] };
  for (let i = from; i < tr.n; i++) {
    out.t.push(tr.t[i % size] as number);
    out.c.push(tr.c[i % size] as number);
  }
  return out;
}

/** Codes of the log's events within [from, to] (ms), deduplicated, as a short string. */
function codesIn(log: TraceLog | null, from: number, to: number): string {
  if (!log) return '';
  let lo = 0;
  let hi = log.t.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((log.t[mid] as number) < from) lo = mid + 1;
    else hi = mid;
  }
  const seen = new Set<number>();
  for (let i = lo; i < log.t.length && (log.t[i] as number) <= to; i++) seen.add(log.c[i] as number);
  return [...seen].sort().join('');
}

function serve(stack: string, uri: string): void {
  const gcs = watchGc();
  const onConn = (s: net.Socket | ferry.Socket) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => {
      s.end();
      const cpu = process.cpuUsage();
      process.send?.({ gcs, trace: traceOf(), cpuUs: cpu.user + cpu.system });
      setTimeout(() => process.exit(0), 50);
    });
  };
  const server = stack === 'net' ? net.createServer(onConn) : ferry.createServer(onConn);
  server.listen(stack === 'net' ? uri : { uri }, () => process.send?.({ ready: true }));
}

async function client(stack: string, uri: string, count: number, slowUs: number): Promise<void> {
  const gcs = watchGc();
  const s = stack === 'net' ? net.connect(uri) : ferry.connect({ uri });
  await new Promise((r) => s.once('connect', r));
  const msg = Buffer.alloc(SIZE, 7);
  const slow: { at: number; us: number; cpuUs: number }[] = [];
  const all: number[] = [];
  let got = 0;
  let t0 = 0n;
  let cpu0 = process.cpuUsage();
  let n = 0;
  const warm = Math.min(5000, count / 10);
  const cpuStart = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const send = () => {
      cpu0 = process.cpuUsage();
      t0 = process.hrtime.bigint();
      s.write(msg);
    };
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got < SIZE) return;
      got -= SIZE;
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (n >= warm) {
        all.push(us);
        if (us >= slowUs) {
          const c = process.cpuUsage(cpu0);
          slow.push({
            at: performance.timeOrigin + performance.now() - us / 1000,
            us,
            cpuUs: c.user + c.system,
          });
        }
      }
      if (++n >= count) resolve();
      else send();
    });
    send();
  });
  const clientCpu = process.cpuUsage(cpuStart);
  const server = await new Promise<{ gcs: Gc[]; trace: TraceLog | null; cpuUs: number }>((resolve) => {
    process.once('message', (m) => resolve(m as { gcs: Gc[]; trace: TraceLog | null; cpuUs: number }));
    s.end();
  });
  all.sort((a, b) => a - b);
  const pct = (p: number) => all[Math.min(all.length - 1, Math.floor(all.length * p))] ?? Number.NaN;
  const overlaps = (st: { at: number; us: number }, g: Gc[]) =>
    g.some((x) => x.at < st.at + st.us / 1000 + 0.05 && x.at + x.ms > st.at - 0.05);
  let clientGc = 0;
  let serverGc = 0;
  let offCpu = 0;
  let onCpu = 0;
  const clientTrace = traceOf();
  const patterns = new Map<string, number>();
  for (const st of slow) {
    if (clientTrace) {
      const key = `c${codesIn(clientTrace, st.at, st.at + st.us / 1000)}/s${codesIn(server.trace, st.at, st.at + st.us / 1000)}`;
      patterns.set(key, (patterns.get(key) ?? 0) + 1);
      if (process.env['STALLS_DUMP'] && (patterns.get(key) ?? 0) <= 3) {
        const ev = (log: TraceLog | null, who: string) => {
          const out: string[] = [];
          if (!log) return out;
          for (let i = 0; i < log.t.length; i++) {
            const d = ((log.t[i] as number) - st.at) * 1000;
            if (d > -300 && d < st.us + 50) out.push(`${who}${log.c[i]}@${d.toFixed(0)}`);
          }
          return out;
        };
        process.stderr.write(
          `${key} ${st.us.toFixed(0)}us cpu ${st.cpuUs}: ${ev(clientTrace, 'c').join(' ')} | ${ev(server.trace, 's').join(' ')}\n`,
        );
      }
    }
    if (overlaps(st, gcs)) clientGc++;
    else if (overlaps(st, server.gcs)) serverGc++;
    else if (st.cpuUs < st.us / 2) offCpu++;
    else onCpu++;
  }
  const out = {
    stack,
    mode: process.env['FERRY_MODE'] ?? 'default',
    roundTrips: all.length,
    // CPU of the whole run (warm-up and the server's start-up included) per round trip.
    clientCpuUsPerRt: (clientCpu.user + clientCpu.system) / count,
    serverCpuUsPerRt: server.cpuUs / count,
    p50us: pct(0.5),
    p99us: pct(0.99),
    p999us: pct(0.999),
    slowUs,
    slow: slow.length,
    slowWithClientGc: clientGc,
    slowWithServerGc: serverGc,
    slowClientOffCpu: offCpu,
    slowClientOnCpu: onCpu,
    gcs: { client: gcs.length, server: server.gcs.length },
    ...(clientTrace
      ? { patterns: Object.fromEntries([...patterns].sort((a, b) => b[1] - a[1]).slice(0, 12)) }
      : {}),
    gcMsMax: Math.max(0, ...gcs.map((g) => g.ms), ...server.gcs.map((g) => g.ms)),
    slowest: slow
      .sort((a, b) => b.us - a.us)
      .slice(0, 5)
      .map((x) => ({ us: Math.round(x.us), cpuUs: x.cpuUs })),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    stack: { type: 'string', default: 'ferry' },
    count: { type: 'string', default: '200000' },
    'slow-us': { type: 'string', default: '500' },
    mode: { type: 'string' },
  },
});
if (values.mode) process.env['FERRY_MODE'] = values.mode;
if (positionals[0] === 'server') {
  serve(String(positionals[1]), String(positionals[2]));
} else {
  const stack = values.stack ?? 'ferry';
  const dir = mkdtempSync(join(tmpdir(), 'ferry-stalls-'));
  const uri = stack === 'net' ? join(dir, 's.sock') : `tcp://127.0.0.1:${20000 + (process.pid % 10000)}`;
  const child = fork(fileURLToPath(import.meta.url), ['server', stack, uri], { env: process.env });
  await new Promise((r) => child.once('message', r));
  // The server's GC list comes back to us through the child's IPC channel.
  child.on('message', (m) => process.emit('message', m, undefined as never));
  try {
    await client(stack, uri, Number(values.count), Number(values['slow-us']));
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  // The attachment's notifier keeps a polling process's loop alive: the run is over once the
  // report is out (stdout to a pipe is written asynchronously).
  process.stdout.write('', () => process.exit(process.exitCode ?? 0));
}
