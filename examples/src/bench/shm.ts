// bench:shm: one shared-memory fifo between two processes vs node:net over a unix socket.
//
// Two shapes, each in the same run and interleaved round by round: (a) a byte stream written in
// 256 KiB chunks, (b) 64-byte messages, one per enqueue/write call. The fifo runs in poll and in
// adaptive mode; the receiver in another process times first byte to last. Prints a table of
// medians (and ratios vs the unix socket), or one JSON line with --json.
// Options: --rounds N (default 5), --quick (smaller volumes), --json.

import { type ChildProcess, fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

type Kind = 'stream' | 'msgs';
type Transport = 'fifo-poll' | 'fifo-adaptive' | 'unix';
interface CaseResult {
  bytes: number;
  elapsedMs: number;
}

const STREAM_CHUNK_BYTES = 256 * 1024;
const MESSAGE_BYTES = 64;
const FIFO_BYTES = 4 * 1024 * 1024;
const SEGMENT_BYTES = 8 * 1024 * 1024;
const CASE_TIME_CAP_MS = 30_000;
const PEER = new URL('./shm-peer.js', import.meta.url);

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
    child.on('message', (m: { type: string } & Partial<CaseResult>) => {
      if (m.type === 'ready') onReady();
      else if (m.type === 'result') {
        clearTimeout(timer);
        resolve({ bytes: m.bytes ?? 0, elapsedMs: m.elapsedMs ?? Number.NaN });
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

async function runUnix(kind: Kind): Promise<CaseResult> {
  const total = TOTAL[kind];
  const path = join(tmpdir(), `ferry-bench-${process.pid}.sock`);
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    writeAll(socket, kind, total);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const child = fork(PEER, ['unix', kind, String(total), path], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  try {
    return await awaitResult(child, () => {});
  } finally {
    child.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(path, { force: true });
  }
}

function runCase(transport: Transport, kind: Kind): Promise<CaseResult> {
  if (transport === 'unix') return runUnix(kind);
  return runFifo(transport === 'fifo-poll' ? 'poll' : 'adaptive', kind);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const transports: Transport[] = ['fifo-poll', 'fifo-adaptive', 'unix'];
const kinds: Kind[] = ['stream', 'msgs'];
const samples = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const kind of kinds) {
    // Rotate the order each round so no transport always runs first (warm caches, turbo).
    for (let i = 0; i < transports.length; i++) {
      const transport = transports[(i + r) % transports.length] as Transport;
      const res = await runCase(transport, kind);
      const value =
        kind === 'stream' ? res.bytes / res.elapsedMs / 1e6 : res.bytes / MESSAGE_BYTES / res.elapsedMs / 1e3;
      const key = `${kind}:${transport}`;
      samples.set(key, [...(samples.get(key) ?? []), value]);
      if (!json) process.stderr.write(`round ${r + 1}/${rounds} ${key}: ${value.toFixed(2)}\n`);
    }
  }
}

interface KindSummary {
  fifoPoll: number;
  fifoAdaptive: number;
  unix: number;
  pollVsUnix: number;
  adaptiveVsUnix: number;
}
const out = {} as Record<Kind, KindSummary>;
for (const kind of kinds) {
  const m = (t: Transport) => median(samples.get(`${kind}:${t}`) ?? []);
  out[kind] = {
    fifoPoll: m('fifo-poll'),
    fifoAdaptive: m('fifo-adaptive'),
    unix: m('unix'),
    pollVsUnix: m('fifo-poll') / m('unix'),
    adaptiveVsUnix: m('fifo-adaptive') / m('unix'),
  };
}

if (json) {
  console.log(JSON.stringify({ bench: 'shm', rounds, units: { stream: 'GB/s', msgs: 'M msg/s' }, ...out }));
} else {
  const row = (label: string, unit: string, o: KindSummary) =>
    `${label.padEnd(22)}${[o.fifoPoll, o.fifoAdaptive, o.unix].map((v) => `${v.toFixed(2)} ${unit}`.padStart(14)).join('')}` +
    `${`${o.pollVsUnix.toFixed(1)}x`.padStart(11)}${`${o.adaptiveVsUnix.toFixed(1)}x`.padStart(11)}`;
  console.log(`bench:shm, medians of ${rounds} rounds`);
  console.log(
    `${'case'.padEnd(22)}${'fifo poll'.padStart(14)}${'fifo adaptive'.padStart(14)}${'unix socket'.padStart(14)}${'poll/unix'.padStart(11)}${'adapt/unix'.padStart(11)}`,
  );
  console.log(row('stream, 256 KiB writes', 'GB/s', out.stream));
  console.log(row('64 B messages', 'M/s', out.msgs));
}
