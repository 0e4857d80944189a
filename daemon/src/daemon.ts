/** The composition root: builds ferryd's layers from a configuration and starts them. */
import type { Server } from 'node:net';
import { CtrlServer } from './api/ctrl-server.js';
import { type DaemonConfig, validateConfig } from './config.js';
import { startAdminServer } from './inspect/admin-server.js';
import { type ShowTopic, snapshot } from './inspect/snapshot.js';
import { SessionLayer } from './session/session-layer.js';

export class Daemon {
  readonly config: DaemonConfig;
  readonly server: CtrlServer;
  readonly layer: SessionLayer;
  #admin: Server | null = null;

  constructor(config: DaemonConfig, log: (line: string) => void = () => {}) {
    this.config = validateConfig(config);
    this.server = new CtrlServer(this.config, log);
    this.layer = new SessionLayer(this.config, this.server.apps, log);
  }

  start(): this {
    this.server.start(this.layer);
    this.#admin = startAdminServer(this.config.socket, this.config.socketMode, (t) => this.show(t));
    return this;
  }

  show(topic: ShowTopic): unknown {
    return snapshot(topic, this.server, this.layer);
  }

  stop(): void {
    this.#admin?.close();
    this.#admin = null;
    this.server.stop();
    this.layer.stop();
  }
}
