// Server side of the handshake for one accepted connection (spec §4, §11 items 1 to 6).
//
// Sends HELLO at once, then answers every request with exactly one message: ACK, CONNECTED, or a
// DISCONNECT carrying the reason (DPDK's strings where DPDK has one), after which it closes. INIT
// picks the interface by id; from then on failures are reported to that interface.

import { FerryError, ferryError } from '../errors.js';
import { MEMIF_MAX_REGION_INDEX, MEMIF_VERSION, type MemifMessage } from '../proto/memif/index.js';
import type { Established } from './client-handshake.js';
import { MemifConnection } from './connection.js';
import { ControlChannel } from './control-channel.js';
import type { MemifDownReason } from './link-info.js';
import { MEMIF_MAX_SEGMENT, type ResolvedOptions } from './options.js';
import {
  checkRegion,
  checkRing,
  closePending,
  mapServerMemory,
  type PendingRegion,
  type PendingRing,
  Refusal,
  refuse,
} from './server-memory.js';
import type { MemifQueueStats } from './stats.js';

/** What the handshake needs from the interface that claims it (see listener.ts). */
export interface HandshakeEndpoint {
  readonly options: ResolvedOptions;
  busy(): boolean;
  claim(h: ServerHandshake): void;
  handshakeFailed(h: ServerHandshake, err: MemifDownReason): void;
  established(h: ServerHandshake, e: Established): void;
  stats(): { rx: MemifQueueStats[]; tx: MemifQueueStats[] };
}

export interface HandshakeHost {
  lookup(id: number): HandshakeEndpoint | undefined;
  limits(): { name: string; maxC2sRing: number; maxS2cRing: number; maxLog2: number; timeoutMs: number };
  done(h: ServerHandshake): void;
}

export class ServerHandshake {
  readonly #host: HandshakeHost;
  readonly #channel: ControlChannel;
  #ep: HandshakeEndpoint | null = null;
  #state: 'init' | 'config' | 'done' = 'init';
  #regions: PendingRegion[] = [];
  #c2s: PendingRing[] = [];
  #s2c: PendingRing[] = [];
  #peerName = '';
  #timer: NodeJS.Timeout | null = null;

  constructor(fd: number, host: HandshakeHost) {
    this.#host = host;
    this.#channel = new ControlChannel(fd, {
      message: (msg, mfd) => this.#onMessage(msg, mfd),
      fail: (err, reply) => this.#fail(err, reply),
    });
  }

  start(): void {
    const l = this.#host.limits();
    this.#armTimer(l.timeoutMs);
    this.#channel.send({
      type: 'hello',
      name: l.name,
      minVersion: MEMIF_VERSION,
      maxVersion: MEMIF_VERSION,
      maxRegion: MEMIF_MAX_REGION_INDEX,
      maxS2cRing: l.maxS2cRing,
      maxC2sRing: l.maxC2sRing,
      maxLog2RingSize: l.maxLog2,
    });
  }

  /** The listener closed: drop the connection. */
  abort(): void {
    this.#fail(ferryError('ERR_FERRY_MEMIF_CLOSED'), 'Interface closed');
  }

  #armTimer(ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => this.#fail(ferryError('ETIMEDOUT', `memif handshake did not complete in ${ms} ms`), 'Timeout'),
      ms,
    );
    this.#timer.unref?.();
  }

  #onMessage(msg: MemifMessage, fd: number): void {
    if (this.#state === 'done') {
      if (fd >= 0) closePending([{ fd, size: 0 }], []);
      return;
    }
    try {
      this.#handle(msg, fd);
    } catch (e) {
      if (e instanceof Refusal) this.#fail(e.error, e.reply);
      else this.#fail(ferryError('ERR_FERRY_MEMIF_PROTOCOL', (e as Error).message), 'Internal error');
    }
  }

  #handle(msg: MemifMessage, fd: number): void {
    if (msg.type === 'disconnect') {
      const err: MemifDownReason = ferryError('ERR_FERRY_MEMIF_PEER_DISCONNECT', msg.reason || '(no reason)');
      err.peerMessage = msg.reason;
      this.#fail(err, null);
      return;
    }
    if (this.#state === 'init') {
      if (msg.type !== 'init')
        throw refuse('ERR_FERRY_MEMIF_PROTOCOL', 'Unexpected message', `${msg.type} before INIT`);
      this.#onInit(msg);
      return;
    }
    const ep = this.#ep;
    if (ep === null) throw refuse('ERR_FERRY_MEMIF_PROTOCOL', 'Unexpected message');
    const o = ep.options;
    switch (msg.type) {
      case 'add-region': {
        const region = { fd, size: msg.size };
        if (msg.index !== this.#regions.length) {
          closePending([region], []);
          throw refuse(
            'ERR_FERRY_MEMIF_PROTOCOL',
            'Invalid region index',
            `${msg.index}, expected ${this.#regions.length}`,
          );
        }
        try {
          checkRegion(fd, msg.size, o.maxRegionBytes);
        } catch (e) {
          closePending([region], []);
          throw e;
        }
        this.#regions.push(region);
        this.#channel.send({ type: 'ack' });
        return;
      }
      case 'add-ring': {
        const ring: PendingRing = {
          index: msg.index,
          region: msg.region,
          offset: msg.offset,
          log2: msg.log2RingSize,
          eventfd: fd,
        };
        const list = msg.direction === 'c2s' ? this.#c2s : this.#s2c;
        const limit = msg.direction === 'c2s' ? o.rxQueues : o.txQueues;
        try {
          if (msg.index !== list.length || msg.index >= limit) {
            throw refuse(
              'ERR_FERRY_MEMIF_REJECTED',
              'Invalid ring index',
              `${msg.direction} ${msg.index}: expected ${list.length}, at most ${limit} rings`,
            );
          }
          if (msg.log2RingSize > o.log2RingSize) {
            throw refuse(
              'ERR_FERRY_MEMIF_REJECTED',
              'Invalid ring size',
              `log2 ${msg.log2RingSize} > ${o.log2RingSize}`,
            );
          }
          checkRing(ring, this.#regions);
        } catch (e) {
          closePending([], [ring]);
          throw e;
        }
        list.push(ring);
        this.#channel.send({ type: 'ack' });
        return;
      }
      case 'connect':
        this.#onConnect(ep, msg.ifName);
        return;
      default:
        throw refuse('ERR_FERRY_MEMIF_PROTOCOL', 'Unexpected message', `${msg.type} from a client`);
    }
  }

  #onInit(msg: Extract<MemifMessage, { type: 'init' }>): void {
    if (msg.version !== MEMIF_VERSION) {
      throw refuse('ERR_FERRY_MEMIF_PROTOCOL', 'Incompatible memif version', `0x${msg.version.toString(16)}`);
    }
    const ep = this.#host.lookup(msg.id);
    if (ep === undefined) throw refuse('ERR_FERRY_MEMIF_REJECTED', 'ID not found', `id ${msg.id}`);
    if (ep.busy()) throw refuse('ERR_FERRY_MEMIF_REJECTED', 'Already connected', `id ${msg.id}`);
    const o = ep.options;
    const report = (r: Refusal): Refusal => {
      ep.handshakeFailed(this, r.error);
      return r;
    };
    if (msg.mode !== o.mode)
      throw report(refuse('ERR_FERRY_MEMIF_REJECTED', 'Mode mismatch', `${msg.mode} != ${o.mode}`));
    if (o.secret !== '') {
      if (msg.secret === '') throw report(refuse('ERR_FERRY_MEMIF_REJECTED', 'Secret required'));
      if (msg.secret !== o.secret) throw report(refuse('ERR_FERRY_MEMIF_REJECTED', 'Incorrect secret'));
    }
    this.#ep = ep;
    this.#peerName = msg.name;
    this.#state = 'config';
    ep.claim(this);
    this.#armTimer(o.handshakeTimeoutMs);
    this.#channel.send({ type: 'ack' });
  }

  #onConnect(ep: HandshakeEndpoint, peerIfName: string): void {
    if (this.#c2s.length === 0 || this.#s2c.length === 0) {
      throw refuse(
        'ERR_FERRY_MEMIF_PROTOCOL',
        'Missing rings',
        `${this.#c2s.length} C2S, ${this.#s2c.length} S2C`,
      );
    }
    const mapped = mapServerMemory(this.#regions, this.#c2s, this.#s2c);
    // The connection owns every fd and mapping from here on.
    this.#regions = [];
    this.#c2s = [];
    this.#s2c = [];
    for (const ring of [...mapped.c2s, ...mapped.s2c]) {
      ring.storeHead(0);
      ring.storeTail(0);
    }
    const stats = ep.stats();
    const o = ep.options;
    const conn = new MemifConnection({
      role: 'server',
      regions: mapped.regions,
      c2s: mapped.c2s,
      s2c: mapped.s2c,
      maxChain: o.maxChainSegments,
      maxSegment: MEMIF_MAX_SEGMENT,
      rxStats: stats.rx,
      txStats: stats.tx,
    });
    this.#state = 'done';
    this.#clearTimer();
    this.#host.done(this);
    if (!this.#channel.send({ type: 'connected', ifName: o.ifName })) {
      conn.release();
      ep.handshakeFailed(this, ferryError('ERR_FERRY_MEMIF_PEER_GONE', 'the client left before CONNECTED'));
      return;
    }
    ep.established(this, {
      conn,
      channel: this.#channel,
      info: {
        role: 'server',
        id: o.id,
        mode: o.mode,
        queues: { rx: mapped.c2s.length, tx: mapped.s2c.length },
        ringSize: mapped.c2s[0]?.log2 ?? 0,
        bufferSize: 0,
        peerName: this.#peerName,
        peerIfName,
      },
    });
  }

  #fail(err: FerryError, reply: string | null): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#clearTimer();
    if (reply !== null) this.#channel.disconnect(reply);
    else this.#channel.close();
    closePending(this.#regions, [...this.#c2s, ...this.#s2c]);
    this.#regions = [];
    this.#c2s = [];
    this.#s2c = [];
    this.#host.done(this);
    const ep = this.#ep;
    this.#ep = null;
    if (ep !== null)
      ep.handshakeFailed(this, err instanceof FerryError ? err : ferryError('ERR_FERRY_MEMIF_PROTOCOL'));
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
