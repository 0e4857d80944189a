/**
 * The `tcp://` transport: ferryd is the other end of the app's fifo pair and a pump (tcp-pump.ts)
 * moves the bytes to and from a kernel socket. Listens bind a kernel listener beside the
 * cut-through entry; connects no local listener takes go out through the kernel.
 */
import { isIPv4, type Server, type Socket } from 'node:net';
import { FEATURE, FerryError, isNumericAddress, type SessionUri, type TlsOptions } from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Listener } from '../app/listener-table.js';
import { fifoSizeFor } from '../config.js';
import type { Session } from '../session/session.js';
import { directAccept } from './direct-read.js';
import {
  acceptBare,
  adoptHanded,
  ConnectWaiter,
  connectHanded,
  HANDOFF_TRANSPORT,
  type HandedSet,
  handAccept,
  handAcceptedFd,
  handConnect,
  recheckHanded,
} from './tcp-handoff.js';
import { bindHost, connectTcp, listenTcp, tcpUri } from './tcp-kernel.js';
import { type LentKernelListener, lendable, lendListener } from './tcp-lent-listener.js';
import { LentSockets } from './tcp-lent-sockets.js';
import { TcpPump } from './tcp-pump.js';
import type {
  ConnectRequest,
  ListenRequest,
  Opened,
  Transport,
  TransportHost,
  TransportListener,
} from './transport.js';

/** A kernel listener serving one table listener; `onSocket` gets its connections once started. */
export class KernelListener implements TransportListener {
  readonly bound: SessionUri;
  readonly #server: Server;
  readonly #describe: string[];
  #listener: Listener | null = null;
  #admits: (named: SessionUri, opts: TlsOptions | undefined) => boolean;

  constructor(
    server: Server,
    uri: SessionUri,
    describe: string[],
    admits: (named: SessionUri, opts: TlsOptions | undefined) => boolean = () => true,
  ) {
    this.#server = server;
    const addr = server.address();
    this.bound = { ...uri, port: typeof addr === 'object' && addr ? addr.port : uri.port };
    this.#describe = describe;
    this.#admits = admits;
  }

  /** The table listener connections are accepted for; 0 until started. */
  get listenerId(): number {
    return this.#listener?.id ?? 0;
  }

  start(l: Listener): null {
    this.#listener = l;
    return null;
  }

  admitsCutThrough(named: SessionUri, opts: TlsOptions | undefined): boolean {
    return this.#admits(named, opts);
  }

  describe(): string[] {
    return this.#describe;
  }

  close(): void {
    this.#server.close();
  }
}

/**
 * Places a session between `app` and ferryd and starts the pump that serves `socket` (a TLS socket
 * over `raw`, or `raw` itself). Throws (nothing placed) when there is no room for its fifo pair.
 */
export function carryStream(
  host: TransportHost,
  app: App,
  socket: Socket,
  raw: Socket,
  fifos: { tx: number; rx: number },
  local: string,
  remote: string,
  listenerId: number,
): Session {
  const transport = socket === raw ? 'tcp' : 'tls';
  const { session: s, events, daemon } = host.place({ app, local, remote, listenerId, transport, fifos });
  if (!daemon) throw new FerryError('ERR_FERRY_SESSION_STATE', `session ${s.id} has no fifo pair`);
  const pump = new TcpPump(
    socket,
    daemon.seg,
    daemon.ref,
    {
      onRemoteFin: () => events.remoteFin(),
      onAppFin: () => events.appFin(),
      onRemoteReset: (err) => {
        host.counters.resets++;
        events.remoteReset(err);
      },
      onDone: () => events.done(),
    },
    raw,
  );
  s.end = pump;
  pump.start();
  return s;
}

/** A kernel connection to one of the apps' listeners: a session whose other end is ferryd. */
export function acceptStream(
  host: TransportHost,
  listenerId: number,
  raw: Socket,
  socket: Socket = raw,
): void {
  const l = host.listeners.get(listenerId);
  const app = l ? host.app(l.appId) : undefined;
  const reset = () => {
    if (!raw.destroyed) raw.resetAndDestroy();
    if (socket !== raw) socket.destroy();
  };
  if (!l || !app || raw.remoteAddress === undefined) {
    reset();
    return;
  }
  if (host.atSessionLimit(app, null)) {
    host.counters.refused++;
    reset();
    return;
  }
  // A listener bound to one IPv4 address accepts on that address: no getsockname() needed.
  const bound = bindHost(l.uri.host);
  const local =
    bound !== '0.0.0.0' && isIPv4(bound)
      ? tcpUri(bound, l.uri.port, l.uri.scheme)
      : tcpUri(raw.localAddress, raw.localPort, l.uri.scheme);
  const remote = tcpUri(raw.remoteAddress, raw.remotePort, l.uri.scheme);
  let s: Session;
  try {
    const size = host.config.defaultFifoSizeBytes;
    s = carryStream(host, app, socket, raw, { tx: size, rx: size }, local, remote, l.id);
  } catch (err) {
    host.log.warn(`tcp accept on listener ${l.id} dropped: ${(err as Error).message}`);
    reset();
    return;
  }
  host.counters.tcpAccepts++;
  host.accepted(l, app, { session: s });
}

/**
 * Opens the kernel connection of a stream connect, counting refusals; `secure` (TLS) may wrap the
 * connected socket. Resolves to the session placed, or rejects with nothing left behind.
 */
export async function connectStream(
  host: TransportHost,
  c: ConnectRequest,
  secure?: (raw: Socket, started: number) => Promise<Socket>,
  handed?: HandedSet,
): Promise<Opened> {
  const { app: client, req, target: uri } = c;
  host.checkSessionLimit(client);
  const started = Date.now();
  let socket: Socket;
  try {
    socket = await connectTcp(uri, host.config.tcpConnectTimeoutMs, !handed && uri.scheme === 'tcp');
  } catch (err) {
    if (err instanceof FerryError && err.code === 'ECONNREFUSED') host.counters.refused++;
    throw err;
  }
  if (handed) {
    const opened = handConnect(host, handed, c, socket);
    host.counters.tcpConnects++;
    return opened;
  }
  const raw = socket;
  if (secure && host.attached(client)) socket = await secure(raw, started);
  if (!host.attached(client)) {
    raw.resetAndDestroy();
    if (socket !== raw) socket.destroy();
    throw new FerryError('ERR_FERRY_NOT_ATTACHED', 'app went away while connecting');
  }
  const local = tcpUri(raw.localAddress, raw.localPort, uri.scheme);
  // The peer is the address we connected to: a numeric IPv4 target needs no getpeername().
  const remote = isIPv4(uri.host)
    ? tcpUri(uri.host, uri.port, uri.scheme)
    : tcpUri(raw.remoteAddress, raw.remotePort, uri.scheme);
  let s: Session;
  try {
    const fifos = {
      tx: fifoSizeFor(host.config, req.txFifoSize),
      rx: fifoSizeFor(host.config, req.rxFifoSize),
    };
    s = carryStream(host, client, socket, raw, fifos, local, remote, 0);
  } catch (err) {
    raw.resetAndDestroy();
    if (socket !== raw) socket.destroy();
    throw err;
  }
  host.counters.tcpConnects++;
  return { session: s };
}

/**
 * `tcp://` in two modes, chosen per listen and connect (`handoff`): relay (ferryd moves the bytes
 * between the app's fifos and the kernel socket) and handoff (the app gets the kernel socket:
 * tcp-handoff.ts).
 */
export class TcpTransport implements Transport {
  readonly scheme = 'tcp';
  readonly kind = 'stream';
  readonly tlsOptions = false;
  readonly #host: TransportHost;
  readonly #handed: HandedSet = new Set();
  /** Listeners lent to their apps: their windows move when the limits do. */
  readonly #lent = new Set<LentKernelListener>();
  readonly #sockets: LentSockets;
  readonly #waiter = new ConnectWaiter();

  constructor(host: TransportHost) {
    this.#host = host;
    this.#sockets = new LentSockets(host, this.#handed);
    const direct = directAccept();
    if (!direct.on) host.log.info(`accepted tcp connections take the copying path: ${direct.why}`);
  }

  async listen(req: ListenRequest): Promise<TransportListener> {
    let kl: KernelListener | null = null;
    const host = this.#host;
    if (req.handoff && host.config.tcpHandoff === 'allow' && lendable(host, req.app)) {
      const lent = await lendListener(host, req.app, req.uri);
      this.#lent.add(lent);
      lent.onClose = () => this.#lent.delete(lent);
      return lent;
    }
    if (req.handoff && host.config.tcpHandoff === 'allow') {
      const server = await listenTcp(
        req.uri,
        (sock) => handAccept(host, this.#handed, kl?.listenerId ?? 0, sock),
        false,
      );
      // Accepted descriptors go to the app without a node:net Socket each (where node allows).
      acceptBare(server, (fd, peer) => handAcceptedFd(host, this.#handed, kl?.listenerId ?? 0, fd, peer));
      kl = new KernelListener(server, req.uri, ['ct', HANDOFF_TRANSPORT]);
      return kl;
    }
    const server = await listenTcp(req.uri, (sock) => acceptStream(host, kl?.listenerId ?? 0, sock));
    kl = new KernelListener(server, req.uri, ['ct', 'tcp']);
    return kl;
  }

  connect(c: ConnectRequest): Promise<Opened> {
    const host = this.#host;
    const handoff = c.req.handoff === true && host.config.tcpHandoff === 'allow';
    if (handoff && isNumericAddress(c.target.host)) return this.#connectBare(c);
    return connectStream(host, c, undefined, handoff ? this.#handed : undefined);
  }

  /** A handoff connect to a numeric address: a bare socket, no node:net (tcp-handoff.ts). */
  async #connectBare(c: ConnectRequest): Promise<Opened> {
    const host = this.#host;
    host.checkSessionLimit(c.app);
    let opened: Opened;
    try {
      opened = await connectHanded(host, this.#handed, c, this.#waiter);
    } catch (err) {
      if (err instanceof FerryError && err.code === 'ECONNREFUSED') host.counters.refused++;
      throw err;
    }
    host.counters.tcpConnects++;
    // Its next connects there may go without asking: lend sockets for the URI it named.
    if ((c.app.features & FEATURE.LENT_SOCKETS) !== 0) this.#sockets.offer(c.app, c.req.uri, c.target);
    return opened;
  }

  fastOpen(app: App, session: number): boolean {
    return this.#sockets.open(app, session);
  }

  dropLent(app: App, session: number): boolean {
    return this.#sockets.drop(app, session);
  }

  poolRelease(app: App, pool: number): boolean {
    return this.#sockets.release(app, pool);
  }

  appGone(app: App): void {
    this.#sockets.appGone(app);
  }

  stop(): void {
    this.#sockets.stop();
  }

  adopt(app: App, listenerId: number, fd: number): Opened {
    return adoptHanded(this.#host, this.#handed, app, listenerId, fd);
  }

  policyChanged(): void {
    for (const l of this.#lent) l.update();
    this.#sockets.revokeAll();
    void recheckHanded(this.#host, this.#handed).then((n) => {
      if (n > 0) this.#host.log.info(`reload: ${n} handed tcp connection(s) now denied, reset`);
    });
  }

  stats(): Record<string, number> {
    return {
      handed: this.#handed.size,
      lentListeners: this.#lent.size,
      socketPools: this.#sockets.size,
      lentSocketsUsed: this.#sockets.used,
      lentSocketsMisused: this.#sockets.misused,
    };
  }
}
