// bench:shm peer process: the receiving end of one benchmark case (fifo, Socket or unix socket).
// argv: fifo <mode> <kind> <totalBytes> <segmentBytes> <fifoOffset> <fifoBytes>
//       (fd 4 segment, fd 5 the parent's doorbell, fd 6 a seqpacket socket for our doorbell)
//    or socket <zero-copy|data> <kind> <totalBytes> <uri> <fifoBytes>   (FERRY_SOCKET, FERRY_MODE)
//    or unix <kind> <totalBytes> <socketPath>
// Reports { elapsedMs, bytes } measured from the first received byte to the last, and cpuUs: this
// process's CPU time (user + system) from telling the parent it is ready to the last byte.

import { connect } from 'node:net';
import * as ferry from '@ferry/sdk';
import {
  Doorbell,
  FifoConsumer,
  Notifier,
  type NotifyMode,
  ring,
  Segment,
  sendMsg,
} from '@ferry/sdk/internal';

const MESSAGE_BYTES = 64;
const STREAM_READ_BYTES = 256 * 1024;

let cpuAtReady: NodeJS.CpuUsage | undefined;

function ready(): void {
  cpuAtReady = process.cpuUsage();
  process.send?.({ type: 'ready' });
}

function report(bytes: number, firstMs: number, cleanup: () => void): void {
  const elapsedMs = performance.now() - firstMs;
  const cpu = process.cpuUsage(cpuAtReady);
  process.send?.({ type: 'result', bytes, elapsedMs, cpuUs: cpu.user + cpu.system }, () => {
    cleanup();
    process.disconnect();
  });
}

function runFifo(args: string[]): void {
  const [mode, kind, total, segmentBytes, offset, fifoBytes] = args;
  const totalBytes = Number(total);
  const segment = Segment.attach(4, Number(segmentBytes));
  const consumer = new FifoConsumer(segment.buffer, Number(offset), Number(fifoBytes));
  const doorbell = Doorbell.create();
  const dst = new Uint8Array(kind === 'stream' ? STREAM_READ_BYTES : MESSAGE_BYTES);
  const perPoll = kind === 'stream' ? 16 : 4096;
  let received = 0;
  let firstMs = -1;
  const notifier = new Notifier({
    mode: mode as NotifyMode,
    doorbell,
    poll: () => {
      let got = 0;
      for (let i = 0; i < perPoll; i++) {
        const n = consumer.dequeue(dst);
        if (n <= 0) break;
        got += n;
      }
      if (got > 0) {
        if (firstMs < 0) firstMs = performance.now();
        received += got;
        if (consumer.spaceNotifyNeeded()) ring(5);
        if (received >= totalBytes) {
          notifier.stop();
          report(received, firstMs, () => {
            doorbell.close();
            segment.release();
          });
        }
      }
      return got;
    },
    arm: () => consumer.armData(),
  });
  sendMsg(6, Uint8Array.of(1), [doorbell.ringFd]);
  ready();
  notifier.start();
}

function runUnix(args: string[]): void {
  const [, total, path] = args;
  const totalBytes = Number(total);
  let received = 0;
  let firstMs = -1;
  const socket = connect(path as string, () => ready());
  socket.on('data', (chunk: Buffer) => {
    if (firstMs < 0) firstMs = performance.now();
    received += chunk.length;
    if (received >= totalBytes) {
      socket.pause();
      report(received, firstMs, () => socket.destroy());
    }
  });
}

/** The SDK's Socket: zero-copy views released at once, or 'data' events (a Buffer per read). */
function runSocket(args: string[]): void {
  const [api, , total, uri, fifoBytes] = args;
  const totalBytes = Number(total);
  let received = 0;
  let firstMs = -1;
  const socket = ferry.connect({ uri: uri as string, rxFifoSize: Number(fifoBytes) }, () => ready());
  const got = (n: number): void => {
    if (firstMs < 0) firstMs = performance.now();
    received += n;
    if (received >= totalBytes) report(received, firstMs, () => socket.destroy());
  };
  if (api === 'zero-copy') {
    socket.onView((view) => {
      const n = view.length;
      view.release();
      got(n);
    });
  } else {
    socket.on('data', (chunk: Buffer) => got(chunk.length));
  }
  socket.on('error', (err) => {
    throw err;
  });
}

const [transport, ...rest] = process.argv.slice(2);
if (transport === 'fifo') runFifo(rest);
else if (transport === 'socket') runSocket(rest);
else if (transport === 'unix') runUnix(rest);
else throw new Error(`unknown transport ${transport}`);
