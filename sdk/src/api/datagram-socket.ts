/**
 * DatagramSocket: `udp://` in the shape of node:dgram's Socket. Datagrams to a local endpoint go
 * app to app through a cut-through fifo pair (made on first use, by ferryd); all others go through
 * the endpoint's relay session to ferryd, which sends them with node:dgram from the bound address
 * and relays what that kernel socket receives. Boundaries are kept on every path: a datagram is one
 * frame in a fifo, written whole or not at all.
 *
 * Across a ferryd restart the socket stays open: cut-through pairs go on (app-to-app memory), the
 * relay and the endpoint die with ferryd ('ferryd-lost'; sends that need ferryd fail with
 * ERR_FERRY_DAEMON_LOST), and once the attachment is back the socket binds the same address again
 * ('reattached'). If that fails, or the attachment gives up, it emits 'error' and closes.
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import type { Attachment } from '../app/attachment.js';
import { DatagramChannel, type DatagramSink } from '../app/datagram-channel.js';
import {
  endDatagramChannel,
  noticeSession,
  requestDgramBind,
  requestDgramConnect,
} from '../app/session-control.js';
import { type FerryError, ferryError } from '../errors.js';
import { type Accepted, FEATURE } from '../proto/ctrl/messages.js';
import {
  DGRAM_MAX_PAYLOAD,
  type DgramAddress,
  type DgramFamily,
  dgramFamilyOf,
  formatIPv6,
  parseIPv4,
  parseIPv6,
} from '../proto/datagram-frame.js';
import { formatUri, parseUri } from '../proto/uri.js';
import { getAttachment } from './attachments.js';
import type { AttachmentOptions } from './options.js';

export interface DatagramSocketOptions extends AttachmentOptions {
  /** Address family, as node:dgram's `type`. Default: 'udp6' when bound to an IPv6 address, else 'udp4'. */
  type?: 'udp4' | 'udp6';
  /** Fifo sizes in bytes for the relay and for cut-through pairs (rounded up to a power of two by
   *  ferryd; 0 or unset = its default, 1 MiB). A datagram larger than a fifo fails with EMSGSIZE. */
  rxFifoSize?: number;
  txFifoSize?: number;
  /** Bytes of datagrams that may wait for room in a full fifo (the send buffer); sends beyond it
   *  fail with ENOBUFS. Default 1 MiB. */
  sendQueueBytes?: number;
  /** Most cut-through pairs this socket asks for (one per local peer it sends to first); further
   *  local destinations go through ferryd's relay and the kernel instead. Default 256. Pairs other
   *  sockets make with this one are not counted. */
  maxPeerPairs?: number;
}

export interface BindOptions {
  uri?: string;
  port?: number;
  address?: string;
}

/** As node:dgram's rinfo. */
export interface RemoteInfo {
  address: string;
  family: DgramFamily;
  port: number;
  size: number;
}

type SendCallback = (err: Error | null, bytes: number) => void;
type Payload = string | Uint8Array | readonly (string | Uint8Array)[];

interface Outgoing {
  payload: Uint8Array;
  to: DgramAddress;
  cb: SendCallback | undefined;
}

/** Remembered "not local" destinations, at most this many (then forgotten all at once). */
const MAX_REMOTE_ROUTES = 4096;

/** One 'accepted' listener per attachment, routing by endpoint (no listener per socket). */
const routers = new WeakMap<Attachment, Map<number, DatagramSocket>>();

function routeAccepted(att: Attachment): Map<number, DatagramSocket> {
  let table = routers.get(att);
  if (!table) {
    const t = new Map<number, DatagramSocket>();
    routers.set(att, t);
    att.on('accepted', (msg: Accepted) => t.get(msg.listener)?._accepted(msg));
    table = t;
  }
  return table;
}

/** Errors that mean "ferryd was away": to a send without a callback, a lost datagram, not a crash. */
function isLoss(err: Error): boolean {
  const code = (err as FerryError).code;
  return code === 'ERR_FERRY_DAEMON_LOST' || code === 'ERR_FERRY_DAEMON_UNREACHABLE' || code === 'ENOBUFS';
}

/** One text per address (`127.000.0.1` is `127.0.0.1`, `::0001` is `::1`): routes are keyed by it. */
function canonicalIp(h: string, family: DgramFamily): string {
  if (family === 'IPv6') return formatIPv6(parseIPv6(h) as Uint8Array);
  return (parseIPv4(h) as Uint8Array).join('.');
}

function keyOf(a: DgramAddress): string {
  return `${a.address}|${a.port}`;
}

function toBuffer(p: Payload): Uint8Array {
  if (typeof p === 'string') return Buffer.from(p);
  if (p instanceof Uint8Array) return p;
  if (Array.isArray(p)) return Buffer.concat(p.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
  throw ferryError('ERR_INVALID_ARG_TYPE', 'a datagram is a string, a Uint8Array or an array of them');
}

function addressOfUri(uri: string): DgramAddress {
  const u = parseUri(uri);
  return { address: u.host, port: u.port, family: u.host.includes(':') ? 'IPv6' : 'IPv4' };
}

export class DatagramSocket extends EventEmitter implements DatagramSink {
  readonly type: 'udp4' | 'udp6' | undefined;
  #opts: DatagramSocketOptions;
  #state: 'idle' | 'binding' | 'bound' | 'closed' = 'idle';
  #bound: Promise<void> | null = null;
  #att: Attachment | null = null;
  #endpoint = 0;
  #local: DgramAddress | null = null;
  #relay: DatagramChannel | null = null;
  #channels = new Set<DatagramChannel>();
  /** Cut-through channel per local peer address. */
  #peers = new Map<string, DatagramChannel>();
  /** Destinations ferryd said are not local: through the relay. */
  #remote = new Set<string>();
  /** Datagrams waiting for ferryd's answer on where a destination is. */
  #lookups = new Map<string, Outgoing[]>();
  /** Datagrams waiting for room in a channel's tx fifo, in order. */
  #waiting = new Map<DatagramChannel, { out: Outgoing; to: DgramAddress | null }[]>();
  #queuedBytes = 0;
  #connected: DgramAddress | null = null;
  #connecting = false;
  #refed = true;
  #holding = false;
  /** Sends dropped because the send queue was full and no callback was given. */
  droppedSends = 0;

  constructor(opts: DatagramSocketOptions = {}) {
    super();
    this.#opts = opts;
    this.type = opts.type;
  }

  // ---- binding ----

  /**
   * Binds a datagram endpoint: `bind()`, `bind(port[, address][, cb])`, `bind({ port, address })`,
   * or `bind('udp://ADDR:PORT')`. Emits 'listening'.
   */
  bind(
    target?: string | number | BindOptions | (() => void),
    addressOrCb?: string | (() => void),
    cb?: () => void,
  ): this {
    if (this.#state === 'closed') throw ferryError('ERR_FERRY_SOCKET_CLOSED', 'bind after close');
    if (this.#state !== 'idle') throw ferryError('ERR_FERRY_SESSION_STATE', 'socket is already bound');
    let done = cb;
    if (typeof target === 'function') done = target;
    if (typeof addressOrCb === 'function') done = addressOrCb;
    let uri: string;
    if (typeof target === 'string') uri = target;
    else if (typeof target === 'object' && target.uri) uri = target.uri;
    else {
      const port = typeof target === 'number' ? target : typeof target === 'object' ? (target.port ?? 0) : 0;
      const addr =
        (typeof addressOrCb === 'string' ? addressOrCb : undefined) ??
        (typeof target === 'object' ? target.address : undefined) ??
        (this.type === 'udp6' ? '::' : '0.0.0.0');
      uri = formatUri({ scheme: 'udp', host: addr, port });
    }
    if (done) this.once('listening', done);
    this.#startBind(uri).catch((err: Error) => this.#fatal(err));
    return this;
  }

  #startBind(uri: string): Promise<void> {
    const parsed = parseUri(uri);
    if (parsed.scheme !== 'udp') {
      throw ferryError('ERR_FERRY_BAD_URI', `a datagram socket binds udp:// addresses, not '${uri}'`);
    }
    this.#state = 'binding';
    this.#bound = this.#bind(uri);
    return this.#bound;
  }

  async #bind(uri: string): Promise<void> {
    const att = await getAttachment(this.#opts);
    if (!(await this.#register(att, uri))) return;
    att.on('lost', this.#onLost);
    att.on('reattached', this.#onReattached);
    att.on('closed', this.#onClosed);
    this.#state = 'bound';
    this.#hold();
    this.emit('listening');
  }

  /** Binds the endpoint with ferryd and opens its relay; false when the socket closed meanwhile. */
  async #register(att: Attachment, uri: string): Promise<boolean> {
    if ((att.features & FEATURE.DATAGRAM) === 0) {
      throw ferryError('ERR_FERRY_NOT_SUPPORTED', 'this ferryd has no datagram endpoints (feature DATAGRAM)');
    }
    const reply = await requestDgramBind(att, {
      uri,
      rxFifoSize: this.#opts.rxFifoSize ?? 0,
      txFifoSize: this.#opts.txFifoSize ?? 0,
    });
    const seg = reply.fifos ? att.segments.get(reply.fifos.segment) : undefined;
    if (!reply.fifos || !seg) {
      noticeSession(att, 'close', reply.session);
      throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'dgram-bind reply names no usable segment');
    }
    if (this.#state === 'closed') {
      noticeSession(att, 'close', reply.session);
      return false;
    }
    this.#att = att;
    this.#endpoint = reply.endpoint;
    this.#local = addressOfUri(reply.uri);
    const relay = new DatagramChannel(reply.session, seg, reply.fifos, null);
    this.#relay = relay;
    routeAccepted(att).set(reply.endpoint, this);
    att.onSessionReset(relay, (err) => this.onEnd(relay, err));
    relay.open(this);
    return true;
  }

  /** Binds to the wildcard address on a free port, as node:dgram does on a first send. */
  #ensureBound(): Promise<void> {
    if (this.#bound) return this.#bound;
    const host = this.type === 'udp6' ? '::' : '0.0.0.0';
    return this.#startBind(formatUri({ scheme: 'udp', host, port: 0 }));
  }

  address(): { address: string; family: DgramFamily; port: number; uri: string } {
    const l = this.#local;
    if (!l || this.#state !== 'bound') throw ferryError('EBADF', 'the socket is not bound');
    return { ...l, uri: formatUri({ scheme: 'udp', host: l.address, port: l.port }) };
  }

  // ---- connected use ----

  /**
   * Connects the socket to one peer: `connect(port[, address][, cb])` or `connect('udp://H:P'[, cb])`.
   * Then send() needs no address and only that peer's datagrams are delivered. Emits 'connect'.
   */
  connect(target: string | number, addressOrCb?: string | (() => void), cb?: () => void): void {
    if (this.#state === 'closed') throw ferryError('ERR_FERRY_SOCKET_CLOSED', 'connect after close');
    if (this.#connected || this.#connecting) {
      throw ferryError('ERR_FERRY_SESSION_STATE', 'the socket is already connected');
    }
    const done = typeof addressOrCb === 'function' ? addressOrCb : cb;
    const host = typeof addressOrCb === 'string' ? addressOrCb : undefined;
    if (done) this.once('connect', done);
    this.#connecting = true;
    (async () => {
      await this.#ensureBound();
      const to = await this.#resolve(target, host);
      await this.#routeReady(to);
      this.#connecting = false;
      if (this.#state === 'closed') return;
      this.#connected = to;
      this.emit('connect');
    })().catch((err: Error) => {
      this.#connecting = false;
      this.#fatal(err, false);
    });
  }

  disconnect(): void {
    if (!this.#connected) throw ferryError('ENOTCONN', 'the socket is not connected');
    this.#connected = null;
  }

  remoteAddress(): { address: string; family: DgramFamily; port: number } {
    const c = this.#connected;
    if (!c) throw ferryError('ENOTCONN', 'the socket is not connected');
    return { ...c };
  }

  // ---- sending ----

  /**
   * Sends one datagram, as node:dgram does: `send(msg[, cb])` when connected,
   * `send(msg, port[, address][, cb])`, `send(msg, offset, length, port[, address][, cb])`, or
   * `send(msg, 'udp://H:P'[, cb])`. Errors (EMSGSIZE above 65507 bytes or the fifo's size, ENOBUFS
   * when the send queue is full) go to the callback, or to 'error' without one.
   */
  send(msg: Payload, ...args: unknown[]): void {
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as SendCallback) : undefined;
    let payload: Uint8Array;
    let target: string | number | undefined;
    let host: string | undefined;
    try {
      payload = toBuffer(msg);
      if (typeof args[0] === 'number' && typeof args[1] === 'number') {
        payload = payload.subarray(args[0], args[0] + args[1]);
        args.splice(0, 2);
      }
      target = args[0] as string | number | undefined;
      host = args[1] as string | undefined;
      if (this.#state === 'closed') throw ferryError('ERR_FERRY_SOCKET_CLOSED', 'send after close');
      if (payload.length > DGRAM_MAX_PAYLOAD) {
        throw ferryError(
          'EMSGSIZE',
          `datagram of ${payload.length} bytes exceeds the UDP limit of ${DGRAM_MAX_PAYLOAD}`,
        );
      }
      if (target !== undefined && this.#connected) {
        throw ferryError('ERR_INVALID_ARG_VALUE', 'a connected socket sends to its peer only');
      }
      if (target === undefined && !this.#connected) {
        throw ferryError('ENOTCONN', 'send without an address needs a connected socket');
      }
    } catch (err) {
      this.#sendFailed(err as Error, cb);
      return;
    }
    const connected = this.#connected;
    // Fast path: bound, and a numeric destination (or the connected peer).
    if (this.#state === 'bound' && (connected || this.#numeric(target, host))) {
      const to = connected ?? (this.#numeric(target, host) as DgramAddress);
      this.#route({ payload, to, cb });
      return;
    }
    (async () => {
      await this.#ensureBound();
      const to = this.#connected ?? (await this.#resolve(target as string | number, host));
      this.#route({ payload, to, cb });
    })().catch((err: Error) => this.#sendFailed(err, cb));
  }

  #numeric(target: unknown, host: string | undefined): DgramAddress | null {
    if (typeof target !== 'number') return null;
    const h = host ?? (this.#local?.family === 'IPv6' ? '::1' : '127.0.0.1');
    const family = dgramFamilyOf(h);
    if (!family || !Number.isInteger(target) || target < 1 || target > 65535) return null;
    return { address: canonicalIp(h, family), port: target, family };
  }

  /** A destination as a numeric address; host names are resolved (localhost: the loopback). */
  async #resolve(target: string | number, host: string | undefined): Promise<DgramAddress> {
    let port: number;
    let h: string;
    if (typeof target === 'string') {
      const u = parseUri(target);
      if (u.scheme !== 'udp') throw ferryError('ERR_FERRY_BAD_URI', `'${target}' is not a udp:// address`);
      port = u.port;
      h = u.host;
    } else {
      port = target;
      h = host ?? (this.#local?.family === 'IPv6' ? '::1' : '127.0.0.1');
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw ferryError('ERR_OUT_OF_RANGE', `port ${port} is out of range (1-65535)`);
    }
    const v6 = this.#local?.family === 'IPv6' || this.type === 'udp6';
    if (h.toLowerCase() === 'localhost') h = v6 ? '::1' : '127.0.0.1';
    let family = dgramFamilyOf(h);
    if (!family) {
      const r = await lookup(h, { family: v6 ? 6 : 4 });
      h = r.address;
      family = dgramFamilyOf(h);
      if (!family) throw ferryError('EHOSTUNREACH', `cannot resolve '${h}'`);
    }
    h = canonicalIp(h, family);
    return { address: h, port, family };
  }

  #route(out: Outgoing): void {
    if (this.#state !== 'bound') {
      this.#sendFailed(ferryError('ERR_FERRY_SOCKET_CLOSED', 'socket closed before the send'), out.cb);
      return;
    }
    const key = keyOf(out.to);
    const pending = this.#lookups.get(key);
    if (pending) {
      pending.push(out);
      return;
    }
    const ch = this.#peers.get(key);
    if (ch && !ch.closed) {
      this.#write(ch, out, null);
      return;
    }
    if (!this.#relay) {
      // ferryd is away: cut-through pairs go on, nothing else can be routed until it is back.
      this.#sendFailed(ferryError('ERR_FERRY_DAEMON_LOST', 'ferryd is away; datagram dropped'), out.cb);
      return;
    }
    if (this.#remote.has(key)) {
      this.#write(this.#relay, out, out.to);
      return;
    }
    if (this.#channels.size >= (this.#opts.maxPeerPairs ?? 256)) {
      // Enough pairs: the kernel path reaches a local endpoint too (its kernel socket in ferryd).
      this.#write(this.#relay, out, out.to);
      return;
    }
    this.#lookups.set(key, [out]);
    this.#lookup(out.to).then(
      () => this.#flushLookup(key),
      (err: Error) => {
        const list = this.#lookups.get(key) ?? [];
        this.#lookups.delete(key);
        for (const o of list) this.#sendFailed(err, o.cb);
      },
    );
  }

  /** Resolves once ferryd said where `to` is (and the route is known); used by connect(). */
  async #routeReady(to: DgramAddress): Promise<void> {
    const key = keyOf(to);
    if (this.#peers.has(key) || this.#remote.has(key)) return;
    await this.#lookup(to);
  }

  /** Asks ferryd for the route to `to`: a cut-through pair with a local endpoint, or the relay. */
  async #lookup(to: DgramAddress): Promise<void> {
    const att = this.#att;
    if (!att || this.#state !== 'bound') throw ferryError('ERR_FERRY_SOCKET_CLOSED', 'socket is closed');
    const reply = await requestDgramConnect(att, {
      endpoint: this.#endpoint,
      uri: formatUri({ scheme: 'udp', host: to.address, port: to.port }),
      rxFifoSize: this.#opts.rxFifoSize ?? 0,
      txFifoSize: this.#opts.txFifoSize ?? 0,
    });
    const key = keyOf(to);
    if (!reply.fifos) {
      if (this.#remote.size >= MAX_REMOTE_ROUTES) this.#remote.clear();
      this.#remote.add(key);
      return;
    }
    // Attachment pinned the segment when this connect-reply arrived (and kept any session-reset
    // sent before we got here): claim both, or the pin outlives the session.
    const { seg, reset } = att.claimSession(reply.session);
    if (!seg || this.#state !== 'bound') {
      noticeSession(att, 'close', reply.session);
      if (!seg) throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'dgram-connect reply names no usable segment');
      att.releaseSegmentIfUnused(seg);
      return;
    }
    // The frames' peer is the address this socket sends to, so replies match what the app named.
    const ch = new DatagramChannel(reply.session, seg, reply.fifos, to);
    this.#openChannel(att, ch);
    if (reset) this.onEnd(ch, reset);
  }

  #flushLookup(key: string): void {
    const list = this.#lookups.get(key) ?? [];
    this.#lookups.delete(key);
    for (const o of list) this.#route(o);
  }

  #openChannel(att: Attachment, ch: DatagramChannel): void {
    const remote = ch.remote as DgramAddress;
    const key = keyOf(remote);
    this.#channels.add(ch);
    const existing = this.#peers.get(key);
    if (!existing || existing.closed) this.#peers.set(key, ch);
    this.#remote.delete(key);
    att.onSessionReset(ch, (err) => this.onEnd(ch, err));
    ch.open(this);
  }

  /** A local endpoint sent to us first: ferryd made a cut-through pair. @internal */
  _accepted(msg: Accepted): void {
    const att = this.#att;
    const seg = msg.fifos ? att?.segments.get(msg.fifos.segment) : undefined;
    if (!att || !seg || !msg.fifos || this.#state !== 'bound') {
      if (att) noticeSession(att, 'close', msg.session);
      return;
    }
    this.#openChannel(att, new DatagramChannel(msg.session, seg, msg.fifos, addressOfUri(msg.remoteUri)));
  }

  #write(ch: DatagramChannel, out: Outgoing, to: DgramAddress | null): void {
    const queue = this.#waiting.get(ch);
    if (queue) {
      this.#enqueueWaiting(queue, out, to);
      return;
    }
    let r: ReturnType<DatagramChannel['send']>;
    try {
      r = ch.send(out.payload, to);
    } catch (err) {
      this.#sendFailed(err as Error, out.cb);
      return;
    }
    if (r === 'sent') {
      if (out.cb) process.nextTick(out.cb, null, out.payload.length);
    } else if (r === 'full') {
      const q: { out: Outgoing; to: DgramAddress | null }[] = [];
      this.#waiting.set(ch, q);
      this.#enqueueWaiting(q, out, to);
      if (ch.waitForSpace(out.payload.length)) setImmediate(() => this.onWritable(ch));
    } else if (r === 'closed' && ch !== this.#relay) {
      // The local peer went away before we heard of it: let the pair go, route this one again.
      this.onEnd(ch, null);
      this.#route(out);
    } else {
      this.#sendFailed(ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram fifo ${r}`), out.cb);
    }
  }

  #enqueueWaiting(
    q: { out: Outgoing; to: DgramAddress | null }[],
    out: Outgoing,
    to: DgramAddress | null,
  ): void {
    const cap = this.#opts.sendQueueBytes ?? 1024 * 1024;
    if (this.#queuedBytes + out.payload.length > cap && q.length > 0) {
      this.#sendFailed(ferryError('ENOBUFS', `send queue full (${cap} bytes)`), out.cb);
      return;
    }
    // Copied: the caller may reuse its buffer once send() returns, as with node:dgram.
    q.push({ out: { ...out, payload: Buffer.from(out.payload) }, to });
    this.#queuedBytes += out.payload.length;
  }

  // ---- DatagramSink upcalls ----

  onWritable(ch: DatagramChannel): void {
    const q = this.#waiting.get(ch);
    if (!q) return;
    while (q.length > 0) {
      const head = q[0] as { out: Outgoing; to: DgramAddress | null };
      let r: ReturnType<DatagramChannel['send']> | 'thrown';
      try {
        r = ch.send(head.out.payload, head.to);
      } catch (err) {
        r = 'thrown';
        this.#sendFailed(err as Error, head.out.cb);
      }
      if (r === 'full') {
        // Cannot spin: armSpace is true only when the frame fits now (then the send succeeds),
        // or when the peer closed or the fifo failed (then the send says so).
        if (ch.waitForSpace(head.out.payload.length)) continue;
        return;
      }
      if (r === 'closed' && ch !== this.#relay) {
        this.onEnd(ch, null); // routes the whole queue again, this datagram first
        return;
      }
      q.shift();
      this.#queuedBytes -= head.out.payload.length;
      if (r === 'sent') {
        if (head.out.cb) process.nextTick(head.out.cb, null, head.out.payload.length);
        continue;
      }
      if (r !== 'thrown')
        this.#sendFailed(ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram fifo ${r}`), head.out.cb);
    }
    this.#waiting.delete(ch);
  }

  onDatagram(ch: DatagramChannel, payload: Buffer, from: DgramAddress | null): void {
    const peer = from ?? ch.remote;
    if (!peer || this.#state !== 'bound') return;
    const c = this.#connected;
    if (c && (c.port !== peer.port || c.address !== peer.address)) return;
    const rinfo: RemoteInfo = {
      address: peer.address,
      family: peer.family,
      port: peer.port,
      size: payload.length,
    };
    this.emit('message', payload, rinfo);
  }

  onEnd(ch: DatagramChannel, err: FerryError | null): void {
    if (ch === this.#relay && this.#att?.state !== 'attached') {
      // ferryd went away (its segments fail first): the relay is gone, the socket stays, and it
      // binds again once the attachment is back ('reattached').
      this.#dropRelay();
      return;
    }
    if (ch === this.#relay) {
      // The endpoint itself failed (ferryd's kernel socket, or its fifos): the socket cannot go on.
      this.#fatal(err ?? ferryError('ECONNRESET', 'ferryd closed the datagram endpoint'));
      return;
    }
    if (!this.#channels.has(ch)) return;
    this.#dropChannel(ch);
    // Datagrams still waiting for that peer: route again (the peer may have rebound elsewhere, or
    // they go out through the kernel and are lost there, as UDP's are).
    const q = this.#waiting.get(ch);
    this.#waiting.delete(ch);
    for (const w of q ?? []) {
      this.#queuedBytes -= w.out.payload.length;
      this.#route(w.out);
    }
  }

  #dropChannel(ch: DatagramChannel): void {
    const att = this.#att;
    this.#channels.delete(ch);
    if (ch.remote) {
      const key = keyOf(ch.remote);
      if (this.#peers.get(key) === ch) {
        this.#peers.delete(key);
        for (const other of this.#channels) {
          if (other.remote && keyOf(other.remote) === key && !other.closed) this.#peers.set(key, other);
        }
      }
    }
    endDatagramChannel(att, ch);
  }

  // ---- teardown ----

  close(cb?: () => void): this {
    if (cb) this.once('close', cb);
    if (this.#state === 'closed') return this;
    this.#state = 'closed';
    const att = this.#att;
    for (const ch of [...this.#channels]) this.#dropChannel(ch);
    const closed = ferryError('ERR_FERRY_SOCKET_CLOSED', 'socket closed');
    for (const list of this.#lookups.values()) for (const o of list) this.#sendFailed(closed, o.cb, false);
    this.#lookups.clear();
    for (const q of this.#waiting.values()) for (const w of q) this.#sendFailed(closed, w.out.cb, false);
    this.#waiting.clear();
    this.#queuedBytes = 0;
    this.#dropRelay();
    if (att) {
      att.off('lost', this.#onLost);
      att.off('reattached', this.#onReattached);
      att.off('closed', this.#onClosed);
    }
    this.#release();
    process.nextTick(() => this.emit('close'));
    return this;
  }

  ref(): this {
    this.#refed = true;
    if (this.#state === 'bound') this.#hold();
    return this;
  }

  unref(): this {
    this.#refed = false;
    this.#release();
    return this;
  }

  #hold(): void {
    if (this.#holding || !this.#refed || !this.#att) return;
    this.#holding = true;
    this.#att.ref();
  }

  #release(): void {
    if (!this.#holding || !this.#att) return;
    this.#holding = false;
    this.#att.unref();
  }

  /** Lets the relay go (close, or ferryd gone) and unregisters the endpoint. */
  #dropRelay(): void {
    const relay = this.#relay;
    const att = this.#att;
    this.#relay = null;
    if (!relay || !att) return;
    endDatagramChannel(att, relay);
    routers.get(att)?.delete(this.#endpoint);
    this.#endpoint = 0;
  }

  /**
   * ferryd is gone. Cut-through pairs go on (app-to-app memory); the relay and the endpoint died
   * with ferryd, and what ferryd said about destinations no longer holds.
   */
  #onLost = (err: Error): void => {
    this.#dropRelay();
    this.#remote.clear();
    this.emit('ferryd-lost', err);
  };

  /** Attached to a new ferryd: bind the same address again (a port picked with :0 is kept). */
  #onReattached = (): void => {
    const att = this.#att;
    const local = this.#local;
    if (!att || !local || this.#state !== 'bound') return;
    const uri = formatUri({ scheme: 'udp', host: local.address, port: local.port });
    this.#register(att, uri).then(
      (ok) => {
        if (ok) this.emit('reattached');
      },
      (err: FerryError) => {
        // Lost again before the reply: the next 'reattached' retries.
        if (err.code === 'ERR_FERRY_DAEMON_LOST' || err.code === 'ERR_FERRY_DAEMON_UNREACHABLE') return;
        this.#fatal(err);
      },
    );
  };

  /** The attachment gave up for good. */
  #onClosed = (err: Error): void => {
    this.#fatal(err);
  };

  /** An error the socket cannot continue after (bind failed, endpoint lost): 'error', then close. */
  #fatal(err: Error, closeAfter = true): void {
    if (this.#state === 'closed') return;
    if (closeAfter) this.close();
    this.emit('error', err);
  }

  #sendFailed(err: Error, cb: SendCallback | undefined, toError = true): void {
    if (cb) process.nextTick(cb, err, 0);
    else if (isLoss(err)) this.droppedSends++;
    else if (toError) process.nextTick(() => this.emit('error', err));
  }
}

/** Creates a datagram socket, as node:dgram's createSocket; `onMessage` listens for 'message'. */
export function createDatagramSocket(
  opts: DatagramSocketOptions | 'udp4' | 'udp6' = {},
  onMessage?: (msg: Buffer, rinfo: RemoteInfo) => void,
): DatagramSocket {
  const s = new DatagramSocket(typeof opts === 'string' ? { type: opts } : opts);
  if (onMessage) s.on('message', onMessage);
  return s;
}
