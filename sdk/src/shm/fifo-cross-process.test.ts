import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { after, test } from 'node:test';
import { close, Doorbell, recvMsg, ring, socketpair } from '../sys/index.js';
import { fifoFootprint, initFifo } from './fifo.js';
import {
  FIFO_CONS_FLAGS_OFFSET,
  FIFO_HEAD_OFFSET,
  FIFO_HEADER_BYTES,
  FIFO_PROD_FLAGS_OFFSET,
  FIFO_TAIL_OFFSET,
  FIFO_WANT_DATA_OFFSET,
  FIFO_WANT_SPACE_OFFSET,
} from './fifo-layout.js';
import { FifoProducer } from './fifo-producer.js';
import { Notifier, type NotifyMode } from './notifier.js';
import { Segment } from './segment.js';
import { type StressResult, StressWriter } from './stress-traffic.js';

// Sized so each mode finishes in a few seconds on a quiet 2-core VM. The guard is against hangs
// only: a mode fails when neither index of the fifo moved for STALL_MS, never for being slow. Poll
// mode spins in both processes and crawls when the machine is loaded: a cap on the whole run failed
// at 20 s, then ran up to 88 s of 120 s at load 15.
const MESSAGES = 2_000_000;
const STALL_MS = 60_000;
const FIFO_BYTES = 64 * 1024;
const SEGMENT_BYTES = 1 << 20;
const HEAD = FIFO_HEAD_OFFSET / 4;
const TAIL = FIFO_TAIL_OFFSET / 4;

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

async function runMode(mode: NotifyMode, seed: number) {
  const segment = Segment.create(`ferry-stress-${mode}`, SEGMENT_BYTES);
  const doorbell = Doorbell.create();
  const [mine, theirs] = socketpair('seqpacket', { nonblock: true });
  let childRingFd = -1;
  let notifier: Notifier | null = null;
  let child: ChildProcess | null = null;
  let watch: NodeJS.Timeout | undefined;
  try {
    const offset = segment.alloc(fifoFootprint(FIFO_BYTES));
    initFifo(segment.buffer, offset, FIFO_BYTES);
    const producer = new FifoProducer(segment.buffer, offset, FIFO_BYTES);
    const writer = new StressWriter(producer, MESSAGES, seed);
    const childPath = new URL('./fifo-stress-child.js', import.meta.url);
    const args = [mode, String(SEGMENT_BYTES), String(offset), String(FIFO_BYTES)];
    const proc = fork(childPath, args, {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', segment.fd, doorbell.ringFd, theirs],
    });
    child = proc;
    children.add(proc);
    close(theirs);

    const t0 = performance.now();
    const ctl = new Uint32Array(segment.buffer, offset, FIFO_HEADER_BYTES / 4);
    const result = await new Promise<StressResult & { wakeups: number }>((resolve, reject) => {
      let head = ctl[HEAD];
      let tail = ctl[TAIL];
      let movedMs = performance.now();
      watch = setInterval(() => {
        const now = performance.now();
        if (ctl[HEAD] !== head || ctl[TAIL] !== tail) {
          head = ctl[HEAD];
          tail = ctl[TAIL];
          movedMs = now;
        } else if (now - movedMs >= STALL_MS) {
          reject(new Error(`${mode}: nothing moved for ${STALL_MS} ms: ${fifoState(ctl, notifier)}`));
        }
      }, 1000);
      proc.on('exit', (code) => reject(new Error(`${mode}: child exited early with ${code}`)));
      proc.on('message', (m: { type: string; result?: StressResult & { wakeups: number } }) => {
        if (m.type === 'ready') {
          const got = recvMsg(mine, new Uint8Array(8), 1);
          childRingFd = got?.fds[0] ?? -1;
          if (childRingFd < 0) return reject(new Error('no doorbell fd from the child'));
          notifier = startProducer(mode, doorbell, producer, writer, childRingFd);
        } else if (m.type === 'result' && m.result) {
          resolve(m.result);
        }
      });
    });
    const elapsedMs = performance.now() - t0;
    return { sent: writer.result, received: result, elapsedMs };
  } finally {
    clearInterval(watch);
    (notifier as Notifier | null)?.stop();
    if (child) {
      child.kill('SIGKILL');
      children.delete(child);
    }
    if (childRingFd >= 0) close(childRingFd);
    close(mine);
    doorbell.close();
    segment.release();
  }
}

/** The fifo's shared words and the producer's notifier, for a stalled run's message. */
function fifoState(ctl: Uint32Array, notifier: Notifier | null): string {
  const w = (off: number) => ctl[off / 4];
  return (
    `head ${w(FIFO_HEAD_OFFSET)} tail ${w(FIFO_TAIL_OFFSET)} consFlags ${w(FIFO_CONS_FLAGS_OFFSET)} ` +
    `wantData ${w(FIFO_WANT_DATA_OFFSET)} prodFlags ${w(FIFO_PROD_FLAGS_OFFSET)} ` +
    `wantSpace ${w(FIFO_WANT_SPACE_OFFSET)} producer ${notifier === null ? 'not started' : notifier.sleeping ? 'asleep' : 'awake'}`
  );
}

function startProducer(
  mode: NotifyMode,
  doorbell: Doorbell,
  producer: FifoProducer,
  writer: StressWriter,
  childRingFd: number,
): Notifier {
  const notifier: Notifier = new Notifier({
    mode,
    doorbell,
    poll: () => {
      const n = writer.send(512);
      if (n > 0 && producer.notifyNeeded()) ring(childRingFd);
      if (writer.done || n < 0) {
        producer.fin();
        if (producer.notifyNeeded()) ring(childRingFd);
        notifier.stop();
      }
      return Math.max(n, 0);
    },
    arm: () => producer.armSpace(),
  });
  notifier.start();
  return notifier;
}

for (const [i, mode] of (['interrupt', 'poll', 'adaptive'] as const).entries()) {
  test(`cross-process: ${MESSAGES} checksummed messages through one fifo, ${mode} mode`, async (t) => {
    const { sent, received, elapsedMs } = await runMode(mode, 1000 + i);
    assert.equal(received.error, null);
    assert.equal(sent.messages, MESSAGES);
    assert.equal(received.messages, MESSAGES);
    assert.equal(received.payloadBytes, sent.payloadBytes);
    assert.equal(received.checksum, sent.checksum);
    const rate = (MESSAGES / elapsedMs) * 1000;
    t.diagnostic(
      `${mode}: ${MESSAGES} msgs, ${(sent.payloadBytes / 1e6).toFixed(0)} MB in ${elapsedMs.toFixed(0)} ms ` +
        `(${(rate / 1e6).toFixed(2)} M msg/s), consumer wakeups ${received.wakeups}`,
    );
  });
}
