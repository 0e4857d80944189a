/**
 * Notices apps that stopped reading what ferryd sends them, without ever waiting on them: ferryd's
 * control sends never block (a full socket queues in the channel, bounded), and event queue posts
 * never block (a full ring sets OVERFLOW). Every tick this looks at each app:
 * - its control channel: messages queued and none went out since the last tick;
 * - the event queues it consumes in its pair segments: OVERFLOW set and its head not moving.
 * An app seen stalled is counted; one stalled for `stallTimeoutMs`, or with more than
 * `maxCtrlBacklog` control messages queued, is disconnected (its sessions reset, like a death).
 */
import { probeEventQueue } from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { DaemonConfig } from '../config.js';
import type { SegmentManager } from '../segment/segment-manager.js';
import type { PolicyCounters } from './counters.js';

const TICK_MS = 100;

interface Watch {
  sent: number;
  /** Head of each consumed queue at the last tick, by segment id. */
  heads: Map<number, number>;
  stalledSince: number | null;
  reason: string;
}

export class StallMonitor {
  #config: DaemonConfig;
  #apps: ReadonlyMap<number, App>;
  #segments: SegmentManager;
  #counters: PolicyCounters;
  #log: (line: string) => void;
  #watch = new WeakMap<App, Watch>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    config: DaemonConfig,
    apps: ReadonlyMap<number, App>,
    segments: SegmentManager,
    counters: PolicyCounters,
    log: (line: string) => void,
  ) {
    this.#config = config;
    this.#apps = apps;
    this.#segments = segments;
    this.#counters = counters;
    this.#log = log;
  }

  start(): void {
    this.#timer = setInterval(() => this.tick(), TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** How long `app` has been stalled, in ms (0 when it reads). */
  stalledMs(app: App): number {
    const w = this.#watch.get(app);
    return w?.stalledSince ? Date.now() - w.stalledSince : 0;
  }

  tick(now = Date.now()): void {
    for (const app of [...this.#apps.values()]) {
      if (app.channel.closed) continue;
      let w = this.#watch.get(app);
      if (!w) {
        w = { sent: app.channel.stats.sent, heads: new Map(), stalledSince: null, reason: '' };
        this.#watch.set(app, w);
        continue;
      }
      const stats = app.channel.stats;
      if (stats.pending > this.#config.maxCtrlBacklog) {
        this.#disconnect(
          app,
          w,
          `${stats.pending} control messages queued (maxCtrlBacklog ${this.#config.maxCtrlBacklog})`,
        );
        continue;
      }
      const reason = this.#stallReason(app, w, stats.pending, stats.sent);
      w.sent = stats.sent;
      if (reason === null) {
        w.stalledSince = null;
        continue;
      }
      if (w.stalledSince === null) {
        // Not moving across a whole tick while ferryd retries every few ms: a stall, not a blip.
        w.stalledSince = now - TICK_MS;
        w.reason = reason;
        this.#counters.stalledApps++;
        this.#log(`app ${app.id} '${app.name}' is not reading: ${reason}`);
      }
      const limit = this.#config.stallTimeoutMs;
      if (limit > 0 && now - w.stalledSince >= limit) {
        this.#disconnect(app, w, `${w.reason} for ${now - w.stalledSince} ms (stallTimeoutMs ${limit})`);
      }
    }
  }

  #stallReason(app: App, w: Watch, pending: number, sent: number): string | null {
    let reason: string | null = null;
    if (pending > 0 && sent === w.sent) reason = `${pending} control messages waiting`;
    const seen = new Map<number, number>();
    for (const segId of app.segments) {
      const seg = this.#segments.get(segId);
      if (!seg) continue;
      const q = probeEventQueue(seg.segment.buffer, seg.appA === app.id ? seg.queueToA : seg.queueToB);
      seen.set(segId, q.head);
      if (q.overflow && w.heads.get(segId) === q.head && reason === null) {
        reason = `event queue of segment ${segId} full and not drained`;
      }
    }
    w.heads = seen;
    return reason;
  }

  #disconnect(app: App, w: Watch, why: string): void {
    if (w.stalledSince === null) this.#counters.stalledApps++;
    this.#counters.stalledDisconnected++;
    this.#log(`app ${app.id} '${app.name}' disconnected: ${why}`);
    app.channel.close();
  }
}
