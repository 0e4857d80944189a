// Test helper process: attaches a segment passed as fd 4 and consumes a stress stream from one fifo.
// fd 5: the parent's doorbell (rung for space), fd 6: a seqpacket socket to send our doorbell over.
// argv: mode segmentSizeBytes fifoOffset fifoSizeBytes

import { Doorbell, ring, sendMsg } from '../sys/index.js';
import { FifoConsumer } from './fifo-consumer.js';
import { Notifier, type NotifyMode } from './notifier.js';
import { Segment } from './segment.js';
import { StressReader } from './stress-traffic.js';

const SEGMENT_FD = 4;
const PARENT_RING_FD = 5;
const SOCKET_FD = 6;

const [mode, segmentSize, fifoOffset, fifoSize] = process.argv.slice(2);
const segment = Segment.attach(SEGMENT_FD, Number(segmentSize));
const consumer = new FifoConsumer(segment.buffer, Number(fifoOffset), Number(fifoSize));
const reader = new StressReader(consumer);
const doorbell = Doorbell.create();
let finished = false;

const notifier = new Notifier({
  mode: mode as NotifyMode,
  doorbell,
  poll: () => {
    const n = reader.receive(4096);
    if (n > 0 && consumer.spaceNotifyNeeded()) ring(PARENT_RING_FD);
    if (reader.result.error !== null || consumer.fin || consumer.peerReset) finish();
    return n;
  },
  arm: () => consumer.armData(),
});

function finish(): void {
  if (finished) return;
  finished = true;
  notifier.stop();
  const result = { ...reader.result, wakeups: notifier.wakeups };
  process.send?.({ type: 'result', result }, () => {
    doorbell.close();
    segment.release();
    process.disconnect();
  });
}

sendMsg(SOCKET_FD, Uint8Array.of(1), [doorbell.ringFd]);
process.send?.({ type: 'ready' });
notifier.start();
