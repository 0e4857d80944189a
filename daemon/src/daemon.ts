/** The composition root: builds ferryd's layers from a configuration and starts them. */
import { chownSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { CtrlServer } from './api/ctrl-server.js';
import { applyReload, type ReloadOutcome } from './config/reload.js';
import { resolveGroup } from './config/socket-group.js';
import { type DaemonConfig, validateConfig } from './config.js';
import { adminPath, startAdminServer } from './inspect/admin-server.js';
import { type ShowTopic, snapshot } from './inspect/snapshot.js';
import { type Logger, silentLogger } from './log/logger.js';
import { parseListenAddress } from './obs/listen-address.js';
import type { Metrics } from './obs/metrics.js';
import { DaemonObserver } from './obs/observer.js';
import { Policy } from './policy/policy.js';
import { StallMonitor } from './policy/stall-monitor.js';
import { SessionLayer } from './session/session-layer.js';

export class Daemon {
  readonly config: DaemonConfig;
  readonly server: CtrlServer;
  readonly layer: SessionLayer;
  readonly policy: Policy;
  readonly stalls: StallMonitor;
  readonly observer: DaemonObserver;
  #admin: Server | null = null;
  #metrics: Metrics | null = null;
  #metricsServer: HttpServer | null = null;
  readonly log: Logger;

  constructor(config: DaemonConfig, log: Logger = silentLogger) {
    this.config = validateConfig(config);
    this.policy = new Policy(this.config);
    this.server = new CtrlServer(this.config, log, this.policy);
    this.layer = new SessionLayer(this.config, this.server.apps, log, this.policy);
    this.observer = new DaemonObserver(this.layer);
    this.log = log;
    this.stalls = new StallMonitor(
      this.config,
      this.server.apps,
      this.layer.segments,
      this.policy.counters,
      log,
    );
  }

  start(): this {
    const gid = this.config.socketGroup === null ? null : resolveGroup(this.config.socketGroup);
    this.server.start(this.layer);
    const socket = this.config.socket;
    if (gid !== null && !socket.startsWith('@')) chownSync(socket, process.getuid?.() ?? -1, gid);
    this.#admin = startAdminServer(socket, this.config.socketMode, (t) => this.show(t));
    if (gid !== null && !socket.startsWith('@')) {
      this.#admin.once('listening', () => chownSync(adminPath(socket), process.getuid?.() ?? -1, gid));
    }
    this.stalls.start();
    this.observer.start();
    return this;
  }

  /**
   * Serves the Prometheus endpoint when the configuration asks for it (`metrics.listen`, or
   * `--metrics`); resolves to the address bound, or null when metrics are off.
   */
  async startMetrics(): Promise<AddressInfo | null> {
    const listen = this.config.metrics.listen;
    if (listen === null) return null;
    const addr = parseListenAddress(listen);
    // Loaded only when asked for: metrics off costs nothing (not even loading prom-client).
    const { createMetrics } = await import('./obs/metrics.js');
    const { startMetricsServer } = await import('./obs/metrics-server.js');
    this.#metrics = createMetrics(this, this.observer);
    this.#metricsServer = await startMetricsServer(addr, this.#metrics.registry, (line) =>
      this.log.warn(line),
    );
    return this.#metricsServer.address() as AddressInfo;
  }

  /** Applies a reloaded configuration's live options (SIGHUP); see config/reload.ts. */
  reload(next: DaemonConfig): ReloadOutcome {
    const outcome = applyReload(this.config, next, validateConfig);
    this.log.setLevel(this.config.logLevel);
    this.policy.counters.reloads++;
    // Sessions the new rules deny (handed tcp connections) are reset.
    this.layer.policyChanged();
    return outcome;
  }

  show(topic: ShowTopic): unknown {
    if (topic === 'sessions' || topic === 'top') this.observer.traffic.sample();
    return snapshot(topic, this.server, this.layer, this.stalls, this.observer);
  }

  stop(): void {
    this.#metricsServer?.close();
    this.#metricsServer = null;
    this.#metrics?.close();
    this.#metrics = null;
    this.observer.stop();
    this.stalls.stop();
    this.#admin?.close();
    this.#admin = null;
    this.server.stop();
    this.layer.stop();
  }
}
