/**
 * `ferry show sessions` rows for the connections on fast-connect pool pairs that ferryd's table
 * does not hold (session/fast-pools.ts): they come and go between apps without ferryd, which sees
 * them only when it samples the pairs' words. Each end still open gets a row like a table
 * session's, under the ids reserved for the pair (the same for each connection on it), with the
 * bytes read from its fifo headers; fields only the table knows (age, idle time) are null.
 */
import { checkFifoProbe, emptyFifoProbe, fifoHeaderView, readFifoProbe } from '@ferry/sdk/internal';
import type { FastPool, FastPools, PoolPairLook, PoolPairRec } from '../session/fast-pools.js';

/** Bytes through one fifo header (its tail and head), and its fill; null if the header is broken. */
function fifoFigures(
  pool: FastPool,
  offset: number,
  size: number,
): { tail: number; head: number; fill: number } | null {
  const w = pool.seg.fifoHeader(offset);
  const p = readFifoProbe(fifoHeaderView(w.buffer, offset - w.base), emptyFifoProbe());
  if (checkFifoProbe(p, size, p.head, p.tail) !== null) return null;
  return {
    tail: p.tail,
    head: p.head,
    fill: (p.tail - p.head) >>> 0,
  };
}

export function pooledRows(pool: FastPool, rec: PoolPairRec, look: PoolPairLook): Record<string, unknown>[] {
  const c2s = fifoFigures(pool, rec.clientTx, rec.fifoSize);
  const s2c = fifoFigures(pool, rec.clientRx, rec.fifoSize);
  const clientUri = pool.clientUri(rec.port);
  const row = (
    id: number,
    app: number,
    local: string,
    remote: string,
    peer: number,
    listener: number | null,
    tx: typeof c2s,
    rx: typeof c2s,
  ): Record<string, unknown> => ({
    id,
    app,
    transport: 'ct',
    state: 'established',
    local,
    remote,
    peer,
    segment: pool.seg.id,
    slot: rec.slot,
    listener,
    txBytes: tx?.tail ?? null,
    rxBytes: rx?.head ?? null,
    txFill: tx ? `${tx.fill}/${rec.fifoSize}` : null,
    rxFill: rx ? `${rx.fill}/${rec.fifoSize}` : null,
    idleMs: null,
    stuck: false,
    fifoError: tx && rx ? null : 'unreadable fifo header',
    daemonBytes: null,
    drops: null,
    kernel: null,
    ageMs: null,
    pooled: true,
  });
  const rows: Record<string, unknown>[] = [];
  if (!look.clientDone) {
    rows.push(row(rec.clientId, pool.client.id, clientUri, pool.serverUri, rec.serverId, null, c2s, s2c));
  }
  if (!look.serverDone) {
    rows.push(
      row(rec.serverId, pool.server.id, pool.serverUri, clientUri, rec.clientId, pool.listener.id, s2c, c2s),
    );
  }
  return rows;
}

/**
 * Samples the pools and counts the ends `pooledRows` would list, by app id: `ferry show apps` and
 * `stats.sessions` add them to the table's sessions, so every view counts the same connections.
 */
export function pooledEndsByApp(pools: FastPools): Map<number, number> {
  const ends = new Map<number, number>();
  const add = (app: number) => ends.set(app, (ends.get(app) ?? 0) + 1);
  pools.sample((pool, _rec, look) => {
    if (!look.clientDone) add(pool.client.id);
    if (!look.serverDone) add(pool.server.id);
  });
  return ends;
}
