/**
 * A lent listener (handoff mode): ferryd binds the `tcp://` listener as usual, then lends its
 * kernel socket to the listening app (`listener-lent`, fd role 'listener') instead of accepting on
 * it, so the app accepts at the kernel's speed with no message per connection. ferryd keeps a
 * descriptor of the listening socket (it ends when the listener goes: unlisten, the app's death)
 * and never polls it.
 *
 * Lent only where ferryd has nothing to decide per connection: inbound connections to a kernel
 * listener are not subject to rules (docs/internals.md, Trust model), so the one per-connection
 * decision is maxSessionsPerApp. It holds exactly through a window: the app may hold at most
 * `window` connections from the listener open at once (beyond, it holds them unread and asks; those
 * ferryd's answer does not cover are reset, as ferryd resets one it accepts at the limit), and
 * ferryd counts the larger of the window it last sent and the one the app says it
 * applies against the limit (`App.lentReserved`). The app reports after the fact (`accepts`,
 * absolute figures); ferryd moves the window as the app's open count moves.
 */
import type { Server } from 'node:net';
import { close, dup, FEATURE, type ListenerLent, type SessionUri } from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Listener } from '../app/listener-table.js';
import { listenTcp } from './tcp-kernel.js';
import type { TransportHost, TransportListener } from './transport.js';

/** Connections a lent listener may accept beyond those open before ferryd must answer. */
export const LENT_HEADROOM = 64;

/** The app's figures from its last `accepts` notice. */
export interface LentFigures {
  window: number;
  open: number;
  waiting: number;
  total: number;
  refused: number;
}

export class LentKernelListener implements TransportListener {
  readonly bound: SessionUri;
  readonly #host: TransportHost;
  readonly #app: App;
  /** ferryd's descriptor of the listening socket (-1 once closed). */
  #fd: number;
  #listener: Listener | null = null;
  /** The window last sent, and the one the app last said it applies. */
  #sent = 0;
  #applied = 0;
  #open = 0;
  #total = 0;
  #refused = 0;
  /** What this listener counts in app.lentReserved now. */
  #reserved = 0;
  /** Called once closed (the transport's set of lent listeners). */
  onClose: (() => void) | null = null;

  constructor(host: TransportHost, app: App, fd: number, bound: SessionUri) {
    this.#host = host;
    this.#app = app;
    this.#fd = fd;
    this.bound = bound;
  }

  /** In the table: lend the socket to the app with its first window. */
  start(l: Listener): null {
    this.#listener = l;
    this.#sent = this.#target();
    this.#account();
    // Sent before the listen reply (the SDK keeps it until the reply names the listener).
    this.#app.send(lentMessage(l.id, this.#sent, true), [this.#fd], 'soon');
    return null;
  }

  admitsCutThrough(): boolean {
    return true;
  }

  describe(): string[] {
    return ['ct', 'tcp-handoff'];
  }

  /** For `ferry show listeners`: the app's figures as it last reported them. */
  detail(): Record<string, number> {
    return { window: this.#sent, open: this.#open, accepted: this.#total, refused: this.#refused };
  }

  /** The app's `accepts` notice. Figures that go backwards (a confused app) are not taken. */
  accepts(f: LentFigures): void {
    if (this.#fd < 0) return;
    const l = this.#listener;
    if (f.total > this.#total) {
      const n = f.total - this.#total;
      this.#total = f.total;
      if (l) l.accepted += n;
      this.#host.counters.accepted += n;
      this.#host.counters.tcpAccepts += n;
    }
    if (f.refused > this.#refused) {
      this.#host.counters.refused += f.refused - this.#refused;
      this.#refused = f.refused;
    }
    this.#open = f.open;
    this.#applied = f.window;
    this.update(f.waiting);
  }

  /**
   * Moves the window when the app runs short, holds far more than it uses, or the limit moved; and
   * answers always when connections wait for room (`waiting`): those the window does not cover
   * then are reset by the app (the limit).
   */
  update(waiting = 0): void {
    const l = this.#listener;
    if (this.#fd < 0 || !l) return;
    const t = this.#target(waiting);
    const short = this.#sent - this.#open < LENT_HEADROOM / 2;
    const slack = this.#sent - this.#open > 2 * LENT_HEADROOM;
    const capped = t < this.#sent && t < this.#open + LENT_HEADROOM;
    if (waiting > 0 || (t !== this.#sent && (short || slack || capped))) {
      this.#sent = t;
      this.#app.send(lentMessage(l.id, t, false), [], 'soon');
    }
    this.#account();
  }

  /** The window to give: headroom above what is open, within the app's room under the limit. */
  #target(waiting = 0): number {
    const others = this.#host.sessionsHeld(this.#app) - this.#reserved;
    const room = this.#host.config.maxSessionsPerApp - others;
    return Math.max(0, Math.min(this.#open + waiting + LENT_HEADROOM, room));
  }

  #account(): void {
    const r = this.#fd < 0 ? 0 : Math.max(this.#sent, this.#applied, this.#open);
    this.#app.lentReserved += r - this.#reserved;
    this.#reserved = r;
  }

  close(): void {
    if (this.#fd < 0) return;
    close(this.#fd);
    this.#fd = -1;
    this.#account();
    this.onClose?.();
  }
}

/**
 * Whether a handoff listener of `app` is lent: the operator lends them (`tcpHandoffListeners`,
 * the default) and the app's SDK takes lent sockets. Nothing else about a connection to it would
 * need ferryd's decision: no rule applies to inbound connections to a kernel listener, and the
 * limit is kept by the window. (A rule on inbound sources, were one added, would have to make this
 * false for the listeners it covers.)
 */
export function lendable(host: TransportHost, app: App): boolean {
  return host.config.tcpHandoffListeners === 'lend' && (app.features & FEATURE.LENT_LISTENER) !== 0;
}

/**
 * Binds `uri` for `app` and takes the listening socket out of node's hands before any connection
 * is accepted (node's handle is closed in the turn the bind completed, before libuv polls it; our
 * duplicate keeps the socket listening). The caller starts it once it is in the table.
 */
export async function lendListener(
  host: TransportHost,
  app: App,
  uri: SessionUri,
): Promise<LentKernelListener> {
  // No connection reaches node's callback (closed below before any poll); reset one if it did.
  const server = await listenTcp(uri, (sock) => sock.resetAndDestroy(), false);
  const addr = server.address();
  const bound = { ...uri, port: typeof addr === 'object' && addr ? addr.port : uri.port };
  let fd: number;
  try {
    fd = dup(serverFd(server));
  } finally {
    server.close();
  }
  return new LentKernelListener(host, app, fd, bound);
}

function serverFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the kernel listener has no descriptor');
  return fd;
}

function lentMessage(listener: number, window: number, withFd: boolean): ListenerLent {
  return { t: 'listener-lent', id: 0, listener, window, fds: withFd ? ['listener'] : [] };
}
