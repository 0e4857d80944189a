// Test helper worker: consumes a stress stream from a fifo in a SharedArrayBuffer, spinning (bounded).

import { parentPort, workerData } from 'node:worker_threads';
import { FifoConsumer } from './fifo-consumer.js';
import { StressReader } from './stress-traffic.js';

const { buf, offset, sizeBytes, timeLimitMs } = workerData as {
  buf: SharedArrayBuffer;
  offset: number;
  sizeBytes: number;
  timeLimitMs: number;
};
const consumer = new FifoConsumer(buf, offset, sizeBytes);
const reader = new StressReader(consumer);
const deadline = performance.now() + timeLimitMs;
let timedOut = false;
for (;;) {
  reader.receive(1024);
  if (reader.result.error !== null || consumer.fin) break;
  if (performance.now() > deadline) {
    timedOut = true;
    break;
  }
}
parentPort?.postMessage({ ...reader.result, timedOut });
