import type { FifoConsumer, FifoProducer } from '@ferry/sdk/internal';
import type { DaemonSegment } from './daemon-end.js';

/**
 * Wakes the app for one slot once per loop turn, not once per chunk or datagram: a burst of socket
 * reads (libuv reads up to 32 chunks of 64 KiB per wakeup) then costs the app one wakeup, not a
 * ping-pong per chunk. Deferring is safe: an app that arms after we looked re-checks the fifo
 * after arming.
 */
export class TurnNotice {
  /** Enqueues or drops since the last notice: check the app's wake flags at the end of the turn. */
  #data = false;
  #space = false;
  #scheduled = false;
  readonly #seg: DaemonSegment;
  readonly #slot: number;
  readonly #tx: FifoProducer;
  readonly #rx: FifoConsumer;
  readonly #live: () => boolean;

  /** `tx` is the fifo ferryd writes, `rx` the one it reads; `live` is false once the pump stopped. */
  constructor(seg: DaemonSegment, slot: number, tx: FifoProducer, rx: FifoConsumer, live: () => boolean) {
    this.#seg = seg;
    this.#slot = slot;
    this.#tx = tx;
    this.#rx = rx;
    this.#live = live;
  }

  /** ferryd enqueued on `tx`. */
  data(): void {
    this.#data = true;
    this.#schedule();
  }

  /** ferryd dropped from `rx`. */
  space(): void {
    this.#space = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#live()) return;
      let post = false;
      if (this.#data && this.#tx.notifyNeeded()) post = true;
      if (this.#space && this.#rx.spaceNotifyNeeded()) post = true;
      this.#data = false;
      this.#space = false;
      if (post) this.#seg.post(this.#slot);
    });
  }
}
