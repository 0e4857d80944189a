// Ferry-to-Ferry memif packet rate: two processes (with --pin, pinned to CPU 0 and 1 by taskset),
// poll mode, 64-byte packets and 2^10-slot rings by default. For each direction (client->server, server->
// client) and each transmit path (send() copying from arrays, txAlloc/txCommit writing in place)
// the sender runs flat out for --seconds and the receiver counts with rxBurst; the rate is
// measured at the receiver. Each side also times its busy turns (calls that moved packets): the
// median ns per packet is our code's cost without the waiting, and 1000 / the slower side's figure
// is the rate it could sustain with a CPU of its own (robust to a loaded machine, unlike the rate). Rounds are interleaved; medians are printed (or one JSON line).
// Usage: node examples/dist/bench/memif-f2f.js [--rounds 3] [--seconds 2] [--size 64] [--ring 10]
//   [--pin] [--json]
// The comparison against dpdk-testpmd is `npm run bench:memif`; this is Ferry alone.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createMemif, type Memif } from '@ferry/sdk/memif';
import { upperMedian } from './median.js';

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

/**
 * Per-packet time of busy turns (calls that moved packets), as a median: the cost of our code
 * without the waiting, which on a loaded machine dominates the plain rate.
 */
class TurnTimes {
  readonly #ns = new Float64Array(1 << 16);
  #n = 0;
  add(startMs: number, packets: number): void {
    this.#ns[this.#n++ & 0xffff] = ((performance.now() - startMs) * 1e6) / packets;
  }
  median(): number {
    const a = this.#ns.slice(0, Math.min(this.#n, this.#ns.length)).sort();
    return a[a.length >> 1] ?? 0;
  }
}

/** Sends flat out until stopAt; returns packets queued and the median ns per packet of busy turns. */
function transmit(m: Memif, path: Path, stopAt: number): { sent: number; nsPerPacket: number } {
  const template = new Uint8Array(size).fill(0x5a);
  const batch = Array.from({ length: BURST }, () => template);
  const tx = m.createTxBurst(BURST);
  const times = new TurnTimes();
  let sent = 0;
  while (performance.now() < stopAt) {
    for (let turn = 0; turn < 256; turn++) {
      const t = performance.now();
      let k: number;
      if (path === 'send') {
        k = m.send(0, batch);
      } else {
        k = m.txAlloc(0, tx, BURST, size);
        for (let i = 0; i < k; i++) {
          tx.bytesOf(i).set(template, tx.offsets[i] as number);
          tx.lengths[i] = size;
        }
        if (k > 0) m.txCommit(0, tx, k);
      }
      if (k > 0) {
        times.add(t, k);
        sent += k;
      }
    }
  }
  return { sent, nsPerPacket: times.median() };
}

/**
 * Counts packets for `secs` after the first one; returns packets, the elapsed seconds, the CPU
 * seconds this process used meanwhile and the median ns per packet of busy turns.
 */
async function count(
  m: Memif,
  secs: number,
): Promise<{ packets: number; elapsed: number; cpu: number; nsPerPacket: number }> {
  const burst = m.createRxBurst(BURST);
  const times = new TurnTimes();
  let packets = 0;
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  for (;;) {
    const sliceEnd = performance.now() + 20;
    while (performance.now() < sliceEnd) {
      for (let turn = 0; turn < 64; turn++) {
        const t = performance.now();
        const n = m.rxBurst(0, burst);
        if (n > 0) {
          burst.release();
          times.add(t, n);
          packets += n;
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
      return {
        packets,
        elapsed: (now - t0) / 1000,
        cpu: (c.user + c.system) / 1e6,
        nsPerPacket: times.median(),
      };
    }
    if (t0 === 0 && m.state !== 'up') return { packets: 0, elapsed: 1, cpu: 0, nsPerPacket: 0 };
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
    const r = transmit(m, values.path as Path, performance.now() + (seconds + 0.5) * 1000);
    process.stdout.write(`${JSON.stringify(r)}\n`);
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

interface CaseResult {
  /** Packets per second at the receiver. */
  rate: number;
  /** The receiver's share of a CPU meanwhile (low on a loaded machine). */
  share: number;
  /** Median ns per packet of the sender's / receiver's busy turns. */
  txNs: number;
  rxNs: number;
}

async function runCase(dir: Dir, path: Path, n: number): Promise<CaseResult> {
  const socket = `@ferry-f2f-${process.pid}-${n}`;
  const common = ['--socket', socket, '--dir', dir, '--path', path];
  common.push('--seconds', String(seconds), '--size', String(size), '--ring', String(values.ring));
  const server = spawnSide(['--role', 'server', ...common], 1);
  await new Promise((r) => setTimeout(r, 200));
  const client = spawnSide(['--role', 'client', ...common], 0);
  const [s, c] = await Promise.all([output(server), output(client)]);
  const [rx, tx] = dir === 'c2s' ? [s, c] : [c, s];
  const elapsed = rx['elapsed'] ?? 1;
  return {
    rate: (rx['packets'] ?? 0) / elapsed,
    share: (rx['cpu'] ?? 0) / elapsed,
    txNs: tx['nsPerPacket'] ?? 0,
    rxNs: rx['nsPerPacket'] ?? 0,
  };
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const cases: Array<[Dir, Path]> = [
    ['c2s', 'send'],
    ['c2s', 'txAlloc'],
    ['s2c', 'send'],
    ['s2c', 'txAlloc'],
  ];
  const results = new Map<string, CaseResult[]>();
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const [dir, path] of cases) {
      const key = `${dir} ${path}`;
      const one = await runCase(dir, path, n++);
      results.set(key, [...(results.get(key) ?? []), one]);
    }
  }
  const median = (a: number[]) => upperMedian(a, 0);
  const table = [...results].map(([k, v]) => {
    const txNs = median(v.map((x) => x.txNs));
    const rxNs = median(v.map((x) => x.rxNs));
    return {
      case: k,
      mpps: median(v.map((x) => x.rate)) / 1e6,
      rxCpuShare: median(v.map((x) => x.share)),
      txNsPerPacket: txNs,
      rxNsPerPacket: rxNs,
      // What the slower side could sustain on a CPU of its own.
      busyMpps: 1e3 / Math.max(txNs, rxNs, 1e-9),
    };
  });
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
  console.log('  case           Mpps  rx cpu   tx ns/pkt  rx ns/pkt  busy-turn Mpps');
  for (const t of table) {
    const cols = [
      t.case.padEnd(12),
      t.mpps.toFixed(2).padStart(6),
      `${(t.rxCpuShare * 100).toFixed(0)}%`.padStart(6),
      t.txNsPerPacket.toFixed(1).padStart(11),
      t.rxNsPerPacket.toFixed(1).padStart(10),
      t.busyMpps.toFixed(1).padStart(15),
    ];
    console.log(`  ${cols.join(' ')}`);
  }
}

if (values.role !== undefined) await child();
else await main();
