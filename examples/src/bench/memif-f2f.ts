// Ferry-to-Ferry memif packet rate: two processes (with --pin, pinned to CPU 0 and 1 by taskset),
// poll mode, 64-byte packets and 2^10-slot rings by default. For each direction (client->server, server->
// client) and each transmit path (send() copying from arrays, txAlloc/txCommit writing in place)
// the sender runs flat out for --seconds and the receiver counts with rxBurst; the rate is
// measured at the receiver. Rounds are interleaved; medians are printed (or one JSON line).
// Usage: node examples/dist/bench/memif-f2f.js [--rounds 3] [--seconds 2] [--size 64] [--ring 10]
//   [--pin] [--json]
// The comparison against dpdk-testpmd is `npm run bench:memif`; this is Ferry alone.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createMemif, type Memif } from '@ferry/sdk/memif';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '2' },
    size: { type: 'string', default: '64' },
    ring: { type: 'string', default: '10' },
    pin: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    role: { type: 'string' },
    socket: { type: 'string' },
    dir: { type: 'string' },
    path: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const size = Number(values.size);
const BURST = 256;

type Dir = 'c2s' | 's2c';
type Path = 'send' | 'txAlloc';

/** Sends flat out until the link goes down; returns packets queued. */
function transmit(m: Memif, path: Path, stopAt: number): number {
  const template = new Uint8Array(size).fill(0x5a);
  const batch = Array.from({ length: BURST }, () => template);
  const tx = m.createTxBurst(BURST);
  let sent = 0;
  while (performance.now() < stopAt) {
    for (let turn = 0; turn < 256; turn++) {
      if (path === 'send') {
        sent += m.send(0, batch);
      } else {
        const k = m.txAlloc(0, tx, BURST, size);
        for (let i = 0; i < k; i++) {
          tx.bytesOf(i).set(template, tx.offsets[i] as number);
          tx.lengths[i] = size;
        }
        if (k > 0) sent += m.txCommit(0, tx, k);
      }
    }
  }
  return sent;
}

/**
 * Counts packets for `secs` after the first one; returns packets, the elapsed seconds and the CPU
 * seconds this process used meanwhile.
 */
async function count(m: Memif, secs: number): Promise<{ packets: number; elapsed: number; cpu: number }> {
  const burst = m.createRxBurst(BURST);
  let packets = 0;
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  for (;;) {
    const sliceEnd = performance.now() + 20;
    while (performance.now() < sliceEnd) {
      for (let turn = 0; turn < 64; turn++) {
        const n = m.rxBurst(0, burst);
        if (n > 0) {
          packets += n;
          burst.release();
        }
      }
      if (packets > 0 && t0 === 0) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
    }
    const now = performance.now();
    if (t0 !== 0 && now - t0 >= secs * 1000) {
      const c = process.cpuUsage(cpu0);
      return { packets, elapsed: (now - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
    }
    if (t0 === 0 && m.state !== 'up') return { packets: 0, elapsed: 1, cpu: 0 };
    await new Promise((r) => setImmediate(r));
  }
}

async function child(): Promise<void> {
  const role = values.role as 'client' | 'server';
  const m = createMemif({
    role,
    socket: String(values.socket),
    rxMode: 'poll',
    ringSize: Number(values.ring),
  });
  await m.waitUp(10_000);
  const dir = values.dir as Dir;
  const sender = (dir === 'c2s') === (role === 'client');
  if (sender) {
    // Give the receiver a moment to start counting, then send for the measured time plus slack.
    await new Promise((r) => setTimeout(r, 100));
    const sent = transmit(m, values.path as Path, performance.now() + (seconds + 0.5) * 1000);
    process.stdout.write(`${JSON.stringify({ sent })}\n`);
  } else {
    const r = await count(m, seconds);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  }
  await m.close();
}

function spawnSide(args: string[], cpu: number): ChildProcess {
  const script = fileURLToPath(import.meta.url);
  const pin = values.pin && existsSync('/usr/bin/taskset') ? ['taskset', '-c', String(cpu)] : [];
  const cmd = [...pin, process.execPath, script, ...args];
  return spawn(cmd[0] as string, cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
}

function output(p: ChildProcess): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    let s = '';
    p.stdout?.on('data', (d) => {
      s += String(d);
    });
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(s.trim().split('\n').pop() ?? '{}'));
      } catch {
        reject(new Error(`side exited ${code} without a result`));
      }
    });
  });
}

/** One measurement: the receiver's rate, and its share of a CPU meanwhile (low under load). */
async function runCase(dir: Dir, path: Path, n: number): Promise<{ rate: number; share: number }> {
  const socket = `@ferry-f2f-${process.pid}-${n}`;
  const common = ['--socket', socket, '--dir', dir, '--path', path];
  common.push('--seconds', String(seconds), '--size', String(size), '--ring', String(values.ring));
  const server = spawnSide(['--role', 'server', ...common], 1);
  await new Promise((r) => setTimeout(r, 200));
  const client = spawnSide(['--role', 'client', ...common], 0);
  const [s, c] = await Promise.all([output(server), output(client)]);
  const rx = dir === 'c2s' ? s : c;
  const elapsed = rx['elapsed'] ?? 1;
  return { rate: (rx['packets'] ?? 0) / elapsed, share: (rx['cpu'] ?? 0) / elapsed };
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const cases: Array<[Dir, Path]> = [
    ['c2s', 'send'],
    ['c2s', 'txAlloc'],
    ['s2c', 'send'],
    ['s2c', 'txAlloc'],
  ];
  const results = new Map<string, Array<{ rate: number; share: number }>>();
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const [dir, path] of cases) {
      const key = `${dir} ${path}`;
      const one = await runCase(dir, path, n++);
      results.set(key, [...(results.get(key) ?? []), one]);
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? 0;
  const table = [...results].map(([k, v]) => ({
    case: k,
    mpps: median(v.map((x) => x.rate)) / 1e6,
    rounds: v.map((x) => x.rate / 1e6),
    rxCpuShare: v.map((x) => x.share),
  }));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ size, seconds, rounds, ring: Number(values.ring), pin: values.pin, results: table })}\n`,
    );
    return;
  }
  const pinned = values.pin ? 'pinned to CPU 0 / 1' : 'not pinned';
  console.log(
    `memif Ferry <-> Ferry, ${size} B, ring 2^${values.ring}, poll mode, ${pinned}, ${rounds} rounds of ${seconds} s (median Mpps)`,
  );
  for (const t of table) {
    const each = t.rounds.map(
      (x, i) => `${x.toFixed(2)} (rx cpu ${((t.rxCpuShare[i] ?? 0) * 100).toFixed(0)}%)`,
    );
    console.log(`  ${t.case.padEnd(12)} ${t.mpps.toFixed(2).padStart(6)}   [${each.join(', ')}]`);
  }
}

if (values.role !== undefined) await child();
else await main();
