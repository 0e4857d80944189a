/**
 * The HTTP workload of `npm run bench`: HTTP/1.1 keep-alive, a node:http server and an undici Pool
 * client (8 connections), each in its own process, over node:net (unix socket or TCP loopback) or
 * over Ferry sockets (cut-through when both attach to the same ferryd). undici reaches Ferry
 * through its `connect` option, which returns an SDK socket: neither library is modified.
 *
 *   node examples/dist/bench/http.js server net|ferry|ferry-http TARGET [--mode M]   prints {"listening":...}
 *   node examples/dist/bench/http.js client net|ferry|ferry-http TARGET --size B --count N [--connections 8]
 *       [--warmup N]   N unmeasured requests first (default 10,000): the measured ones run warm
 *       prints one JSON line: perSecond, cpuUs (the client's own CPU over the requests), p50us...,
 *       the client's garbage collections over the requests (gcMajor, gcMinor, gcPauseUs), and its
 *       main thread's sleeps and preemptions over them (sleeps, preemptions: context switches)
 *
 * TARGET: unix:/path or tcp://127.0.0.1:PORT for net; any SDK URI for ferry; tcp://HOST:PORT for
 * ferry-http (undici's origin is http://HOST:PORT). FERRY_SOCKET names the ferryd, FERRY_MODE the
 * wake mode. GET /N answers N bytes; the client reads every body and
 * checks its length. Bounded: a fixed count and --timeout-ms.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type * as net from 'node:net';
import { type PerformanceEntry, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as ferry from '@ferry/sdk';
import { ferryConnector, listenThroughFerry } from '@ferry/sdk/http';
import { type Dispatcher, Pool } from 'undici';
import { wholeOption } from './whole-option.js';

/**
 * net: node:net; ferry: SDK sockets handed to node:http and undici as they are; ferry-http: the
 * `@ferry/sdk/http` glue an app would use (listenThroughFerry, ferryConnector: net.Sockets over
 * SDK sockets).
 */
type Stack = 'net' | 'ferry' | 'ferry-http';

const MAX_BODY = 16 * 1024 * 1024;

function netPath(target: string): { path: string } | { host: string; port: number } {
  if (target.startsWith('unix:')) return { path: target.slice(5) };
  const u = new URL(target);
  return { host: u.hostname, port: Number(u.port) };
}

async function serve(stack: Stack, target: string): Promise<void> {
  const bodies = new Map<number, Buffer>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const n = Math.min(Number((req.url ?? '/0').slice(1)) || 0, MAX_BODY);
    let body = bodies.get(n);
    if (!body) {
      body = Buffer.alloc(n, 0x61);
      bodies.set(n, body);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    res.end(body);
  };
  const http = createHttpServer({ keepAliveTimeout: 60_000 }, handle);
  if (stack === 'net') {
    http.listen(netPath(target));
    await new Promise<void>((resolve) => http.once('listening', resolve));
  } else if (stack === 'ferry-http') {
    await new Promise<void>((resolve) => listenThroughFerry(http, target, {}, resolve));
  } else {
    // node:http speaks HTTP over any net.Socket-shaped stream: hand it each Ferry socket.
    const srv = ferry.createServer((s) => {
      s.on('error', () => {});
      http.emit('connection', s);
    });
    await new Promise<void>((resolve) => srv.listen(target, resolve));
  }
  process.stdout.write(`${JSON.stringify({ listening: target })}\n`);
  const stop = () => process.exit(0);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function pool(stack: Stack, target: string, connections: number): Pool {
  const opts: Pool.Options = { connections, pipelining: 1, keepAliveTimeout: 60_000 };
  if (stack === 'ferry-http') {
    // The origin's host and port become the session URI (tcp://host:port), as for any app.
    opts.connect = ferryConnector() as unknown as NonNullable<Pool.Options['connect']>;
    return new Pool(`http://${new URL(target).host}`, opts);
  }
  if (stack === 'ferry') {
    // undici calls connect() for each of its connections and speaks HTTP over what it returns.
    opts.connect = (_o, cb) => {
      const s = ferry.connect({ uri: target });
      const onError = (err: Error) => cb(err, null);
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        cb(null, s as unknown as net.Socket);
      });
    };
    return new Pool('http://ferry.invalid', opts);
  }
  if (target.startsWith('unix:')) {
    opts.socketPath = target.slice(5);
    return new Pool('http://localhost', opts);
  }
  return new Pool(`http://${new URL(target).host}`, opts);
}

/**
 * Counts this process's garbage collections whose start falls in [from, to) (performance.now()
 * times): mark-compacts, scavenges and their main-thread pauses. With 64 KiB bodies the client's
 * CPU per request moves by about 1.5x between runs of one build according to how many
 * mark-compacts V8 makes (a 64 KiB Buffer per response is external memory, which V8 counts
 * against the old generation's limit; BENCHMARKS.md, data6), so each run reports them.
 */
class GcCounter {
  #entries: { start: number; kind: number; ms: number }[] = [];
  #obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;
      this.#entries.push({ start: e.startTime, kind, ms: e.duration });
    }
  });

  constructor() {
    this.#obs.observe({ entryTypes: ['gc'] });
  }

  /** Entries reach the observer asynchronously: call after a turn of the loop. */
  between(from: number, to: number): { gcMajor: number; gcMinor: number; gcPauseUs: number } {
    let gcMajor = 0;
    let gcMinor = 0;
    let ms = 0;
    for (const e of this.#entries) {
      if (e.start < from || e.start >= to) continue;
      if (e.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gcMajor++;
      else if (e.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcMinor++;
      ms += e.ms;
    }
    this.#obs.disconnect();
    return { gcMajor, gcMinor, gcPauseUs: ms * 1000 };
  }
}

/**
 * The main thread's context switches so far (/proc/thread-self/status): voluntary ones are its
 * sleeps (the event loop waiting for a wake), involuntary ones its preemptions (a woken peer or
 * another task taking its vCPU). The client is what limits this workload's rate (BENCHMARKS.md,
 * http10), and how often it sleeps or is preempted per request is where its transport costs it.
 * null where the kernel does not say.
 */
function mainThreadSwitches(): { voluntary: number; involuntary: number } | null {
  try {
    const text = readFileSync('/proc/thread-self/status', 'latin1');
    const v = /^voluntary_ctxt_switches:\s*(\d+)/m.exec(text);
    const n = /^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(text);
    return v && n ? { voluntary: Number(v[1]), involuntary: Number(n[1]) } : null;
  } catch {
    return null;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

async function client(
  stack: Stack,
  target: string,
  size: number,
  count: number,
  connections: number,
  warmup: number,
): Promise<void> {
  const p = pool(stack, target, connections);
  const gc = new GcCounter();
  const path = `/${size}`;
  const one = async (): Promise<void> => {
    const res = await p.request({ path, method: 'GET' } as Dispatcher.RequestOptions);
    let got = 0;
    for await (const chunk of res.body) got += (chunk as Buffer).length;
    if (res.statusCode !== 200 || got !== size)
      throw new Error(`status ${res.statusCode}, ${got} of ${size} B`);
  };
  // Warm-up: every connection opened, and node:http, undici and the socket glue compiled (at least
  // 50 requests per connection, so that every connection is open even with a small --warmup).
  await runLoops(one, Math.max(warmup, connections * 50), connections, null);
  const lat = new Float64Array(count);
  // Tells the harness that the measured part starts (it samples the server's CPU from here).
  process.stdout.write(`${JSON.stringify({ phase: 'start' })}\n`);
  const sw0 = mainThreadSwitches();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const from = performance.now();
  await runLoops(one, count, connections, lat);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const sw1 = mainThreadSwitches();
  const to = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const gcs = gc.between(from, to);
  lat.sort();
  process.stdout.write(
    `${JSON.stringify({
      perSecond: count / secs,
      cpuUs: cpu.user + cpu.system,
      p50us: percentile(lat, 0.5),
      p99us: percentile(lat, 0.99),
      ...gcs,
      ...(sw0 && sw1
        ? { sleeps: sw1.voluntary - sw0.voluntary, preemptions: sw1.involuntary - sw0.involuntary }
        : {}),
    })}\n`,
  );
  await p.close();
  process.exit(0);
}

/** `count` requests over `loops` concurrent loops (one request in flight each). */
async function runLoops(
  one: () => Promise<void>,
  count: number,
  loops: number,
  lat: Float64Array | null,
): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < count) {
      const i = next++;
      const t = lat ? performance.now() : 0;
      await one();
      if (lat) lat[i] = (performance.now() - t) * 1000;
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      size: { type: 'string', default: '16' },
      count: { type: 'string', default: '20000' },
      connections: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '10000' },
      'timeout-ms': { type: 'string', default: '120000' },
    },
  });
  const [role, stack, target] = positionals as [string, Stack, string];
  if (
    (role !== 'server' && role !== 'client') ||
    (stack !== 'net' && stack !== 'ferry' && stack !== 'ferry-http') ||
    !target
  ) {
    process.stderr.write('usage: http.js server|client net|ferry|ferry-http TARGET [--size B --count N]\n');
    process.exit(2);
  }
  if (role === 'server') return serve(stack, target);
  setTimeout(() => {
    process.stderr.write('http bench client: timed out\n');
    process.exit(1);
  }, Number(values['timeout-ms'])).unref();
  const warmup = wholeOption(values.warmup, 10_000, 'warmup', 'http bench client');
  await client(stack, target, Number(values.size), Number(values.count), Number(values.connections), warmup);
}

await main();
