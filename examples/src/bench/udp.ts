/**
 * `node examples/dist/bench/udp.js`: datagrams through Ferry against node:dgram, in one run.
 * Variants: node:dgram <-> node:dgram (kernel UDP loopback); SDK <-> SDK (a cut-through fifo pair);
 * SDK -> ferryd -> kernel UDP -> node:dgram echo (the remote path). Workloads: RTT of 64 B
 * ping-pongs, and 64 B datagrams/s with 32 in flight (each echo sends the next). Every
 * measurement is a fresh echo and client process pair against one private ferryd; rounds are
 * interleaved; medians. Bounded: fixed counts and a timeout per measurement.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDatagramSocket } from '@ferry/sdk';
import { upperMedian } from './median.js';

const SELF = fileURLToPath(import.meta.url);
const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));
const SIZE = 64;
const WINDOW = 32;
const TIMEOUT_MS = 60_000;

type Stack = 'dgram' | 'ferry';

/** What both ends need: send to (port), and a 'message' hook. */
interface Endpoint {
  port: number;
  send(msg: Buffer, port: number, address: string): void;
  onMessage(fn: (msg: Buffer, rinfo: { port: number; address: string }) => void): void;
  close(): void;
}

async function endpoint(stack: Stack): Promise<Endpoint> {
  if (stack === 'dgram') {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    return {
      port: s.address().port,
      send: (m, port, address) => s.send(m, port, address),
      onMessage: (fn) => s.on('message', (m: Buffer, r: RemoteInfo) => fn(m, r)),
      close: () => s.close(),
    };
  }
  const s = createDatagramSocket();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind('udp://127.0.0.1:0', () => resolve());
  });
  return {
    port: s.address().port,
    send: (m, port, address) => s.send(m, port, address),
    onMessage: (fn) => s.on('message', fn),
    close: () => s.close(),
  };
}

async function echoRole(stack: Stack): Promise<void> {
  const e = await endpoint(stack);
  e.onMessage((m, r) => e.send(m, r.port, r.address));
  process.stdout.write(`${e.port}\n`);
}

async function clientRole(
  stack: Stack,
  workload: 'rtt' | 'rate',
  port: number,
  count: number,
): Promise<void> {
  const e = await endpoint(stack);
  const msg = Buffer.alloc(SIZE, 7);
  const warm = Math.min(1000, Math.floor(count / 10));
  if (workload === 'rtt') {
    const samples: number[] = [];
    let t0 = 0n;
    let n = 0;
    await new Promise<void>((resolve) => {
      e.onMessage(() => {
        if (n >= warm) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
        if (++n === warm + count) {
          resolve();
          return;
        }
        t0 = process.hrtime.bigint();
        e.send(msg, port, '127.0.0.1');
      });
      t0 = process.hrtime.bigint();
      e.send(msg, port, '127.0.0.1');
    });
    samples.sort((a, b) => a - b);
    const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
    process.stdout.write(`${JSON.stringify({ p50: at(0.5), p99: at(0.99) })}\n`);
  } else {
    let got = 0;
    let start = 0n;
    await new Promise<void>((resolve) => {
      e.onMessage(() => {
        got++;
        if (got === warm) start = process.hrtime.bigint();
        if (got === warm + count) resolve();
        else if (got + WINDOW <= warm + count) e.send(msg, port, '127.0.0.1');
      });
      for (let i = 0; i < WINDOW; i++) e.send(msg, port, '127.0.0.1');
    });
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    process.stdout.write(`${JSON.stringify({ rate: count / s })}\n`);
  }
  e.close();
  process.exit(0);
}

function child(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [SELF, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
}

function firstLine(p: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('no answer in time')), TIMEOUT_MS);
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, i));
      }
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (!buf.includes('\n')) reject(new Error(`child exited with ${code}`));
    });
  });
}

interface Variant {
  label: string;
  echo: Stack;
  client: Stack;
  /** The SDK's notification mode (FERRY_MODE) for both processes. */
  mode?: 'interrupt' | 'poll' | 'adaptive';
}

const VARIANTS: Variant[] = [
  { label: 'node:dgram <-> node:dgram', echo: 'dgram', client: 'dgram' },
  { label: 'ferry ct interrupt', echo: 'ferry', client: 'ferry', mode: 'interrupt' },
  { label: 'ferry ct adaptive', echo: 'ferry', client: 'ferry', mode: 'adaptive' },
  { label: 'ferry ct poll', echo: 'ferry', client: 'ferry', mode: 'poll' },
  {
    label: 'ferry relay adaptive (SDK -> ferryd -> dgram)',
    echo: 'dgram',
    client: 'ferry',
    mode: 'adaptive',
  },
];

async function measure(v: Variant, workload: 'rtt' | 'rate', count: number, base: NodeJS.ProcessEnv) {
  const env = v.mode ? { ...base, FERRY_MODE: v.mode } : base;
  const echo = child(['--role', 'echo', '--stack', v.echo], env);
  try {
    const port = await firstLine(echo);
    const c = child(
      [
        '--role',
        'client',
        '--stack',
        v.client,
        '--workload',
        workload,
        '--port',
        port,
        '--count',
        String(count),
      ],
      env,
    );
    try {
      return JSON.parse(await firstLine(c)) as Record<string, number>;
    } finally {
      c.kill('SIGKILL');
    }
  } finally {
    echo.kill('SIGKILL');
  }
}

const median = (xs: number[]): number => upperMedian(xs, 0);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      stack: { type: 'string' },
      workload: { type: 'string' },
      port: { type: 'string' },
      count: { type: 'string' },
      rounds: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const stack = (values.stack ?? 'dgram') as Stack;
  if (values.role === 'echo') return echoRole(stack);
  if (values.role === 'client') {
    return clientRole(
      stack,
      values.workload === 'rate' ? 'rate' : 'rtt',
      Number(values.port),
      Number(values.count ?? 10_000),
    );
  }
  const rounds = Number(values.rounds ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-udp-bench-'));
  const socket = join(dir, 'ferryd.sock');
  const daemon = spawn(process.execPath, [FERRY, 'daemon', '--socket', socket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const env = { ...process.env, FERRY_SOCKET: socket };
  const results: Record<string, number[]> = {};
  const record = (key: string, x: number) => {
    const xs = results[key] ?? [];
    xs.push(x);
    results[key] = xs;
  };
  try {
    await firstLine(daemon);
    for (let r = 0; r < rounds; r++) {
      for (const v of VARIANTS) {
        const rtt = await measure(v, 'rtt', 5_000, env);
        const rate = await measure(v, 'rate', 100_000, env);
        record(`${v.label}|rtt p50`, rtt['p50'] ?? 0);
        record(`${v.label}|rtt p99`, rtt['p99'] ?? 0);
        record(`${v.label}|rate`, rate['rate'] ?? 0);
      }
    }
  } finally {
    daemon.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = Object.entries(results).map(([k, xs]) => {
    const [label, metric] = k.split('|');
    return { label: label ?? '', metric: metric ?? '', median: median(xs), rounds: xs };
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  for (const metric of ['rtt p50', 'rtt p99', 'rate']) {
    const base = rows.find((r) => r.metric === metric && r.label === VARIANTS[0]?.label)?.median ?? 1;
    for (const r of rows.filter((x) => x.metric === metric)) {
      const unit = metric === 'rate' ? 'datagrams/s' : 'us';
      const value = metric === 'rate' ? Math.round(r.median).toLocaleString('en-US') : r.median.toFixed(1);
      console.log(
        `${metric.padEnd(8)} ${r.label.padEnd(46)} ${value.padStart(10)} ${unit}  x${(r.median / base).toFixed(2)}`,
      );
    }
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
