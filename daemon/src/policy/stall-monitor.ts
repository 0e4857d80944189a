/**
 * Notices apps that stopped reading what ferryd sends them, without ever waiting on them: ferryd's
 * control sends never block (a full socket queues in the channel, bounded), and event queue posts
 * never block (a full ring sets OVERFLOW). Every tick this looks at each app:
 * - its control channel: messages queued and none went out since the last tick;
 * - the event queues it consumes in its pair segments: OVERFLOW set and its head not moving.
 * An app seen stalled is counted; one stalled for `stallTimeoutMs`, or with more than
 * `maxCtrlBacklog` control messages queued and none sent for half a second, is disconnected (its
 * sessions reset, like a death).
 */

import { probeEventQueue } from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { DaemonConfig } from '../config.js';
import type { Logger } from '../log/logger.js';
import type { SegmentManager } from '../segment/segment-manager.js';
import type { PolicyCounters } from './counters.js';

const TICK_MS = 100;
// Time is counted in ticks, not read from the clock: if ferryd itself was held up (a long GC, a
// starved VM), it sent nothing either, and that must not count against the app.
/** How long an app reads nothing before it counts as stalled. */
const NOTICE_MS = 1000;
/** How long an app may read nothing with more than maxCtrlBacklog messages queued for it. */
const BACKLOG_GRACE_MS = 500;

interface Watch {
  sent: number;
  /** Head of each consumed queue at the last tick, by segment id. */
  heads: Map<number, number>;
  /** Consecutive ticks the app read nothing (0: it reads). */
  stalledTicks: number;
  reason: string;
  /** Counted in stalledApps for the current stall. */
  counted: boolean;
  /** Consecutive ticks with more than maxCtrlBacklog messages waiting and none leaving. */
  overTicks: number;
}

export class StallMonitor {
  #config: DaemonConfig;
  #apps: ReadonlyMap<number, App>;
  #segments: SegmentManager;
  #counters: PolicyCounters;
  #log: Logger;
  #watch = new WeakMap<App, Watch>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    config: DaemonConfig,
    apps: ReadonlyMap<number, App>,
    segments: SegmentManager,
    counters: PolicyCounters,
    log: Logger,
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

  /** How long `app` has been stalled, in ms (0 when it reads or has not been counted yet). */
  stalledMs(app: App): number {
    const w = this.#watch.get(app);
    return w?.counted ? w.stalledTicks * TICK_MS : 0;
  }

  tick(): void {
    for (const app of [...this.#apps.values()]) {
      if (app.channel.closed) continue;
      let w = this.#watch.get(app);
      if (!w) {
        w = {
          sent: app.channel.stats.sent,
          heads: new Map(),
          stalledTicks: 0,
          reason: '',
          counted: false,
          overTicks: 0,
        };
        this.#watch.set(app, w);
        continue;
      }
      const stats = app.channel.stats;
      // A burst (an app's peer died: one session-reset per session) may queue many notices for an
      // app that reads them fine: over the bound only counts when nothing left for a while.
      const over = stats.pending > this.#config.maxCtrlBacklog && stats.sent === w.sent;
      w.overTicks = over ? w.overTicks + 1 : 0;
      if (w.overTicks * TICK_MS >= BACKLOG_GRACE_MS) {
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
        w.stalledTicks = 0;
        continue;
      }
      if (w.stalledTicks === 0) {
        w.reason = reason;
        w.counted = false;
      }
      w.stalledTicks++;
      const stalledMs = w.stalledTicks * TICK_MS;
      const limit = this.#config.stallTimeoutMs;
      // A busy app (a burst of notices to handle) can miss a tick; one that reads nothing for a
      // second, or for the whole timeout when that is shorter, is stalled.
      const notice = limit > 0 ? Math.min(limit, NOTICE_MS) : NOTICE_MS;
      if (!w.counted && stalledMs >= notice) {
        w.counted = true;
        this.#counters.stalledApps++;
        this.#log.warn(`app ${app.id} ${JSON.stringify(app.name)} is not reading: ${w.reason}`);
      }
      if (limit > 0 && stalledMs >= limit) {
        this.#disconnect(app, w, `${w.reason} for ${stalledMs} ms (stallTimeoutMs ${limit})`);
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
      const off = seg.appA === app.id ? seg.queueToA : seg.queueToB;
      const win = seg.queueHeader(off);
      const q = probeEventQueue(win.buffer, off - win.base);
      seen.set(segId, q.head);
      if (q.overflow && w.heads.get(segId) === q.head && reason === null) {
        reason = `event queue of segment ${segId} full and not drained`;
      }
    }
    w.heads = seen;
    return reason;
  }

  #disconnect(app: App, w: Watch, why: string): void {
    if (!w.counted) this.#counters.stalledApps++;
    this.#counters.stalledDisconnected++;
    this.#log.warn(`app ${app.id} ${JSON.stringify(app.name)} disconnected: ${why}`);
    app.channel.close();
  }
}
