/**
 * ferryd's Prometheus metrics (docs/observability.md lists them). Built only when the endpoint is
 * enabled. Most values are read from ferryd's state at scrape time (gauges, and counters ferryd
 * already keeps); session events and connects are counted as they happen through the diagnostics
 * channels of events.ts. Labels are bounded: transport, namespace (listed ones and `default`, others
 * as `_other`: an app picks its namespace's name), result, direction, and fixed enumerations; never
 * a session, app or listener id.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { CtrlServer } from '../api/ctrl-server.js';
import type { DaemonConfig } from '../config.js';
import type { Policy } from '../policy/policy.js';
import type { SessionLayer } from '../session/session-layer.js';
import { type ConnectDone, connectDone, sessionFreed, sessionOpened } from './events.js';
import type { DaemonObserver } from './observer.js';

const TRANSPORTS = new Set(['ct', 'tcp', 'tls', 'udp', 'tcp-handoff']);
const SCHEMES = new Set(['tcp', 'tls', 'udp']);

/** Connect outcomes as a bounded `result` label. */
export function connectResult(code: string | null): string {
  if (code === null) return 'ok';
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ERR_FERRY_DENIED':
      return 'denied';
    case 'ERR_FERRY_LIMIT':
      return 'limit';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unreachable';
    default:
      return code.startsWith('ERR_FERRY_TLS') ? 'tls' : 'error';
  }
}

export interface Metrics {
  readonly registry: Registry;
  close(): void;
}

/**
 * The parts of ferryd the metrics read (a Daemon is one): named here so that obs/ depends on the
 * layers it reads and not on the composition root, which loads this module.
 */
export interface MetricsSources {
  readonly config: Pick<DaemonConfig, 'namespaces'>;
  readonly server: Pick<CtrlServer, 'apps' | 'counters'>;
  readonly layer: SessionLayer;
  readonly policy: Pick<Policy, 'counters'>;
}

export function createMetrics(daemon: MetricsSources, observer: DaemonObserver): Metrics {
  const registry = new Registry();
  const layer = daemon.layer;
  const server = daemon.server;
  const policy = daemon.policy.counters;
  const transport = (t: string) => (TRANSPORTS.has(t) ? t : 'other');
  const namespace = (n: string) => (n === 'default' || n in daemon.config.namespaces ? n : '_other');
  const registers = [registry];

  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'ferry_apps',
    help: 'Apps attached to ferryd, by namespace',
    labelNames: ['namespace'],
    registers,
    collect() {
      this.reset();
      for (const a of server.apps.values()) this.inc({ namespace: namespace(a.namespace) });
    },
  });
  new Gauge({
    name: 'ferry_sessions',
    help: 'Sessions in the table (one per app end: a cut-through connection is two), by transport',
    labelNames: ['transport'],
    registers,
    collect() {
      this.reset();
      for (const t of TRANSPORTS) this.set({ transport: t }, 0);
      for (const s of layer.sessions.values()) this.inc({ transport: transport(s.transport) });
    },
  });
  new Gauge({
    name: 'ferry_listeners',
    help: 'Listeners and datagram endpoints registered by apps',
    registers,
    collect() {
      this.set(layer.listeners.size);
    },
  });
  new Gauge({
    name: 'ferry_segments',
    help: 'Pair segments ferryd has handed out',
    registers,
    collect() {
      this.set(layer.segments.size);
    },
  });
  new Gauge({
    name: 'ferry_segment_bytes',
    help: 'Shared memory in the pair segments ferryd has handed out',
    registers,
    collect() {
      this.set(layer.segments.totalBytes);
    },
  });
  new Gauge({
    name: 'ferry_fifo_bytes',
    help: 'Shared memory used by the fifos placed in the segments (headers and rings)',
    registers,
    collect() {
      let n = 0;
      for (const seg of layer.segments.values()) n += seg.fifoBytes;
      this.set(n);
    },
  });
  new Gauge({
    name: 'ferry_fifo_queued_bytes',
    help: 'Bytes written into fifos and not yet read, by transport (last sample)',
    labelNames: ['transport'],
    registers,
    collect() {
      this.reset();
      observer.traffic.sample();
      for (const [t, n] of observer.traffic.queued()) this.inc({ transport: transport(t) }, n);
    },
  });
  new Gauge({
    name: 'ferry_fifos_stuck',
    help: 'Fifos full with nothing consumed for 2 s or more',
    registers,
    collect() {
      this.set(observer.traffic.health().stuck);
    },
  });
  new Counter({
    name: 'ferry_fifos_corrupt_total',
    help: 'Fifos whose header ferryd found inconsistent (no longer counted)',
    registers,
    collect() {
      setCounter(this, {}, observer.traffic.health().corrupt);
    },
  });

  new Counter({
    name: 'ferry_fast_connects_total',
    help: 'Cut-through sessions clients opened from a pool, without a connect request (fast connects)',
    registers,
    collect() {
      layer.pools.sample();
      setCounter(this, {}, layer.counters.fastConnects);
    },
  });
  new Gauge({
    name: 'ferry_fast_connect_pairs_lent',
    help: 'Fifo pairs lent to fast-connect pools (free, in use or idle)',
    registers,
    collect() {
      this.set(layer.pools.stats().lentPairs);
    },
  });

  // Connections on fast-connect pool pairs that never enter the table count here when ferryd
  // samples the pairs: two ends each (session/fast-pools.ts).
  let pooledOpened = 0;
  let pooledEnded = 0;
  const opened = new Counter({
    name: 'ferry_sessions_opened_total',
    help: 'Session ends opened (put in the table, or seen on a fast-connect pool pair), by transport',
    labelNames: ['transport'],
    registers,
    collect() {
      layer.pools.sample();
      const n = layer.pools.pooledOpened;
      if (n > pooledOpened) this.inc({ transport: 'ct' }, 2 * (n - pooledOpened));
      pooledOpened = n;
    },
  });
  const closed = new Counter({
    name: 'ferry_sessions_closed_total',
    help: "Session ends closed (left the table, or seen done on a pool pair), by transport and result ('closed', 'reset')",
    labelNames: ['transport', 'result'],
    registers,
    collect() {
      layer.pools.sample();
      const n = layer.pools.pooledEnded;
      if (n > pooledEnded) this.inc({ transport: 'ct', result: 'closed' }, 2 * (n - pooledEnded));
      pooledEnded = n;
    },
  });
  const connects = new Counter({
    name: 'ferry_connects_total',
    help: 'Connect requests answered, by transport (the scheme when none took it) and result',
    labelNames: ['transport', 'result'],
    registers,
  });
  const connectSeconds = new Histogram({
    name: 'ferry_connect_duration_seconds',
    help: 'Time from a connect request to its answer, by transport (the scheme when none took it)',
    labelNames: ['transport', 'result'],
    buckets: [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
    registers,
  });
  new Counter({
    name: 'ferry_bytes_total',
    help:
      "Payload bytes by transport and direction ('tx': apps wrote, 'rx': delivered to apps); ct from " +
      'the fifo indices, tcp/tls/udp from what ferryd carried, tcp-handoff from TCP_INFO',
    labelNames: ['transport', 'direction'],
    registers,
    collect() {
      this.reset();
      observer.traffic.sample();
      const ct = observer.traffic.totals().get('ct') ?? { written: 0, read: 0 };
      this.inc({ transport: 'ct', direction: 'tx' }, ct.written);
      this.inc({ transport: 'ct', direction: 'rx' }, ct.read);
      const carried = observer.carried();
      // A handed-off socket's bytes are the kernel's (TCP_INFO: received, and acked by the peer).
      for (const t of ['tcp', 'tls', 'udp', 'tcp-handoff']) {
        const c = carried.get(t);
        this.inc({ transport: t, direction: 'tx' }, c?.tx ?? 0);
        this.inc({ transport: t, direction: 'rx' }, c?.rx ?? 0);
      }
    },
  });
  new Counter({
    name: 'ferry_datagrams_total',
    help: "Datagrams ferryd relayed between apps and the network, by direction ('tx', 'rx')",
    labelNames: ['direction'],
    registers,
    collect() {
      const u = observer.carried().get('udp');
      setCounter(this, { direction: 'tx' }, u?.datagramsTx ?? 0);
      setCounter(this, { direction: 'rx' }, u?.datagramsRx ?? 0, false);
    },
  });
  new Counter({
    name: 'ferry_datagram_drops_total',
    help: "Datagrams from the network dropped because the app's relay fifo was full",
    registers,
    collect() {
      setCounter(this, {}, observer.carried().get('udp')?.drops ?? 0);
    },
  });
  new Counter({
    name: 'ferry_policy_denials_total',
    help: "Requests the trust policy refused, by kind ('attach', 'connect', 'datagram')",
    labelNames: ['kind'],
    registers,
    collect() {
      setCounter(this, { kind: 'attach' }, policy.attachRefused);
      setCounter(this, { kind: 'connect' }, policy.deniedConnects, false);
      setCounter(this, { kind: 'datagram' }, policy.deniedDatagrams, false);
    },
  });
  new Counter({
    name: 'ferry_limit_refusals_total',
    help: 'Requests refused because a configured limit was reached, by limit',
    labelNames: ['limit'],
    registers,
    collect() {
      this.reset();
      for (const [limit, n] of Object.entries(policy.limitHits)) this.inc({ limit }, n);
    },
  });
  new Counter({
    name: 'ferry_stalled_apps_total',
    help: 'Apps seen not reading what ferryd sends them',
    registers,
    collect() {
      setCounter(this, {}, policy.stalledApps);
    },
  });
  new Counter({
    name: 'ferry_stall_disconnects_total',
    help: 'Stalled apps ferryd disconnected',
    registers,
    collect() {
      setCounter(this, {}, policy.stalledDisconnected);
    },
  });
  new Counter({
    name: 'ferry_attaches_total',
    help: "Control connections by outcome ('ok': attached, 'rejected': HELLO refused, 'timeout')",
    labelNames: ['result'],
    registers,
    collect() {
      const c = server.counters as unknown as Record<string, number>;
      setCounter(this, { result: 'ok' }, c['accepted'] ?? 0);
      setCounter(this, { result: 'rejected' }, c['helloRejected'] ?? 0, false);
      setCounter(this, { result: 'timeout' }, c['helloTimeouts'] ?? 0, false);
    },
  });
  new Counter({
    name: 'ferry_app_reattaches_total',
    help: 'Apps that attached again after losing a ferryd: its restarts and crashes, as apps saw them',
    registers,
    collect() {
      setCounter(this, {}, (server.counters as unknown as Record<string, number>)['reattached'] ?? 0);
    },
  });
  new Counter({
    name: 'ferry_tls_handshake_failures_total',
    help: 'TLS handshakes ferryd terminated that failed (accepts and connects)',
    registers,
    collect() {
      setCounter(this, {}, layer.counters.tlsFailures);
    },
  });
  new Counter({
    name: 'ferry_config_reloads_total',
    help: "Configuration reloads (SIGHUP), by result ('ok', 'refused')",
    labelNames: ['result'],
    registers,
    collect() {
      setCounter(this, { result: 'ok' }, policy.reloads);
      setCounter(this, { result: 'refused' }, policy.reloadFailures, false);
    },
  });

  for (const t of TRANSPORTS) {
    opened.inc({ transport: t }, 0);
    closed.inc({ transport: t, result: 'closed' }, 0);
    closed.inc({ transport: t, result: 'reset' }, 0);
  }
  const onOpened = (msg: unknown) => {
    const m = msg as { owner: unknown; session: { transport: string; openCounted?: boolean } };
    // A fast connect that entered the table after a sample counted it is in the pooled count already.
    if (m.owner === layer && !m.session.openCounted)
      opened.inc({ transport: transport(m.session.transport) });
  };
  const onFreed = (msg: unknown) => {
    const m = msg as { owner: unknown; session: { transport: string; state: string } };
    if (m.owner !== layer) return;
    const result = m.session.state === 'reset' ? 'reset' : 'closed';
    closed.inc({ transport: transport(m.session.transport), result });
  };
  const onConnect = (msg: unknown) => {
    const m = msg as ConnectDone;
    if (m.owner !== layer) return;
    const t = m.transport !== null ? transport(m.transport) : SCHEMES.has(m.scheme) ? m.scheme : 'other';
    const result = connectResult(m.code);
    connects.inc({ transport: t, result });
    connectSeconds.observe({ transport: t, result }, m.seconds);
  };
  subscribe(sessionOpened.name, onOpened);
  subscribe(sessionFreed.name, onFreed);
  subscribe(connectDone.name, onConnect);
  return {
    registry,
    close() {
      unsubscribe(sessionOpened.name, onOpened);
      unsubscribe(sessionFreed.name, onFreed);
      unsubscribe(connectDone.name, onConnect);
      registry.clear();
    },
  };
}

/** Sets a counter to a value ferryd keeps (monotonic already); `reset` first unless told not to. */
function setCounter(c: Counter, labels: Record<string, string>, value: number, reset = true): void {
  if (reset) c.reset();
  c.inc(labels, value);
}
