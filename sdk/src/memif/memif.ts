// Memif: one memif interface (client or server role), its link lifecycle and the burst API.
//
// Lifecycle: client 'connecting' -> 'up' -> (peer gone) 'connecting' -> ... ; server 'listening'
// -> 'up' -> 'listening' ...; close() -> 'closed'. Control-plane work (handshakes, DISCONNECT,
// teardown) runs on the event loop; the data-path methods are synchronous, allocation-free per
// packet, and return 0 while the link is down. Nothing the peer does throws into the application:
// it ends as a 'down' or 'handshake-failed' event with a reason.

import { EventEmitter } from 'node:events';
import { ferryError } from '../errors.js';
import { Notifier } from '../shm/notifier.js';
import { MemifRxBurst, MemifTxBurst } from './bursts.js';
import { ClientHandshake, type Established } from './client-handshake.js';
import type { MemifConnection } from './connection.js';
import type { ControlChannel } from './control-channel.js';
import type { MemifDownReason, MemifLinkInfo } from './link-info.js';
import { MemifListener } from './listener.js';
import { type MemifOptions, type MemifRxMode, type ResolvedOptions, resolveOptions } from './options.js';
import { memifPoller } from './poller.js';
import type { HandshakeEndpoint, ServerHandshake } from './server-handshake.js';
import { type MemifQueueStats, type MemifStats, newQueueStats } from './stats.js';

export type MemifState = 'connecting' | 'listening' | 'up' | 'closed';
export type MemifPacketHandler = (burst: MemifRxBurst, queue: number) => void;

/** Bursts per queue per poll turn in the handler loop before moving to the next queue. */
const BURSTS_PER_QUEUE = 8;
const HANDLER_BURST = 256;

export interface MemifEvents {
  up: [info: MemifLinkInfo];
  down: [reason: MemifDownReason];
  'handshake-failed': [reason: MemifDownReason];
  close: [];
}

export class Memif extends EventEmitter<MemifEvents> {
  readonly role: 'client' | 'server';
  readonly id: number;
  readonly socket: string;
  readonly #o: ResolvedOptions;
  #state: MemifState;
  #conn: MemifConnection | null = null;
  #channel: ControlChannel | null = null;
  #info: MemifLinkInfo | null = null;
  #connections = 0;
  #lastReason: MemifDownReason | null = null;
  readonly #rxStats: MemifQueueStats[];
  readonly #txStats: MemifQueueStats[];
  #rxMode: MemifRxMode;
  #handler: MemifPacketHandler | null = null;
  #notifier: Notifier | null = null;
  #ringCb: (() => void) | null = null;
  #watched: number[] = [];
  readonly #handlerBurst = new MemifRxBurst(HANDLER_BURST);
  readonly #copyBurst = new MemifRxBurst(HANDLER_BURST);
  #masked = false;
  // client
  #attempt: ClientHandshake | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #delay = 0;
  // server
  #listener: MemifListener | null = null;
  #claim: ServerHandshake | null = null;
  readonly #endpoint: HandshakeEndpoint;

  constructor(options: MemifOptions) {
    super();
    const o = resolveOptions(options);
    this.#o = o;
    this.role = o.role;
    this.id = o.id;
    this.socket = o.socket;
    this.#rxMode = o.rxMode;
    this.#rxStats = Array.from({ length: o.rxQueues }, newQueueStats);
    this.#txStats = Array.from({ length: o.txQueues }, newQueueStats);
    this.#endpoint = this.#makeEndpoint();
    if (o.role === 'server') {
      const listener = MemifListener.acquire(o.socket);
      listener.register(o.id, this.#endpoint);
      this.#listener = listener;
      this.#state = 'listening';
    } else {
      this.#state = 'connecting';
      this.#delay = o.reconnect?.minDelayMs ?? 0;
      this.#connect();
    }
  }

  get state(): MemifState {
    return this.#state;
  }

  /** The current link, or null while down. */
  get info(): MemifLinkInfo | null {
    const info = this.#info;
    const conn = this.#conn;
    if (info === null || conn === null || this.role === 'client') return info;
    // A server learns the client's buffer size from the S2C descriptors it has seen.
    let min = 0;
    for (const q of conn.tx) {
      const c = q.bufferCapacity;
      if (c > 0 && (min === 0 || c < min)) min = c;
    }
    return { ...info, bufferSize: min };
  }

  get rxMode(): MemifRxMode {
    return this.#rxMode;
  }

  /** Resolves with the link info once up (at once if up now). */
  waitUp(timeoutMs = 10_000): Promise<MemifLinkInfo> {
    const info = this.#info;
    if (info !== null) return Promise.resolve(info);
    if (this.#state === 'closed') {
      return Promise.reject(this.#lastReason ?? ferryError('ERR_FERRY_MEMIF_CLOSED'));
    }
    return new Promise((resolve, reject) => {
      const onUp = (i: MemifLinkInfo): void => {
        cleanup();
        resolve(i);
      };
      const onClose = (): void => {
        cleanup();
        reject(this.#lastReason ?? ferryError('ERR_FERRY_MEMIF_CLOSED'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(ferryError('ETIMEDOUT', `memif ${this.socket} id ${this.id} not up within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('up', onUp);
        this.off('close', onClose);
      };
      this.on('up', onUp);
      this.on('close', onClose);
    });
  }

  /** Disconnects (DISCONNECT to the peer if up), stops reconnecting or listening. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const reason = ferryError('ERR_FERRY_MEMIF_CLOSED');
    this.#down(reason, 'Interface closed', true);
    this.#closeNow(reason);
  }

  #closeNow(reason: MemifDownReason): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#lastReason = reason;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const attempt = this.#attempt;
    this.#attempt = null;
    attempt?.abort(ferryError('ERR_FERRY_MEMIF_CLOSED'));
    const claim = this.#claim;
    this.#claim = null;
    claim?.abort();
    this.#listener?.unregister(this.id, this.#endpoint);
    this.#listener = null;
    this.emit('close');
  }

  // ---- client connection attempts -------------------------------------------------------------

  #connect(): void {
    this.#retryTimer = null;
    if (this.#state === 'closed') return;
    const attempt = new ClientHandshake(this.#o, this.#rxStats, this.#txStats, {
      up: (e) => {
        if (this.#attempt !== attempt) return;
        this.#attempt = null;
        this.#delay = this.#o.reconnect?.minDelayMs ?? 0;
        this.#becomeUp(e);
      },
      failed: (err) => {
        if (this.#attempt !== attempt) return;
        this.#attempt = null;
        this.#afterClientFailure(err, 'handshake-failed');
      },
    });
    this.#attempt = attempt;
    attempt.start();
  }

  #afterClientFailure(err: MemifDownReason, event: 'handshake-failed' | 'down'): void {
    const rc = this.#o.reconnect;
    const retry = rc !== null && this.#state !== 'closed';
    err.willRetry = retry;
    this.#lastReason = err;
    this.emit(event, err);
    if (!retry) {
      this.#closeNow(err);
      return;
    }
    if (this.#state === 'closed' || this.#retryTimer !== null) return;
    const delay = this.#delay;
    this.#delay = Math.min(rc.maxDelayMs, Math.max(rc.minDelayMs, delay * 2));
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  // ---- server endpoint (what the shared listener sees) ----------------------------------------

  #makeEndpoint(): HandshakeEndpoint {
    return {
      options: this.#o,
      busy: () => this.#claim !== null || this.#state === 'up',
      claim: (h) => {
        this.#claim = h;
      },
      handshakeFailed: (h, err) => {
        if (this.#claim === h) this.#claim = null;
        if (this.#state === 'closed') return;
        this.#lastReason = err;
        this.emit('handshake-failed', err);
      },
      established: (h, e) => {
        if (this.#claim === h) this.#claim = null;
        if (this.#state === 'closed' || this.#state === 'up') {
          e.conn.release();
          e.channel.disconnect('Interface closed');
          return;
        }
        this.#becomeUp(e);
      },
      stats: () => ({ rx: this.#rxStats, tx: this.#txStats }),
    };
  }

  // ---- link up / down ---------------------------------------------------------------------------

  #becomeUp(e: Established): void {
    this.#conn = e.conn;
    this.#channel = e.channel;
    e.conn.onFail = (err) => this.#down(err, 'Bad ring or descriptor');
    e.channel.setHandlers({
      message: (msg, fd) => {
        if (fd >= 0) e.channel.close(); // never legal once up; the channel is going away anyway
        if (msg.type === 'disconnect') {
          const err: MemifDownReason = ferryError(
            'ERR_FERRY_MEMIF_PEER_DISCONNECT',
            msg.reason || '(no reason)',
          );
          err.peerMessage = msg.reason;
          this.#down(err, null);
        } else {
          this.#down(
            ferryError('ERR_FERRY_MEMIF_PROTOCOL', `${msg.type} after CONNECT`),
            'Unexpected message',
          );
        }
      },
      fail: (err, reply) => this.#down(err, reply),
    });
    this.#info = { ...e.info, connection: ++this.#connections };
    this.#state = 'up';
    this.#startRx();
    this.emit('up', this.#info);
  }

  /** Takes the link down once (no-op when not up). `closing`: close() is in progress. */
  #down(err: MemifDownReason, reply: string | null, closing = false): void {
    const conn = this.#conn;
    if (this.#state !== 'up' || conn === null) return;
    this.#stopRx();
    conn.kill();
    const channel = this.#channel;
    if (reply !== null) channel?.disconnect(reply);
    else channel?.close();
    conn.release();
    this.#conn = null;
    this.#channel = null;
    this.#info = null;
    if (this.role === 'server') {
      this.#state = 'listening';
      this.#lastReason = err;
      this.emit('down', err);
      return;
    }
    this.#state = 'connecting';
    if (closing) {
      err.willRetry = false;
      this.#lastReason = err;
      this.emit('down', err);
      return;
    }
    this.#delay = this.#o.reconnect?.minDelayMs ?? 0;
    this.#afterClientFailure(err, 'down');
  }

  // ---- receive modes ----------------------------------------------------------------------------

  /** Sets how `onPackets` is driven, and the interrupt hint on our receive rings. */
  setRxMode(mode: MemifRxMode): void {
    if (mode !== 'interrupt' && mode !== 'poll' && mode !== 'adaptive') {
      throw ferryError(
        'ERR_INVALID_ARG_VALUE',
        `rxMode must be interrupt, poll or adaptive, got ${String(mode)}`,
      );
    }
    this.#rxMode = mode;
    if (this.#state === 'up') {
      this.#stopRx();
      this.#startRx();
    }
  }

  /** Receives every packet through `handler` (released after it returns); null stops. */
  onPackets(handler: MemifPacketHandler | null): void {
    if (handler !== null && typeof handler !== 'function') {
      throw ferryError('ERR_INVALID_ARG_TYPE', 'handler must be a function or null');
    }
    this.#handler = handler;
    if (this.#state === 'up') {
      this.#stopRx();
      this.#startRx();
    }
  }

  #setMasked(masked: boolean): void {
    this.#masked = masked;
    for (const q of this.#conn?.rx ?? []) q.ring.setInterruptsMasked(masked);
  }

  #startRx(): void {
    const conn = this.#conn;
    if (conn === null) return;
    this.#setMasked(this.#rxMode === 'poll');
    if (this.#handler === null) return;
    const mode = this.#rxMode;
    if (mode !== 'poll') {
      const poller = memifPoller();
      conn.rx.forEach((q, i) => {
        const fd = q.ring.eventfd;
        const stats = this.#rxStats[i];
        // Edge-triggered and never read: the peer shares this eventfd and could make it blocking
        // and race us for its counter; a read could then hang the event loop. Each doorbell write
        // is a new edge, and the counter (2^64 - 2) cannot fill in practice.
        poller.watch(fd, { readable: true, edge: true }, () => {
          if (stats !== undefined) stats.wakeups++;
          this.#ringCb?.();
        });
        this.#watched.push(fd);
      });
    }
    const notifier = new Notifier({
      mode,
      doorbell: { onRing: (cb) => (this.#ringCb = cb) },
      poll: () => this.#pollAll(),
      arm: () => this.#arm(),
    });
    this.#notifier = notifier;
    notifier.start();
  }

  #stopRx(): void {
    this.#notifier?.stop();
    this.#notifier = null;
    this.#ringCb = null;
    const poller = memifPoller();
    for (const fd of this.#watched) poller.unwatch(fd);
    this.#watched = [];
  }

  #pollAll(): number {
    const conn = this.#conn;
    const handler = this.#handler;
    if (conn === null || handler === null) return 0;
    // Adaptive: while polling, tell the peer not to ring.
    if (this.#rxMode === 'adaptive' && !this.#masked) this.#setMasked(true);
    const burst = this.#handlerBurst;
    let total = 0;
    const rx = conn.rx;
    for (let q = 0; q < rx.length; q++) {
      const queue = rx[q];
      if (queue === undefined) continue;
      for (let b = 0; b < BURSTS_PER_QUEUE; b++) {
        const n = queue.fill(burst, HANDLER_BURST);
        if (n === 0) break;
        total += n;
        try {
          handler(burst, q);
        } finally {
          burst.release();
        }
        if (this.#conn !== conn) return total; // the handler closed the link
      }
    }
    return total;
  }

  /** Going to sleep: ask for doorbells, then look again (a doorbell may have been skipped). */
  #arm(): boolean {
    const conn = this.#conn;
    if (conn === null) return false;
    if (this.#masked) this.#setMasked(false);
    for (const q of conn.rx) if (q.pending()) return true;
    return false;
  }

  // ---- data path --------------------------------------------------------------------------------

  #queueIndex(q: number, n: number, what: string): void {
    if (!(Number.isInteger(q) && q >= 0 && q < n)) {
      throw ferryError('ERR_OUT_OF_RANGE', `${what} queue ${String(q)} not in 0..${n - 1}`);
    }
  }

  createRxBurst(capacity = 256): MemifRxBurst {
    return new MemifRxBurst(capacity);
  }

  createTxBurst(capacity = 256): MemifTxBurst {
    return new MemifTxBurst(capacity);
  }

  /** Fills `burst` with up to `max` (default and at most burst.capacity) packets from rx queue q. */
  rxBurst(q: number, burst: MemifRxBurst, max: number = burst.capacity): number {
    const queue = this.#conn?.rx[q];
    if (queue === undefined) {
      this.#queueIndex(q, this.#o.rxQueues, 'rx');
      if (burst.owner !== null) burst.release();
      return 0;
    }
    return queue.fill(burst, max);
  }

  /** Up to `max` packets from rx queue q, copied (the buffers go back to the peer at once). */
  receive(q: number, max = HANDLER_BURST): Uint8Array[] {
    const burst = this.#copyBurst;
    const out: Uint8Array[] = [];
    while (out.length < max) {
      const n = this.rxBurst(q, burst, max - out.length);
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const p = new Uint8Array(burst.lengths[i] ?? 0);
        burst.copy(i, p, 0);
        out.push(p);
      }
      burst.release();
    }
    return out;
  }

  /** Queues packets[start .. start+count) on tx queue q (copies); returns how many were queued. */
  send(q: number, packets: readonly Uint8Array[], start = 0, count = packets.length - start): number {
    const queue = this.#conn?.tx[q];
    if (queue === undefined) {
      this.#queueIndex(q, this.#o.txQueues, 'tx');
      const s = this.#txStats[q];
      if (s !== undefined && count > 0) {
        s.drops += count;
      }
      return 0;
    }
    if (
      !(
        Number.isInteger(start) &&
        Number.isInteger(count) &&
        start >= 0 &&
        count >= 0 &&
        start + count <= packets.length
      )
    ) {
      throw ferryError('ERR_OUT_OF_RANGE', `send: start ${start} count ${count} of ${packets.length}`);
    }
    return queue.send(packets, start, count);
  }

  /** Reserves up to n buffers of at least `size` bytes on tx queue q, for writing in place. */
  txAlloc(q: number, burst: MemifTxBurst, n: number, size: number): number {
    const queue = this.#conn?.tx[q];
    if (queue === undefined) {
      this.#queueIndex(q, this.#o.txQueues, 'tx');
      burst.count = 0;
      burst.owner = null;
      return 0;
    }
    return queue.alloc(burst, n, size);
  }

  /** Publishes the first k reserved buffers (lengths set in burst.lengths). */
  txCommit(q: number, burst: MemifTxBurst, k: number): number {
    const queue = this.#conn?.tx[q];
    if (queue === undefined) this.#queueIndex(q, this.#o.txQueues, 'tx');
    const owner = burst.owner as { dead?: boolean } | null;
    if (queue === undefined || (owner !== null && owner !== queue && owner.dead === true)) {
      // Down, or reserved on a link that has gone down since: the reservation is void. Not an
      // application error (nothing the peer does throws).
      burst.count = 0;
      burst.owner = null;
      return 0;
    }
    return queue.commit(burst, k);
  }

  stats(): MemifStats {
    return { rx: this.#rxStats.map((s) => ({ ...s })), tx: this.#txStats.map((s) => ({ ...s })) };
  }
}

/** Creates a memif interface; it connects (client) or listens (server) at once. */
export function createMemif(options: MemifOptions): Memif {
  return new Memif(options);
}
