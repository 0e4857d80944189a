// bench:shm: one shared-memory fifo between two processes vs node:net over a unix socket, and the
// SDK's Socket over the same kind of fifo (cut-through through a ferryd this bench starts).
//
// Two shapes, each in the same run and interleaved round by round: (a) a byte stream written in
// 256 KiB chunks, (b) 64-byte messages, one per enqueue/write call. The fifo runs in poll and in
// adaptive mode; the receiver in another process times first byte to last. The Socket runs in
// adaptive mode (the default) twice: zero-copy (the writer fills `reserve()`d fifo space and
// commits it, the reader looks at `onView` views in place and releases them) and with the node:net
// surface ('data' events, write()). All fifos are 4 MiB. Prints a table of medians (and ratios vs
// the unix socket, and of the zero-copy Socket vs the raw fifo in the same mode), or one JSON line
// with --json.
// Options: --rounds N (default 5), --quick (smaller volumes), --json, --only S (only transports whose
// name contains S, e.g. socket; the unix socket always runs).

import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ferry from '@ferry/sdk';
import {
  close,
  Doorbell,
  FifoProducer,
  fifoFootprint,
  initFifo,
  Notifier,
  type NotifyMode,
  recvMsg,
  ring,
  Segment,
  socketpair,
} from '@ferry/sdk/internal';
import { median } from './median.js';

type Kind = 'stream' | 'msgs';
type Transport = 'fifo-poll' | 'fifo-adaptive' | 'socket-zero-copy' | 'socket-data' | 'unix';
interface CaseResult {
  bytes: number;
  elapsedMs: number;
  /** CPU time of the sender (this process) and of the receiver, from the receiver's 'ready'. */
  senderCpuUs: number;
  receiverCpuUs: number;
}

const STREAM_CHUNK_BYTES = 256 * 1024;
const MESSAGE_BYTES = 64;
const FIFO_BYTES = 4 * 1024 * 1024;
const SEGMENT_BYTES = 8 * 1024 * 1024;
const CASE_TIME_CAP_MS = 30_000;
const PEER = new URL('./shm-peer.js', import.meta.url);
const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const quick = argv.includes('--quick');
const roundsArg = argv.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Math.max(1, Number(argv[roundsArg + 1]) || 5) : 5;
const TOTAL: Record<Kind, number> = {
  stream: (quick ? 256 : 1024) * 1024 * 1024,
  msgs: (quick ? 200_000 : 1_000_000) * MESSAGE_BYTES,
};

function awaitResult(child: ChildProcess, onReady: () => void): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('benchmark case timed out')), CASE_TIME_CAP_MS);
    child.on('exit', (code) => reject(new Error(`peer exited early (${code})`)));
    let cpu0: NodeJS.CpuUsage | undefined;
    child.on('message', (m: { type: string; bytes?: number; elapsedMs?: number; cpuUs?: number }) => {
      if (m.type === 'ready') {
        cpu0 = process.cpuUsage();
        onReady();
      } else if (m.type === 'result') {
        clearTimeout(timer);
        const cpu = process.cpuUsage(cpu0);
        resolve({
          bytes: m.bytes ?? 0,
          elapsedMs: m.elapsedMs ?? Number.NaN,
          senderCpuUs: cpu.user + cpu.system,
          receiverCpuUs: m.cpuUs ?? Number.NaN,
        });
      }
    });
  });
}

async function runFifo(mode: NotifyMode, kind: Kind): Promise<CaseResult> {
  const total = TOTAL[kind];
  const segment = Segment.create('ferry-bench-shm', SEGMENT_BYTES);
  const doorbell = Doorbell.create();
  const [mine, theirs] = socketpair('seqpacket', { nonblock: true });
  const offset = segment.alloc(fifoFootprint(FIFO_BYTES));
  initFifo(segment.buffer, offset, FIFO_BYTES);
  const producer = new FifoProducer(segment.buffer, offset, FIFO_BYTES);
  const src = new Uint8Array(kind === 'stream' ? STREAM_CHUNK_BYTES : MESSAGE_BYTES).fill(0x5a);
  const args = ['fifo', mode, kind, String(total), String(SEGMENT_BYTES), String(offset), String(FIFO_BYTES)];
  const child = fork(PEER, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', segment.fd, doorbell.ringFd, theirs],
  });
  close(theirs);
  let childRingFd = -1;
  let sent = 0;
  let chunkOff = 0;
  const perPoll = kind === 'stream' ? 16 : 4096;
  const notifier = new Notifier({
    mode,
    doorbell,
    poll: () => {
      let wrote = 0;
      for (let i = 0; i < perPoll && sent < total; i++) {
        const view =
          kind === 'stream' ? src.subarray(chunkOff, Math.min(src.length, chunkOff + total - sent)) : src;
        const n = producer.enqueue(view);
        if (n <= 0) break;
        wrote += n;
        sent += n;
        if (kind === 'stream') chunkOff = (chunkOff + n) % src.length;
      }
      if (wrote > 0 && producer.notifyNeeded()) ring(childRingFd);
      if (sent >= total) notifier.stop();
      return wrote;
    },
    arm: () => producer.armSpace(),
  });
  try {
    return await awaitResult(child, () => {
      childRingFd = recvMsg(mine, new Uint8Array(8), 1)?.fds[0] ?? -1;
      notifier.start();
    });
  } finally {
    notifier.stop();
    child.kill('SIGKILL');
    if (childRingFd >= 0) close(childRingFd);
    close(mine);
    doorbell.close();
    segment.release();
  }
}

function writeAll(socket: Socket, kind: Kind, total: number): void {
  const buf = Buffer.alloc(kind === 'stream' ? STREAM_CHUNK_BYTES : MESSAGE_BYTES, 0x5a);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const chunk = total - sent < buf.length ? buf.subarray(0, total - sent) : buf;
      sent += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

/**
 * The sender starts once it has the connection and the receiver said it is ready (in either
 * order), so that the CPU both count from 'ready' covers every byte.
 */
function startWhenBoth(): { connected: (write: () => void) => void; ready: () => void } {
  let write: (() => void) | null = null;
  let isReady = false;
  return {
    connected: (w) => {
      if (isReady) w();
      else write = w;
    },
    ready: () => {
      isReady = true;
      write?.();
    },
  };
}

async function runUnix(kind: Kind): Promise<CaseResult> {
  const total = TOTAL[kind];
  const path = join(tmpdir(), `ferry-bench-${process.pid}.sock`);
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const start = startWhenBoth();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    start.connected(() => writeAll(socket, kind, total));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const child = fork(PEER, ['unix', kind, String(total), path], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  try {
    return await awaitResult(child, start.ready);
  } finally {
    child.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(path, { force: true });
  }
}

/** The ferryd the Socket cases connect through (cut-through: it is not on the data path). */
let daemon: { proc: ChildProcess; socket: string; dir: string } | null = null;

async function ferryd(): Promise<string> {
  if (daemon) return daemon.socket;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-shm-'));
  const socket = join(dir, 'ferryd.sock');
  const proc = spawn(process.execPath, [FERRY, 'daemon', '--socket', socket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  daemon = { proc, socket, dir };
  // Its first line is about the configuration; the socket is there once it says 'listening'.
  let out = '';
  while (!out.includes('listening')) {
    const [chunk] = (await once(proc.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
    out += chunk.toString();
  }
  return socket;
}

function stopFerryd(): void {
  if (!daemon) return;
  daemon.proc.kill('SIGTERM');
  rmSync(daemon.dir, { recursive: true, force: true });
  daemon = null;
}
// Whatever ends this process ends its ferryd too.
process.once('exit', stopFerryd);

/** Writes `total` bytes in chunks (256 KiB) or messages (64 B), one reserve/commit or write each. */
function pumpSocket(socket: ferry.Socket, api: 'zero-copy' | 'data', kind: Kind, total: number): void {
  const src = Buffer.alloc(kind === 'stream' ? STREAM_CHUNK_BYTES : MESSAGE_BYTES, 0x5a);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const want = Math.min(src.length, total - sent);
      if (api === 'data') {
        sent += want;
        if (!socket.write(want === src.length ? src : src.subarray(0, want))) {
          socket.once('drain', pump);
          return;
        }
        continue;
      }
      // Filled in place: the one copy a writer that produces its bytes there would not even make.
      const r = socket.reserve(want);
      if (r === null) {
        socket.once('drain', pump);
        return;
      }
      const space = r.bytes;
      space.set(space.length === src.length ? src : src.subarray(0, space.length));
      r.commit(space.length);
      sent += space.length;
    }
  };
  pump();
}

async function runSocket(api: 'zero-copy' | 'data', kind: Kind): Promise<CaseResult> {
  const total = TOTAL[kind];
  const ferrydSocket = await ferryd();
  const start = startWhenBoth();
  const server = ferry.createServer({ socket: ferrydSocket, mode: 'adaptive' }, (socket) => {
    socket.on('error', () => {});
    start.connected(() => pumpSocket(socket, api, kind, total));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen('tcp://127.0.0.1:0', resolve);
  });
  const uri = server.address()?.uri ?? '';
  const child = fork(PEER, ['socket', api, kind, String(total), uri, String(FIFO_BYTES)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FERRY_SOCKET: ferrydSocket, FERRY_MODE: 'adaptive' },
  });
  try {
    return await awaitResult(child, start.ready);
  } finally {
    child.kill('SIGKILL');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function runCase(transport: Transport, kind: Kind): Promise<CaseResult> {
  if (transport === 'unix') return runUnix(kind);
  if (transport === 'socket-zero-copy') return runSocket('zero-copy', kind);
  if (transport === 'socket-data') return runSocket('data', kind);
  return runFifo(transport === 'fifo-poll' ? 'poll' : 'adaptive', kind);
}

const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? (argv[onlyArg + 1] ?? '') : '';
const transports = (
  ['fifo-poll', 'fifo-adaptive', 'socket-zero-copy', 'socket-data', 'unix'] as Transport[]
).filter((t) => t === 'unix' || t.includes(only));
const kinds: Kind[] = ['stream', 'msgs'];
const samples = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
try {
  for (let r = 0; r < rounds; r++) {
    for (const kind of kinds) {
      // Rotate the order each round so no transport always runs first (warm caches, turbo).
      for (let i = 0; i < transports.length; i++) {
        const transport = transports[(i + r) % transports.length] as Transport;
        const res = await runCase(transport, kind);
        const value =
          kind === 'stream'
            ? res.bytes / res.elapsedMs / 1e6
            : res.bytes / MESSAGE_BYTES / res.elapsedMs / 1e3;
        const key = `${kind}:${transport}`;
        samples.set(key, [...(samples.get(key) ?? []), value]);
        // CPU per MiB (stream) or per message: carries under load, where rates do not.
        const units = kind === 'stream' ? res.bytes / (1024 * 1024) : res.bytes / MESSAGE_BYTES;
        cpu.set(`${key}:sender`, [...(cpu.get(`${key}:sender`) ?? []), res.senderCpuUs / units]);
        cpu.set(`${key}:receiver`, [...(cpu.get(`${key}:receiver`) ?? []), res.receiverCpuUs / units]);
        if (!json) process.stderr.write(`round ${r + 1}/${rounds} ${key}: ${value.toFixed(2)}\n`);
      }
    }
  }
} finally {
  stopFerryd();
}

interface KindSummary {
  fifoPoll: number;
  fifoAdaptive: number;
  socketZeroCopy: number;
  socketData: number;
  unix: number;
  pollVsUnix: number;
  adaptiveVsUnix: number;
  socketZeroCopyVsUnix: number;
  socketDataVsUnix: number;
  /** The zero-copy Socket against the raw fifo, both adaptive (issue 18's goal: >= 0.8). */
  socketZeroCopyVsFifo: number;
}
const out = {} as Record<Kind, KindSummary>;
for (const kind of kinds) {
  const m = (t: Transport) => median(samples.get(`${kind}:${t}`) ?? []);
  out[kind] = {
    fifoPoll: m('fifo-poll'),
    fifoAdaptive: m('fifo-adaptive'),
    socketZeroCopy: m('socket-zero-copy'),
    socketData: m('socket-data'),
    unix: m('unix'),
    pollVsUnix: m('fifo-poll') / m('unix'),
    adaptiveVsUnix: m('fifo-adaptive') / m('unix'),
    socketZeroCopyVsUnix: m('socket-zero-copy') / m('unix'),
    socketDataVsUnix: m('socket-data') / m('unix'),
    socketZeroCopyVsFifo: m('socket-zero-copy') / m('fifo-adaptive'),
  };
}

/** Median CPU us per MiB (stream) or per message of each side, by kind and transport. */
const cpuUs = {} as Record<Kind, Record<string, { sender: number; receiver: number }>>;
for (const kind of kinds) {
  cpuUs[kind] = {};
  for (const t of transports) {
    cpuUs[kind][t] = {
      sender: median(cpu.get(`${kind}:${t}:sender`) ?? []),
      receiver: median(cpu.get(`${kind}:${t}:receiver`) ?? []),
    };
  }
}

if (json) {
  console.log(
    JSON.stringify({
      bench: 'shm',
      rounds,
      units: { stream: 'GB/s', msgs: 'M msg/s', cpuUs: 'us per MiB (stream) or per message' },
      ...out,
      cpuUs,
    }),
  );
} else {
  const cols: [string, (o: KindSummary) => number, Transport][] = [
    ['fifo poll', (o) => o.fifoPoll, 'fifo-poll'],
    ['fifo adaptive', (o) => o.fifoAdaptive, 'fifo-adaptive'],
    ['Socket zero-copy', (o) => o.socketZeroCopy, 'socket-zero-copy'],
    ["Socket 'data'", (o) => o.socketData, 'socket-data'],
    ['unix socket', (o) => o.unix, 'unix'],
  ];
  const transportOf = (h: string) => cols.find((c) => c[0] === h)?.[2];
  const row = (label: string, unit: string, o: KindSummary) =>
    `${label.padEnd(24)}${cols.map(([, f]) => `${f(o).toFixed(2)} ${unit}`.padStart(18)).join('')}`;
  const ratios = (label: string, o: KindSummary) =>
    `${label.padEnd(24)}${[o.pollVsUnix, o.adaptiveVsUnix, o.socketZeroCopyVsUnix, o.socketDataVsUnix, 1]
      .map((v) => `${v.toFixed(2)}x`.padStart(18))
      .join('')}   zero-copy Socket / fifo adaptive ${o.socketZeroCopyVsFifo.toFixed(2)}x`;
  console.log(`bench:shm, medians of ${rounds} rounds (adaptive unless poll; 4 MiB fifos)`);
  console.log(`${'case'.padEnd(24)}${cols.map(([h]) => h.padStart(18)).join('')}`);
  console.log(row('stream, 256 KiB writes', 'GB/s', out.stream));
  console.log(ratios('  x unix', out.stream));
  console.log(row('64 B messages', 'M/s', out.msgs));
  console.log(ratios('  x unix', out.msgs));
  console.log('CPU us per MiB (stream) / per message, sender + receiver (medians):');
  for (const kind of kinds) {
    console.log(
      `${kind.padEnd(24)}${cols
        .map(([h]) => {
          const t = transports.find((x) => x === transportOf(h));
          const c = t ? cpuUs[kind][t] : undefined;
          const d = kind === 'stream' ? 0 : 3;
          return (c ? `${c.sender.toFixed(d)} + ${c.receiver.toFixed(d)}` : '-').padStart(18);
        })
        .join('')}`,
    );
  }
}
