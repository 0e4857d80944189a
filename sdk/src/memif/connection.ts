// One established memif link: the mapped regions, the rings, their eventfds and the queues.
//
// Built by the client (memory it created) or the server (memory it was handed and validated) once
// the handshake completes; torn down exactly once. Teardown first marks every queue dead (the data
// path returns 0 from then on), then stops watching doorbells, releases the mappings (sys maps
// zeros over them, so a stale burst view reads zeros instead of faulting) and closes every fd.

import { type FerryError, ferryError } from '../errors.js';
import { close, type Mapping } from '../sys/index.js';
import type { MemifRing, RegionView } from './ring.js';
import { C2sRxQueue, type RxQueue, S2cRxQueue } from './rx-queue.js';
import type { MemifQueueStats } from './stats.js';
import { C2sTxQueue, S2cTxQueue, type TxQueue } from './tx-queue.js';

export interface OwnedRegion {
  view: RegionView;
  mapping: Mapping;
  fd: number;
}

export interface ConnectionParts {
  role: 'client' | 'server';
  regions: OwnedRegion[];
  c2s: MemifRing[];
  s2c: MemifRing[];
  /** Client only: offset of each ring's buffers (C2S rings, then S2C rings), and their size. */
  bufBases?: number[];
  bufferSize?: number;
  maxChain: number;
  maxSegment: number;
  rxStats: MemifQueueStats[];
  txStats: MemifQueueStats[];
}

export class MemifConnection {
  readonly role: 'client' | 'server';
  readonly regions: OwnedRegion[];
  readonly c2s: MemifRing[];
  readonly s2c: MemifRing[];
  readonly rx: RxQueue[];
  readonly tx: TxQueue[];
  #dead = false;
  #onFail: (err: FerryError) => void = () => {};

  constructor(p: ConnectionParts) {
    const fail = (detail: string): void => this.#fail(detail);
    this.role = p.role;
    this.regions = p.regions;
    this.c2s = p.c2s;
    this.s2c = p.s2c;
    const views = p.regions.map((r) => r.view);
    const bytes = views.map((v) => v.u8);
    const limits = { maxSegment: p.maxSegment, maxChain: p.maxChain };
    if (p.role === 'server') {
      this.rx = p.c2s.map((ring, i) => new C2sRxQueue(ring, views, limits, statsAt(p.rxStats, i), fail));
      this.tx = p.s2c.map((ring, i) => new S2cTxQueue(ring, views, p.maxChain, statsAt(p.txStats, i), fail));
    } else {
      const bases = p.bufBases ?? [];
      const bsize = p.bufferSize ?? 0;
      this.tx = p.c2s.map(
        (ring, i) =>
          new C2sTxQueue(ring, bytes, bases[i] ?? 0, bsize, p.maxChain, statsAt(p.txStats, i), fail),
      );
      const rx = p.s2c.map(
        (ring, i) =>
          new S2cRxQueue(
            ring,
            bytes,
            bases[p.c2s.length + i] ?? 0,
            bsize,
            limits,
            statsAt(p.rxStats, i),
            fail,
          ),
      );
      // After CONNECTED the client may hand its empty S2C buffers to the server (spec §4 item 7).
      for (const q of rx) q.start();
      this.rx = rx;
    }
  }

  get dead(): boolean {
    return this.#dead;
  }

  set onFail(fn: (err: FerryError) => void) {
    this.#onFail = fn;
  }

  /** Stops the data path at once (further calls return 0). */
  kill(): void {
    if (this.#dead) return;
    this.#dead = true;
    for (const q of this.rx) q.dead = true;
    for (const q of this.tx) q.dead = true;
  }

  /** Releases the memory and fds; the caller has already stopped watching the eventfds. */
  release(): void {
    this.kill();
    for (const r of this.regions) {
      r.mapping.release();
      closeQuietly(r.fd);
    }
    this.regions.length = 0;
    for (const ring of [...this.c2s, ...this.s2c]) closeQuietly(ring.eventfd);
  }

  /**
   * A queue found the shared memory inconsistent: stop the data path now, report once, after the
   * current data-path call has returned (the owner's handler tears the link down).
   */
  #fail(detail: string): void {
    if (this.#dead) return;
    this.kill();
    const err = ferryError('ERR_FERRY_MEMIF_BAD_RING', detail);
    queueMicrotask(() => this.#onFail(err));
  }
}

function statsAt(a: MemifQueueStats[], i: number): MemifQueueStats {
  const s = a[i];
  if (s === undefined) throw new Error(`memif: no stats slot for queue ${i}`);
  return s;
}

export function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    close(fd);
  } catch {
    // Already closed or never valid: nothing left to free.
  }
}
