// Topics between hosts (`node examples/dist/bench/topics-remote.js`): a publisher on ferryd A and
// k subscribers on ferryd B, B importing the topic from A's relay listener over TCP on loopback
// (one stream per topic and host, docs/messages.md), against zeromq PUB/SUB over tcp:// between the
// same roles. The roles are bench:messages' own pub/sub processes (messages.js ppub / psub), so
// messages, warm-up and counting are that case's; interleaved over rounds, medians.
//
//   node examples/dist/bench/topics-remote.js [--rounds 3] [--scale 0.3] [--subscribers 1,4] [--json]
//
// Reported per subscriber count and variant: the publisher's rate, each subscriber's (median), the
// share of messages a subscriber received (under lose-oldest a relay stream that falls behind
// loses), subscriber CPU per message, and for Ferry the CPU per message of ferryd A (reads the
// rings, writes the stream) and ferryd B (reads the stream, writes its local ring).

import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../unmodified/procs.js';
import { cpuUsOf } from './proc-cpu.js';

const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));
const ROLES = fileURLToPath(new URL('./messages.js', import.meta.url));

type Variant = 'zmq' | 'ferry';

interface Row {
  pubRate: number;
  subRate: number;
  received: number;
  subCpuUsPerMsg: number;
  ferrydAUsPerMsg: number;
  ferrydBUsPerMsg: number;
}

const median = (a: number[]): number => {
  const s = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  return s.length === 0 ? Number.NaN : (s[(s.length - 1) >> 1] as number);
};

function message(p: ChildProcess, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child timed out')), timeoutMs);
    p.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited ${code}`));
    });
  });
}

async function startDaemon(
  dir: string,
  name: string,
  config: unknown,
): Promise<{ p: ChildProcess; socket: string }> {
  const socket = join(dir, `${name}.sock`);
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const p = fork(FERRY, ['daemon', '--socket', socket, '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) resolve();
    });
    p.once('exit', (c) => reject(new Error(`ferryd ${name} exited ${c}`)));
  });
  return { p, socket };
}

async function measure(
  variant: Variant,
  subscribers: number,
  n: number,
  target: string,
  envA: NodeJS.ProcessEnv,
  envB: NodeJS.ProcessEnv,
  daemons: { a: ChildProcess; b: ChildProcess } | null,
): Promise<Row> {
  const child = (args: string[], env: NodeJS.ProcessEnv) =>
    fork(ROLES, args, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pub = child(['ppub', variant, target, String(n)], envA);
  const subs: ChildProcess[] = [];
  try {
    await message(pub, 60_000);
    for (let i = 0; i < subscribers; i++) subs.push(child(['psub', variant, target], envB));
    await Promise.all(subs.map((s) => message(s, 60_000)));
    // B's first subscriber makes B connect to A (Ferry); zeromq subscriptions travel too.
    await new Promise((r) => setTimeout(r, 800));
    const results = subs.map(
      (s) => message(s, 300_000) as Promise<{ received: number; rate: number; cpuUs: number }>,
    );
    const a0 = cpuUsOf(daemons?.a.pid);
    const b0 = cpuUsOf(daemons?.b.pid);
    pub.send('go');
    const p = (await message(pub, 300_000)) as { rate: number };
    const r = await Promise.all(results);
    // Over the warm-up, the timed part and the end markers: per message published in all.
    const total = n + Number(process.env['BENCH_WARMUP'] ?? 0);
    return {
      pubRate: p.rate,
      subRate: median(r.map((x) => x.rate)),
      received: median(r.map((x) => x.received / n)),
      subCpuUsPerMsg: median(r.map((x) => x.cpuUs / Math.max(1, x.received))),
      ferrydAUsPerMsg: daemons ? (cpuUsOf(daemons.a.pid) - a0) / total : 0,
      ferrydBUsPerMsg: daemons ? (cpuUsOf(daemons.b.pid) - b0) / total : 0,
    };
  } finally {
    pub.kill('SIGKILL');
    for (const s of subs) s.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      scale: { type: 'string', default: '0.3' },
      subscribers: { type: 'string', default: '1,4' },
      warmup: { type: 'string', default: '20000' },
      json: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  const n = Math.round(200_000 * Number(values.scale));
  const counts = String(values.subscribers).split(',').map(Number);
  if (!(rounds >= 1) || !(n >= 1) || counts.some((c) => !(Number.isInteger(c) && c >= 1 && c <= 64))) {
    throw new Error('--rounds and --scale must be positive, --subscribers whole numbers 1-64');
  }
  process.env['BENCH_WARMUP'] = String(Number(values.warmup));
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-remote-'));
  // One topic per measurement: B imports each by name.
  const topics: string[] = [];
  for (let r = 0; r < rounds; r++) for (const c of counts) topics.push(`remote-${r}-${c}`);
  const relay = await freePort();
  const from = `127.0.0.1:${relay}`;
  const a = await startDaemon(dir, 'a', { topics: { relayListen: from, export: [{ topic: '*' }] } });
  const b = await startDaemon(dir, 'b', { topics: { import: topics.map((topic) => ({ topic, from })) } });
  const samples = new Map<string, Row[]>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of counts) {
        for (const v of ['zmq', 'ferry'] as const) {
          const target = v === 'ferry' ? `remote-${r}-${c}` : `tcp://127.0.0.1:${await freePort()}`;
          const envA = v === 'ferry' ? { ...process.env, FERRY_SOCKET: a.socket } : process.env;
          const envB = v === 'ferry' ? { ...process.env, FERRY_SOCKET: b.socket } : process.env;
          try {
            const row = await measure(v, c, n, target, envA, envB, v === 'ferry' ? { a: a.p, b: b.p } : null);
            samples.set(`${c}|${v}`, [...(samples.get(`${c}|${v}`) ?? []), row]);
            if (!values.json) process.stderr.write(`round ${r + 1} x${c} ${v}: ${JSON.stringify(row)}\n`);
          } catch (err) {
            process.stderr.write(`round ${r + 1} x${c} ${v}: failed: ${(err as Error).message}\n`);
          }
        }
      }
    }
  } finally {
    a.p.kill('SIGTERM');
    b.p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const table = [];
  for (const c of counts) {
    const zmqRate = median((samples.get(`${c}|zmq`) ?? []).map((x) => x.subRate));
    for (const v of ['zmq', 'ferry'] as const) {
      const s = samples.get(`${c}|${v}`) ?? [];
      const m = (f: (x: Row) => number, d = 2) => +median(s.map(f)).toFixed(d);
      table.push({
        subscribers: c,
        variant: v === 'ferry' ? 'ferry (A -> relay -> B)' : 'zmq tcp',
        pubRate: Math.round(median(s.map((x) => x.pubRate))),
        subRate: Math.round(median(s.map((x) => x.subRate))),
        xZmqSub: +(median(s.map((x) => x.subRate)) / zmqRate).toFixed(2),
        received: m((x) => x.received, 3),
        subCpuUsPerMsg: m((x) => x.subCpuUsPerMsg),
        ...(v === 'ferry'
          ? { ferrydAUsPerMsg: m((x) => x.ferrydAUsPerMsg), ferrydBUsPerMsg: m((x) => x.ferrydBUsPerMsg) }
          : {}),
      });
    }
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (values.json) console.log(JSON.stringify({ rounds, messages: n, load, table }, null, 1));
  else {
    console.log(`topics between two ferryds on loopback, ${n} messages, ${rounds} rounds, load ${load}`);
    console.table(table);
  }
}

await main();
