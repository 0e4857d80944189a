// Client side of the handshake (spec §4): connect, wait HELLO, create memory, then INIT,
// ADD_REGION, ADD_RING x n, CONNECT, one at a time, each waiting for its ACK / CONNECTED.

import { FerryError, ferryError } from '../errors.js';
import { MEMIF_VERSION, type MemifMessage } from '../proto/memif/index.js';
import { connectUnix, unixSocket } from '../sys/index.js';
import { type ClientMemory, createClientMemory } from './client-memory.js';
import { closeQuietly, MemifConnection } from './connection.js';
import { ControlChannel } from './control-channel.js';
import type { MemifDownReason, MemifLinkInfo } from './link-info.js';
import { MEMIF_MAX_SEGMENT, type ResolvedOptions } from './options.js';
import type { MemifQueueStats } from './stats.js';

export interface Established {
  conn: MemifConnection;
  channel: ControlChannel;
  info: Omit<MemifLinkInfo, 'connection'>;
}

export interface ClientCallbacks {
  up(e: Established): void;
  failed(err: MemifDownReason): void;
}

type Request = { msg: MemifMessage; fd?: number };

export class ClientHandshake {
  readonly #o: ResolvedOptions;
  readonly #cb: ClientCallbacks;
  readonly #rxStats: MemifQueueStats[];
  readonly #txStats: MemifQueueStats[];
  #channel: ControlChannel | null = null;
  #memory: ClientMemory | null = null;
  #requests: Request[] = [];
  #expect: 'hello' | 'ack' | 'connected' = 'hello';
  #peerName = '';
  #done = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    o: ResolvedOptions,
    rxStats: MemifQueueStats[],
    txStats: MemifQueueStats[],
    cb: ClientCallbacks,
  ) {
    this.#o = o;
    this.#cb = cb;
    this.#rxStats = rxStats;
    this.#txStats = txStats;
  }

  /** Connects; failures (ECONNREFUSED, ENOENT, ...) are reported through `failed`, asynchronously. */
  start(): void {
    let fd = -1;
    try {
      fd = unixSocket('seqpacket', { nonblock: true });
      connectUnix(fd, this.#o.socket);
    } catch (e) {
      closeQuietly(fd);
      const err = e instanceof FerryError ? e : ferryError('ERR_FERRY_SYS', String(e));
      queueMicrotask(() => this.#finish(err));
      return;
    }
    this.#timer = setTimeout(() => {
      this.#fail(
        ferryError('ETIMEDOUT', `memif handshake did not complete in ${this.#o.handshakeTimeoutMs} ms`),
        'Timeout',
      );
    }, this.#o.handshakeTimeoutMs);
    this.#timer.unref?.();
    this.#channel = new ControlChannel(fd, {
      message: (msg, mfd) => this.#onMessage(msg, mfd),
      fail: (err, reply) => this.#fail(err, reply),
    });
  }

  /** Stops the attempt (close() during the handshake). */
  abort(err: FerryError): void {
    this.#fail(err, 'Closed');
  }

  #onMessage(msg: MemifMessage, fd: number): void {
    if (this.#done) return;
    if (fd >= 0) closeQuietly(fd); // a server never sends fds; ControlChannel already refused those
    if (msg.type === 'disconnect') {
      const err: MemifDownReason = ferryError('ERR_FERRY_MEMIF_PEER_DISCONNECT', msg.reason || '(no reason)');
      err.peerMessage = msg.reason;
      this.#fail(err, null);
      return;
    }
    if (msg.type !== this.#expect) {
      this.#fail(
        ferryError('ERR_FERRY_MEMIF_PROTOCOL', `${msg.type} while waiting for ${this.#expect}`),
        'Unexpected message',
      );
      return;
    }
    if (msg.type === 'hello') this.#onHello(msg);
    else if (msg.type === 'ack') this.#next();
    else if (msg.type === 'connected') this.#onConnected(msg.ifName);
  }

  #onHello(h: Extract<MemifMessage, { type: 'hello' }>): void {
    const o = this.#o;
    if (h.minVersion > MEMIF_VERSION || h.maxVersion < MEMIF_VERSION) {
      this.#fail(
        ferryError(
          'ERR_FERRY_MEMIF_PROTOCOL',
          `server speaks versions ${h.minVersion}..${h.maxVersion}, not 0x0200`,
        ),
        'Incompatible memif version',
      );
      return;
    }
    if (h.maxLog2RingSize < 1) {
      this.#fail(ferryError('ERR_FERRY_MEMIF_PROTOCOL', 'server allows no ring size'), 'Invalid ring size');
      return;
    }
    this.#peerName = h.name;
    const c2s = Math.min(o.txQueues, h.maxC2sRing + 1);
    const s2c = Math.min(o.rxQueues, h.maxS2cRing + 1);
    const log2 = Math.min(o.log2RingSize, h.maxLog2RingSize);
    try {
      this.#memory = createClientMemory(c2s, s2c, log2, o.bufferSize);
    } catch (e) {
      const err = e instanceof FerryError ? e : ferryError('ERR_FERRY_SYS', String(e));
      this.#fail(err, 'Memory allocation failed');
      return;
    }
    const m = this.#memory;
    const rings = (dir: 'c2s' | 's2c') =>
      (dir === 'c2s' ? m.c2s : m.s2c).map(
        (ring, index): Request => ({
          msg: {
            type: 'add-ring',
            direction: dir,
            index,
            region: 0,
            offset: ring.offset,
            log2RingSize: log2,
          },
          fd: ring.eventfd,
        }),
      );
    this.#requests = [
      {
        msg: { type: 'init', version: MEMIF_VERSION, id: o.id, mode: o.mode, secret: o.secret, name: o.name },
      },
      { msg: { type: 'add-region', index: 0, size: m.region.view.size }, fd: m.region.fd },
      ...rings('c2s'),
      ...rings('s2c'),
      { msg: { type: 'connect', ifName: o.ifName } },
    ];
    this.#next();
  }

  #next(): void {
    const r = this.#requests.shift();
    if (r === undefined) {
      this.#fail(
        ferryError('ERR_FERRY_MEMIF_PROTOCOL', 'ACK with nothing outstanding'),
        'Unexpected message',
      );
      return;
    }
    this.#expect = r.msg.type === 'connect' ? 'connected' : 'ack';
    this.#channel?.send(r.msg, r.fd);
  }

  #onConnected(peerIfName: string): void {
    const m = this.#memory;
    const channel = this.#channel;
    if (m === null || channel === null) return;
    for (const ring of [...m.c2s, ...m.s2c]) {
      if (!ring.cookieOk()) {
        this.#fail(
          ferryError('ERR_FERRY_MEMIF_BAD_MEMORY', `ring cookie at ${ring.offset} overwritten`),
          'Wrong ring',
        );
        return;
      }
      ring.storeHead(0);
      ring.storeTail(0);
    }
    const conn = new MemifConnection({
      role: 'client',
      regions: [m.region],
      c2s: m.c2s,
      s2c: m.s2c,
      bufBases: m.bufBases,
      bufferSize: m.bufferSize,
      maxChain: this.#o.maxChainSegments,
      maxSegment: Math.min(MEMIF_MAX_SEGMENT, m.bufferSize),
      rxStats: this.#rxStats,
      txStats: this.#txStats,
    });
    this.#memory = null; // owned by the connection now
    this.#done = true;
    this.#clearTimer();
    const o = this.#o;
    this.#cb.up({
      conn,
      channel,
      info: {
        role: 'client',
        id: o.id,
        mode: o.mode,
        queues: { rx: m.s2c.length, tx: m.c2s.length },
        ringSize: m.c2s[0]?.log2 ?? o.log2RingSize,
        bufferSize: m.bufferSize,
        peerName: this.#peerName,
        peerIfName,
      },
    });
  }

  #fail(err: MemifDownReason, reply: string | null): void {
    if (this.#done) return;
    if (reply !== null) this.#channel?.disconnect(reply);
    else this.#channel?.close();
    this.#finish(err);
  }

  #finish(err: MemifDownReason): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    this.#channel?.close();
    const m = this.#memory;
    if (m !== null) {
      m.region.mapping.release();
      closeQuietly(m.region.fd);
      for (const ring of [...m.c2s, ...m.s2c]) closeQuietly(ring.eventfd);
      this.#memory = null;
    }
    this.#cb.failed(err);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
