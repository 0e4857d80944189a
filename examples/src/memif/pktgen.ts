/**
 * Packet generator / counter on a memif interface (ethernet mode).
 *   node examples/dist/memif/pktgen.js --mode tx --role client --socket @ferry-gen --size 64 --count 1000000
 *   node examples/dist/memif/pktgen.js --mode rx --role server --socket @ferry-gen --duration 5
 * --mode tx sends UDP/IPv4 frames of --size bytes (sequence number in the payload) as fast as the
 * ring takes them; --mode rx counts what arrives (and with --check-seq, that the sequence numbers
 * of a Ferry generator arrive complete and in order). Stops after --count packets (0 = no limit;
 * rx counts whole bursts, so it may report a few more), --duration seconds (default 10, timed from
 * the first packet), or SIGINT / SIGTERM, whichever comes first.
 * --warmup S excludes the first S seconds after the first packet from the counts (for rates).
 * --rx-mode poll (default) runs its own busy loop; interrupt / adaptive use the SDK's handler.
 * Frames larger than --buffer-size (2048) are sent with send(), chained over several buffers.
 * --hold keeps the link up after the run until SIGINT / SIGTERM / stdin closes (so a DPDK peer can
 * stop forwarding first). Prints 'pktgen up' when the link is up and a summary line at the end
 * (JSON with --json).
 */

import { parseArgs } from 'node:util';
import { createMemif, type Memif } from '@ferry/sdk/memif';
import { parseIpv4, parseMac, writeUdpFrame } from './frames.js';

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'rx' },
    role: { type: 'string', default: 'client' },
    socket: { type: 'string', default: '@ferry-gen' },
    id: { type: 'string', default: '0' },
    size: { type: 'string', default: '64' },
    count: { type: 'string', default: '0' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '0' },
    burst: { type: 'string', default: '64' },
    'rx-mode': { type: 'string', default: 'poll' },
    'ring-size': { type: 'string', default: '10' },
    'buffer-size': { type: 'string', default: '2048' },
    'check-seq': { type: 'boolean', default: false },
    hold: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const mode = opt.mode === 'tx' ? 'tx' : 'rx';
const size = Number(opt.size);
const count = Number(opt.count);
const durationMs = Number(opt.duration) * 1000;
const warmupMs = Number(opt.warmup) * 1000;
const burstSize = Number(opt.burst);
const rxMode =
  opt['rx-mode'] === 'interrupt' ? 'interrupt' : opt['rx-mode'] === 'adaptive' ? 'adaptive' : 'poll';
if (
  !(size >= 42 && size <= 65535) ||
  !(count >= 0) ||
  !(durationMs > 0) ||
  !(warmupMs >= 0) ||
  !(burstSize >= 1 && burstSize <= 1024)
) {
  console.error('pktgen: bad --size (42..65535), --count, --duration or --burst (1..1024)');
  process.exit(2);
}

const m: Memif = createMemif({
  role: opt.role === 'server' ? 'server' : 'client',
  socket: opt.socket,
  id: Number(opt.id),
  mode: 'ethernet',
  rxMode,
  ringSize: Number(opt['ring-size']),
  bufferSize: Number(opt['buffer-size']),
});

// idleTurns: loop turns that moved nothing (tx: ring full; rx: ring empty) - a busy peer or a slow one.
const result = {
  mode,
  packets: 0,
  bytes: 0,
  seconds: 0,
  pps: 0,
  cpuNsPerPacket: 0,
  busyNsPerPacket: 0,
  seqErrors: 0,
  downs: 0,
  total: 0,
  turns: 0,
  idleTurns: 0,
};
// cpuNsPerPacket: this process's CPU time (all threads) in the window per packet, what a packet
// costs Ferry whatever else the machine runs (it includes idle turns: see idleTurns).
let cpuAtStart = process.cpuUsage();
// busyNsPerPacket (poll loops): the median, over loop turns that moved packets, of the turn's wall
// time per packet - what a packet costs Ferry when it does not wait for its peer; 1e9 / it is the
// rate Ferry could sustain on a CPU of its own. The median keeps turns that were preempted (on a
// busy machine) from counting. Samples: one turn in 8, the first 2^20 busy ones of the window.
const turnNs = new Float64Array(1 << 20);
let busyTurns = 0;

function busyTurn(ms: number, packets: number): void {
  if (busyTurns < turnNs.length) turnNs[busyTurns++] = (ms * 1e6) / packets;
}

function medianTurnNs(): number {
  if (busyTurns === 0) return 0;
  const xs = turnNs.subarray(0, busyTurns).sort();
  return xs[busyTurns >>> 1] as number;
}
/** Start of the counted window: the first packet, plus the warm-up. */
let firstAt = 0;
let warmUntil = 0;
/** Packets and bytes before the window (the warm-up). */
let warmPackets = 0;
let warmBytes = 0;
let lastAt = 0;
let finished = false;

function summary(): string {
  result.total = result.packets;
  result.packets -= warmPackets;
  result.bytes -= warmBytes;
  result.seconds = firstAt === 0 ? 0 : (lastAt - firstAt) / 1000;
  result.pps = result.seconds > 0 ? Math.round(result.packets / result.seconds) : 0;
  result.busyNsPerPacket = Math.round(medianTurnNs());
  const cpu = process.cpuUsage(cpuAtStart);
  result.cpuNsPerPacket =
    result.packets > 0 ? Math.round(((cpu.user + cpu.system) * 1000) / result.packets) : 0;
  if (opt.json) return JSON.stringify(result);
  const mpps = (result.pps / 1e6).toFixed(3);
  return `pktgen ${mode}: ${result.packets} packets, ${result.bytes} bytes in ${result.seconds.toFixed(3)} s (${mpps} Mpps; ${result.cpuNsPerPacket} CPU ns/packet, ${result.busyNsPerPacket} ns/packet in busy turns, median), seq errors ${result.seqErrors}`;
}

async function finish(): Promise<void> {
  if (finished) return;
  finished = true;
  if (moved) progress(performance.now());
  console.log(summary());
  if (opt.hold) {
    // The caller decides when the link goes away (a DPDK peer should stop forwarding first).
    process.stdin.resume();
    await new Promise<void>((resolve) => {
      process.stdin.once('end', resolve);
      process.stdin.once('close', resolve);
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
  }
  await m.close();
  process.exit(0);
}

// Reading the clock costs about as much as moving a burst of packets, so the busy loops read it
// once every 32 turns; `moved` says packets moved since the last reading.
let moved = false;

/** At a clock reading after packets moved: the window opens at the first, again after warm-up. */
function progress(now: number): void {
  moved = false;
  lastAt = now;
  if (firstAt === 0) {
    firstAt = now;
    warmUntil = warmupMs > 0 ? now + warmupMs : 0;
    cpuAtStart = process.cpuUsage();
    busyTurns = 0;
  } else if (warmUntil !== 0 && now >= warmUntil) {
    warmUntil = 0;
    firstAt = now;
    cpuAtStart = process.cpuUsage();
    busyTurns = 0;
    warmPackets = result.packets;
    warmBytes = result.bytes;
  }
}

function countReached(): boolean {
  return count > 0 && result.packets >= count;
}

function timeUp(now: number): boolean {
  return firstAt > 0 && warmUntil === 0 && now - firstAt >= durationMs;
}

// --- generator ---------------------------------------------------------------------------------
const template = new Uint8Array(size);
writeUdpFrame(
  template,
  0,
  size,
  {
    ethDst: parseMac('02:00:00:00:00:00'),
    ethSrc: parseMac('02:fe:00:00:00:02'),
    src: parseIpv4('198.18.0.2'),
    dst: parseIpv4('198.18.0.1'),
    srcPort: 9,
    dstPort: 9,
  },
  0,
);
const seqAt = 14 + 20 + 8; // first payload byte after Ethernet + IPv4 + UDP headers
const hasSeq = size >= seqAt + 4;

// Frames that fit one buffer are written straight into the shared buffers (txAlloc/txCommit);
// larger ones go through send(), which chains them over several buffers (NEXT).
const chained = size > Number(opt['buffer-size']);
const sendBatch = chained ? Array.from({ length: burstSize }, () => template.slice()) : [];

function stampSeq(bytes: Uint8Array, at: number, seq: number): void {
  bytes[at + seqAt] = seq >>> 24;
  bytes[at + seqAt + 1] = (seq >>> 16) & 255;
  bytes[at + seqAt + 2] = (seq >>> 8) & 255;
  bytes[at + seqAt + 3] = seq & 255;
}

/** Queues up to `want` frames; returns how many. */
function txOnce(want: number): number {
  if (chained) {
    if (hasSeq) for (let i = 0; i < want; i++) stampSeq(sendBatch[i] as Uint8Array, 0, result.packets + i);
    return m.send(0, sendBatch, 0, want);
  }
  const tx = txBurst;
  const k = m.txAlloc(0, tx, want, size);
  for (let i = 0; i < k; i++) {
    const bytes = tx.bytesOf(i);
    const at = tx.offsets[i] as number;
    bytes.set(template, at);
    if (hasSeq) stampSeq(bytes, at, result.packets + i);
    tx.lengths[i] = size;
  }
  if (k > 0) m.txCommit(0, tx, k);
  return k;
}

function txLoop(): void {
  if (finished) return;
  const sliceEnd = performance.now() + 2;
  for (let turn = 0; ; turn++) {
    if (countReached()) {
      void finish();
      return;
    }
    const want = count > 0 ? Math.min(burstSize, count - result.packets) : burstSize;
    // One turn in 8 is timed: reading the clock costs about as much as a few packets.
    const timed = (turn & 7) === 0;
    const t0 = timed ? performance.now() : 0;
    const k = txOnce(want);
    result.turns++;
    if (k > 0) {
      result.packets += k;
      result.bytes += k * size;
      moved = true;
      if (timed) busyTurn(performance.now() - t0, k);
    } else if (m.state !== 'up') {
      break;
    } else {
      result.idleTurns++;
    }
    if ((turn & 31) === 31) {
      const now = performance.now();
      if (moved) progress(now);
      if (timeUp(now)) {
        void finish();
        return;
      }
      // Yield now and then so control-socket events (down, reconnect) are handled.
      if (now >= sliceEnd) break;
    }
  }
  setImmediate(txLoop);
}
const txBurst = m.createTxBurst(burstSize);

// --- counter -----------------------------------------------------------------------------------
let expectSeq = 0;
const checkSeq = opt['check-seq'] === true;
function checkSeq1(bytes: Uint8Array, at: number, len: number): void {
  if (len >= seqAt + 4) {
    const seq =
      (((bytes[at + seqAt] as number) << 24) |
        ((bytes[at + seqAt + 1] as number) << 16) |
        ((bytes[at + seqAt + 2] as number) << 8) |
        (bytes[at + seqAt + 3] as number)) >>>
      0;
    if (seq !== expectSeq) result.seqErrors++;
    expectSeq = seq + 1;
  }
}

const rxBurst = m.createRxBurst(256);
function rxLoop(): void {
  if (finished) return;
  const sliceEnd = performance.now() + 2;
  for (let turn = 0; ; turn++) {
    const timed = (turn & 7) === 0;
    const t0 = timed ? performance.now() : 0;
    const n = m.rxBurst(0, rxBurst);
    result.turns++;
    if (n === 0) result.idleTurns++;
    if (n > 0) {
      const lengths = rxBurst.lengths;
      for (let i = 0; i < n; i++) result.bytes += lengths[i] as number;
      if (checkSeq)
        for (let i = 0; i < n; i++)
          checkSeq1(rxBurst.bytesOf(i), rxBurst.offsets[i] as number, lengths[i] as number);
      result.packets += n;
      rxBurst.release();
      moved = true;
      if (timed) busyTurn(performance.now() - t0, n);
      if (countReached()) {
        void finish();
        return;
      }
    }
    if ((turn & 31) === 31) {
      const now = performance.now();
      if (moved) progress(now);
      if (timeUp(now)) {
        void finish();
        return;
      }
      if (now >= sliceEnd) break;
    }
  }
  setImmediate(rxLoop);
}

if (mode === 'rx' && rxMode !== 'poll') {
  m.onPackets((burst) => {
    for (let i = 0; i < burst.count; i++) {
      const len = burst.lengths[i] as number;
      result.bytes += len;
      // A chained packet's first segment holds the sequence number (frames are >= 46 bytes).
      if (checkSeq) checkSeq1(burst.bytesOf(i), burst.offsets[i] as number, len);
    }
    result.packets += burst.count;
    const now = performance.now();
    progress(now);
    if (countReached() || timeUp(now)) void finish();
  });
}

let started = false;
m.on('up', (info) => {
  console.log(
    `pktgen up: ${info.role} ${opt.socket}, peer '${info.peerName}', ring 2^${info.ringSize}, buffers ${info.bufferSize}`,
  );
  if (started) return;
  started = true;
  if (mode === 'tx') setImmediate(txLoop);
  else if (rxMode === 'poll') setImmediate(rxLoop);
});
m.on('down', (reason) => {
  result.downs++;
  console.log(`pktgen down: ${reason.code} ${reason.message}`);
});
console.log(`pktgen ${mode}: ${opt.role === 'server' ? 'listening on' : 'connecting to'} ${opt.socket}`);
// A run that never sees its peer still ends: the duration also bounds the wait for the link.
setTimeout(() => {
  if (firstAt === 0) void finish();
}, durationMs + 10_000).unref();
process.on('SIGINT', () => void finish());
process.on('SIGTERM', () => void finish());
