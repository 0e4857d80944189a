/**
 * The app control socket: accepts SEQPACKET connections, runs the HELLO exchange, then hands each
 * app's requests to the handlers. One misbehaving app costs only its own channel.
 */
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type AppRequest,
  accept,
  bindUnix,
  CtrlChannel,
  type CtrlMessage,
  close,
  connectUnix,
  Doorbell,
  FdPoller,
  FEATURE,
  type FerryError,
  ferryError,
  type Hello,
  listen,
  negotiate,
  PROTO_VERSION,
  peerCredentials,
  statusOf,
  unixSocket,
} from '@ferry/sdk/internal';
import { App } from '../app/app.js';
import type { DaemonConfig } from '../config.js';
import type { Logger } from '../log/logger.js';
import { Policy } from '../policy/policy.js';
import type { SessionLayer } from '../session/session-layer.js';
import { fdsOf } from '../session/wire.js';
import { handleRequest } from './handlers.js';

/** Bad messages an app may send before ferryd closes its channel. */
const MAX_BAD_MESSAGES = 64;
/**
 * Control messages ferryd may queue for one app: only a memory backstop. An app with many
 * sessions gets one notice per session in one burst when its peer dies; the stall monitor
 * (policy/stall-monitor.ts) disconnects an app whose queue is over `maxCtrlBacklog` (at most this)
 * and not moving.
 */
const MAX_QUEUED_PER_APP = 1_000_000;
/** How long a new connection may take to send HELLO. */
const HELLO_TIMEOUT_MS = 5000;
const SUPPORTED_FEATURES =
  FEATURE.CUT_THROUGH |
  FEATURE.HALF_CLOSE |
  FEATURE.EVENT_QUEUE |
  FEATURE.DATAGRAM |
  FEATURE.FAST_CONNECT |
  FEATURE.NOTICE_BATCH |
  FEATURE.LENT_LISTENER |
  FEATURE.LENT_SOCKETS;

export interface CtrlServerCounters {
  accepted: number;
  helloRejected: number;
  /** Connections closed for not sending HELLO in time. */
  helloTimeouts: number;
  /** Apps that attached again after losing a ferryd (hello.reattach > 0). */
  reattached: number;
  badMessages: number;
  channelsClosed: number;
  /** `notices` messages read, and the session notices they carried (NOTICE_BATCH). */
  noticeBatches: number;
  noticesBatched: number;
}

export class CtrlServer {
  readonly apps = new Map<number, App>();
  readonly counters: CtrlServerCounters = {
    accepted: 0,
    helloRejected: 0,
    helloTimeouts: 0,
    reattached: 0,
    badMessages: 0,
    channelsClosed: 0,
    noticeBatches: 0,
    noticesBatched: 0,
  };
  /** Channels that connected but have not finished HELLO. */
  readonly pending = new Set<CtrlChannel>();
  #config: DaemonConfig;
  #layer: SessionLayer | null = null;
  #poller = new FdPoller();
  #fd = -1;
  #nextApp = 1;
  #stopping = false;
  #log: Logger;
  readonly policy: Policy;

  constructor(config: DaemonConfig, log: Logger, policy: Policy = new Policy(config)) {
    this.#config = config;
    this.#log = log;
    this.policy = policy;
  }

  start(layer: SessionLayer): void {
    this.#layer = layer;
    const path = this.#config.socket;
    if (!path.startsWith('@')) prepareSocketPath(path, this.#config.socketMode);
    this.#fd = unixSocket('seqpacket', { nonblock: true });
    bindUnix(this.#fd, path);
    if (!path.startsWith('@')) chmodSync(path, this.#config.socketMode);
    listen(this.#fd, 512);
    this.#poller.watch(this.#fd, { readable: true }, () => this.#acceptAll());
  }

  stop(): void {
    // Leaving is not the apps' death: their cut-through sessions go on without ferryd (as after
    // a crash), so closing their channels here must not reset any peer.
    this.#stopping = true;
    if (this.#fd >= 0) {
      this.#poller.unwatch(this.#fd);
      close(this.#fd);
      this.#fd = -1;
      if (!this.#config.socket.startsWith('@')) {
        try {
          unlinkSync(this.#config.socket);
        } catch {}
      }
    }
    for (const ch of this.pending) ch.close();
    for (const app of [...this.apps.values()]) app.channel.close();
    this.#poller.close();
  }

  #acceptAll(): void {
    for (;;) {
      let fd: number;
      try {
        fd = accept(this.#fd, { nonblock: true });
      } catch (err) {
        this.#log.warn(`accept failed: ${(err as Error).message}`);
        return;
      }
      if (fd < 0) return;
      this.counters.accepted++;
      // Connections that have not said HELLO count against maxApps too, or holding many open
      // would be a way around it.
      if (this.pending.size >= this.#config.maxApps) {
        this.policy.counters.limitHits.maxApps++;
        close(fd);
        continue;
      }
      this.#onConnection(fd);
    }
  }

  #onConnection(fd: number): void {
    let app: App | null = null;
    const ch: CtrlChannel = new CtrlChannel(
      fd,
      {
        onMessage: (msg, fds) => {
          if (app) {
            // Only `adopt` passes an fd on (a handed socket coming back); every other is closed.
            const kept =
              msg.t === 'adopt' && fds.length === 1 && msg.fds[0] === 'socket' ? (fds[0] ?? -1) : -1;
            for (const extra of fds) if (extra !== kept) close(extra);
            this.#onRequest(app, msg, kept);
            return;
          }
          app = this.#onHello(ch, msg, fds);
          // The app can die during HELLO: switching to wake pipes drains the socket, sees EOF and
          // closes the channel before `app` is set, so onClose could not let it go.
          if (app && ch.closed) this.#onAppGone(app);
        },
        onBadMessage: (err) => {
          this.counters.badMessages++;
          ch.send({ t: 'error', id: 0, st: statusOf(err.code), err: err.message });
          if (app && ++app.badMessages > MAX_BAD_MESSAGES) ch.close();
          if (!app) ch.close();
        },
        onClose: () => {
          this.counters.channelsClosed++;
          this.pending.delete(ch);
          if (app) this.#onAppGone(app);
        },
      },
      { maxPending: MAX_QUEUED_PER_APP },
    );
    this.pending.add(ch);
    ch.watchWith(this.#poller);
    // A connection that never says HELLO is closed: it holds an fd and a maxApps slot.
    setTimeout(() => {
      if (this.pending.has(ch) && !app) {
        this.counters.helloTimeouts++;
        ch.close();
      }
    }, HELLO_TIMEOUT_MS).unref();
  }

  #onHello(ch: CtrlChannel, msg: CtrlMessage, fds: number[]): App | null {
    // The app sleeps on its wake pipe until the reply: a refusal must ring it too, or the app
    // hears nothing until its request times out.
    const wakeFd = msg.t === 'hello' ? fds[(msg as Hello).fds.indexOf('wake')] : undefined;
    const reject = (err: FerryError): null => {
      for (const fd of fds) if (fd !== wakeFd) close(fd);
      if (wakeFd !== undefined) ch.setPeerWakeFd(wakeFd);
      this.counters.helloRejected++;
      ch.send({
        t: 'hello-reply',
        id: msg.id,
        st: statusOf(err.code),
        err: err.message,
        version: PROTO_VERSION,
        features: 0,
        appId: 0,
        fds: [],
      });
      ch.close();
      return null;
    };
    if (msg.t !== 'hello') return reject(ferryError('ERR_FERRY_NOT_ATTACHED', `'${msg.t}' before hello`));
    const hello = msg as Hello;
    const version = negotiate(hello.version, hello.minVersion);
    if (version === null) {
      return reject(
        ferryError(
          'ERR_FERRY_PROTO_VERSION',
          `app speaks ${hello.minVersion}..${hello.version}, ferryd ${PROTO_VERSION}`,
        ),
      );
    }
    const wakeIdx = hello.fds.indexOf('wake');
    const bellIdx = hello.fds.indexOf('doorbell');
    const appWake = fds[wakeIdx];
    const doorbell = fds[bellIdx];
    if (
      wakeIdx < 0 ||
      bellIdx < 0 ||
      appWake === undefined ||
      doorbell === undefined ||
      fds.length !== hello.fds.length
    ) {
      return reject(
        ferryError(
          'ERR_FERRY_PROTO_MALFORMED',
          'hello must carry exactly the wake and doorbell fds it names',
        ),
      );
    }
    const namespace = hello.namespace || 'default';
    const peer = peerCredentials(ch.fd);
    const denied = this.policy.checkAttach(namespace, hello.token, peer);
    if (denied) {
      // The token is never logged; the name the app gave and its pid are.
      this.#log.warn(
        `attach refused: ${denied.message} (app ${JSON.stringify(hello.name)}, pid ${peer.pid})`,
      );
      return reject(denied);
    }
    if (this.apps.size >= this.#config.maxApps) {
      this.policy.counters.limitHits.maxApps++;
      return reject(ferryError('ERR_FERRY_LIMIT', `maxApps (${this.#config.maxApps}) apps are attached`));
    }
    const app = new App(this.#nextApp++, hello.name, namespace, peer, ch, doorbell);
    app.features = hello.features & SUPPORTED_FEATURES;
    this.apps.set(app.id, app);
    this.pending.delete(ch);
    if ((hello.reattach ?? 0) > 0) this.counters.reattached++;

    const ourWake = Doorbell.create();
    ch.useWakePipes(ourWake, appWake);
    ch.send(
      {
        t: 'hello-reply',
        id: hello.id,
        st: 0,
        err: '',
        version,
        features: app.features,
        appId: app.id,
        fds: ['wake'],
      },
      [ourWake.ringFd],
    );
    // The app now holds the only write end: our read end sees 'end' the moment it dies.
    ourWake.dropRingFd();
    this.#log.info(
      `app ${app.id} '${app.name}' attached (pid ${peer.pid}, uid ${peer.uid}, ns ${app.namespace})`,
    );
    return app;
  }

  #onRequest(app: App, msg: CtrlMessage, socketFd = -1): void {
    const layer = this.#layer;
    if (!layer) {
      if (socketFd >= 0) close(socketFd);
      return;
    }
    if (msg.t === 'detach') {
      app.send({ t: 'status', id: msg.id, st: 0, err: '' });
      app.channel.close();
      return;
    }
    if (msg.t === 'notices') {
      this.counters.noticeBatches++;
      this.counters.noticesBatched += msg.ops.length >> 1;
    }
    // The reply goes out before the work the handler left for after it (SessionLayer.afterReply;
    // a reply that comes later, from a promise, goes after it: only replies sent now need this).
    layer.beginRequest();
    try {
      const reply = isAppRequest(msg) ? handleRequest(layer, app, msg, socketFd) : null;
      if (reply instanceof Promise) {
        // Answered later (kernel bind, TCP connect): only if the app is still there to hear it.
        void reply.then((r) => {
          if (this.apps.get(app.id) === app) this.#reply(app, msg, r);
        });
        return;
      }
      if (reply) this.#reply(app, msg, reply);
      else
        app.send({
          t: 'error',
          id: msg.id,
          st: statusOf('ERR_FERRY_PROTO_UNKNOWN_MSG'),
          err: `'${msg.t}' is not a request`,
        });
    } finally {
      layer.endRequest();
    }
  }

  #reply(app: App, msg: CtrlMessage, reply: CtrlMessage): void {
    // id 0 marks a one-way notice: success goes unanswered; a failure is still reported.
    if (msg.id === 0 && 'st' in reply && reply.st === 0) return;
    app.send(reply, fdsOf(reply), msg.t === 'connect' ? 'soon' : 'now');
  }

  #onAppGone(app: App): void {
    if (!this.apps.delete(app.id)) return;
    if (!this.#stopping) this.#layer?.appGone(app);
    close(app.doorbellFd);
    this.#log.info(`app ${app.id} '${app.name}' gone`);
  }
}

const REQUESTS = new Set<string>([
  'hello',
  'detach',
  'listen',
  'unlisten',
  'connect',
  'shutdown',
  'close',
  'reset',
  'segment-released',
  'ping',
  'dgram-bind',
  'dgram-connect',
  'adopt',
  'fast-open',
  'pool-release',
  'notices',
  'accepts',
]);

function isAppRequest(msg: CtrlMessage): msg is AppRequest {
  return REQUESTS.has(msg.t);
}

/** Creates the socket's directory and removes a stale socket file no one listens on. */
function prepareSocketPath(path: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: mode | 0o110 });
  const probe = unixSocket('seqpacket', { nonblock: true });
  try {
    connectUnix(probe, path);
    throw ferryError('EADDRINUSE', `${path}: another ferryd is listening`);
  } catch (err) {
    const code = (err as FerryError).code;
    if (code === 'ECONNREFUSED') unlinkSync(path);
    else if (code !== 'ENOENT') throw err;
  } finally {
    close(probe);
  }
}
