/** What ferryd holds, as plain JSON-able objects: the data behind `ferry show`. */
import { readdirSync } from 'node:fs';
import { formatUri, probeEventQueue } from '@ferry/sdk/internal';
import type { CtrlServer } from '../api/ctrl-server.js';
import type { DaemonObserver } from '../obs/observer.js';
import type { StallMonitor } from '../policy/stall-monitor.js';
import type { Session } from '../session/session.js';
import type { SessionLayer } from '../session/session-layer.js';
import type { TopicTransport } from '../topics/topic-transport.js';
import { namespacesView, rulesView } from './policy-view.js';
import { pooledEndsByApp, pooledRows } from './pooled-rows.js';
import type { ShowTopic } from './show-topics.js';

export { SHOW_TOPICS, type ShowTopic } from './show-topics.js';

export function snapshot(
  topic: ShowTopic,
  server: CtrlServer,
  layer: SessionLayer,
  stalls?: StallMonitor,
  observer?: DaemonObserver,
): unknown {
  // Connections on fast-connect pool pairs are counted when ferryd looks (session/fast-pools.ts);
  // the live ones are not in the table, but are sessions like the table's for every view.
  const pooled = topic === 'sessions' ? new Map<number, number>() : pooledEndsByApp(layer.pools);
  let pooledEnds = 0;
  for (const n of pooled.values()) pooledEnds += n;
  switch (topic) {
    case 'sessions': {
      const rows = [...layer.sessions.values()].map((s) => sessionRow(s, observer));
      layer.pools.sample((pool, rec, look) => {
        for (const r of pooledRows(pool, rec, look)) rows.push(r);
      });
      return rows;
    }
    case 'top':
      return {
        now: Date.now(),
        apps: (snapshot('apps', server, layer, stalls, observer) as Record<string, unknown>[]).map((a) => ({
          ...a,
          events: eventsPostedTo(layer, a['id'] as number),
        })),
        sessions: snapshot('sessions', server, layer, stalls, observer),
        bytes: observer ? bytesByTransport(observer) : {},
        fifos: observer?.traffic.health() ?? null,
        udpDrops: observer?.carried().get('udp')?.drops ?? 0,
      };
    case 'apps':
      return [...server.apps.values()].map((a) => ({
        id: a.id,
        name: a.name,
        namespace: a.namespace,
        pid: a.creds.pid,
        uid: a.creds.uid,
        gid: a.creds.gid,
        sessions: a.sessions.size + (pooled.get(a.id) ?? 0),
        listeners: a.listeners.size,
        segments: a.segments.size,
        badMessages: a.badMessages,
        ctrlBacklog: a.channel.stats.pending,
        stalledMs: stalls?.stalledMs(a) ?? 0,
        ageMs: Date.now() - a.attachedAt,
      }));
    case 'segments':
      return [...layer.segments.values()].map((s) => ({
        id: s.id,
        apps: [s.appA, s.appB],
        sizeBytes: s.segment.size,
        sessions: s.liveSessions,
        mappedBy: [...s.mappedBy],
      }));
    case 'listeners':
      return [...layer.listeners.values()].map((l) => {
        // A lent listener (handoff): the app's figures for the connections it accepted itself.
        const lent = layer.listenerDetail(l.id);
        return {
          id: l.id,
          app: l.appId,
          namespace: l.namespace,
          uri: formatUri(l.uri),
          transports: layer.describeListener(l.id),
          accepted: l.accepted,
          ...(lent ? { lent } : {}),
        };
      });
    case 'stats':
      return {
        apps: server.apps.size,
        pendingChannels: server.pending.size,
        sessions: layer.sessions.size + pooledEnds,
        // The part of `sessions` that is live pooled ends: the table holds the rest.
        pooledSessions: pooledEnds,
        segments: layer.segments.size,
        segmentBytes: layer.segments.totalBytes,
        listeners: layer.listeners.size,
        daemonSegments: layer.daemonEnd.size,
        fds: openFdCount(),
        ctrl: { ...server.counters },
        session: { ...layer.counters },
        ...layer.transportStats(),
        policy: structuredClone(server.policy.counters),
        rssBytes: process.memoryUsage().rss,
      };
    case 'rules':
      return rulesView(server.policy);
    case 'namespaces':
      return namespacesView(server.policy, server.apps.values());
    case 'topics':
      return (layer.transports.get('topic') as TopicTransport | undefined)?.rows() ?? [];
  }
}

/**
 * One session end. Bytes each way come from its fifos' indices as ferryd last sampled them (what
 * the app wrote into its tx fifo and read from its rx fifo), for every transport; `daemonBytes` is
 * what ferryd itself moved for sessions it carries (none for cut-through).
 */
function sessionRow(s: Session, observer: DaemonObserver | undefined): Record<string, unknown> {
  const t = observer?.traffic.view(s, observer.refOf(s));
  return {
    id: s.id,
    app: s.appId,
    transport: s.transport,
    state: s.state,
    local: s.localUri,
    remote: s.remoteUri,
    peer: s.peer?.id ?? null,
    segment: s.segmentId,
    slot: s.slot,
    listener: s.listenerId || null,
    txBytes: t?.tx?.bytes ?? null,
    rxBytes: t?.rx?.bytes ?? null,
    txFill: t?.tx ? `${t.tx.fill}/${t.tx.size}` : null,
    rxFill: t?.rx ? `${t.rx.fill}/${t.rx.size}` : null,
    idleMs: t?.tx && t.rx ? Math.min(t.tx.idleMs, t.rx.idleMs) : null,
    stuck: (t?.tx?.stuck ?? false) || (t?.rx?.stuck ?? false),
    fifoError: t?.tx?.error ?? t?.rx?.error ?? null,
    daemonBytes: s.daemonBytes,
    // A datagram relay's drops: datagrams from the network that found the app's fifo full.
    drops: (s.end as { dropsIn?: number } | null)?.dropsIn ?? null,
    kernel: s.end?.describe?.() ?? null,
    ageMs: Date.now() - s.createdAt,
  };
}

/**
 * Entries posted so far to the event queues `appId` drains (u32 each, summed): one per "this
 * session has news" notice, the wake-ups it was offered. Read from shared memory: a number only.
 */
function eventsPostedTo(layer: SessionLayer, appId: number): number {
  let n = 0;
  for (const seg of layer.segments.values()) {
    if (seg.segment.released || (seg.appA !== appId && seg.appB !== appId)) continue;
    const off = seg.appA === appId ? seg.queueToA : seg.queueToB;
    const w = seg.queueHeader(off);
    n += probeEventQueue(w.buffer, off - w.base).tail;
  }
  return n;
}

function bytesByTransport(observer: DaemonObserver): Record<string, { tx: number; rx: number }> {
  const out: Record<string, { tx: number; rx: number }> = {};
  const ct = observer.traffic.totals().get('ct');
  if (ct) out['ct'] = { tx: ct.written, rx: ct.read };
  for (const [t, c] of observer.carried()) out[t] = { tx: c.tx, rx: c.rx };
  return out;
}

function openFdCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}
