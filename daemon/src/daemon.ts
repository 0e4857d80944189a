/** The composition root: builds ferryd's layers from a configuration and starts them. */
import { chownSync } from 'node:fs';
import type { Server } from 'node:net';
import { CtrlServer } from './api/ctrl-server.js';
import { applyReload, type ReloadOutcome } from './config/reload.js';
import { resolveGroup } from './config/socket-group.js';
import { type DaemonConfig, validateConfig } from './config.js';
import { adminPath, startAdminServer } from './inspect/admin-server.js';
import { type ShowTopic, snapshot } from './inspect/snapshot.js';
import { Policy } from './policy/policy.js';
import { StallMonitor } from './policy/stall-monitor.js';
import { SessionLayer } from './session/session-layer.js';

export class Daemon {
  readonly config: DaemonConfig;
  readonly server: CtrlServer;
  readonly layer: SessionLayer;
  readonly policy: Policy;
  readonly stalls: StallMonitor;
  #admin: Server | null = null;

  constructor(config: DaemonConfig, log: (line: string) => void = () => {}) {
    this.config = validateConfig(config);
    this.policy = new Policy(this.config);
    this.server = new CtrlServer(this.config, log, this.policy);
    this.layer = new SessionLayer(this.config, this.server.apps, log, this.policy);
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
    return this;
  }

  /** Applies a reloaded configuration's live options (SIGHUP); see config/reload.ts. */
  reload(next: DaemonConfig): ReloadOutcome {
    const outcome = applyReload(this.config, next, validateConfig);
    this.policy.counters.reloads++;
    return outcome;
  }

  show(topic: ShowTopic): unknown {
    return snapshot(topic, this.server, this.layer, this.stalls);
  }

  stop(): void {
    this.stalls.stop();
    this.#admin?.close();
    this.#admin = null;
    this.server.stop();
    this.layer.stop();
  }
}
