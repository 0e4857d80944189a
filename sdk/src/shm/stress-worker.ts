// Test helper worker: consumes a stress stream from a fifo in a SharedArrayBuffer, spinning (bounded).

import { parentPort, workerData } from 'node:worker_threads';
import { FifoConsumer } from './fifo-consumer.js';
import { SpinGuard } from './spin-guard.js';
import { StressReader } from './stress-traffic.js';

const { buf, offset, sizeBytes, stallMs } = workerData as {
  buf: SharedArrayBuffer;
  offset: number;
  sizeBytes: number;
  stallMs: number;
};
const consumer = new FifoConsumer(buf, offset, sizeBytes);
const reader = new StressReader(consumer);
const guard = new SpinGuard(stallMs);
let timedOut = false;
for (;;) {
  const got = reader.receive(1024);
  if (reader.result.error !== null || consumer.fin) break;
  if (!guard.step(got > 0)) {
    timedOut = true;
    break;
  }
}
parentPort?.postMessage({ ...reader.result, timedOut });
