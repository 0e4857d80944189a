/**
 * Hostile apps for tests: raw SEQPACKET clients that speak the control protocol by hand (or not at
 * all) so tests can send garbage, replay, flood, pass fds and never close them, hold many
 * connections, and map the segments ferryd hands out to scribble over them. Everything here runs
 * in the test process and is bounded in time; `closeAll()` releases what a test left open.
 */
import { readdirSync, readFileSync } from 'node:fs';
import {
  type CtrlMessage,
  close,
  connectUnix,
  decodeCtrl,
  encodeCtrl,
  FEATURE,
  PROTO_MIN_VERSION,
  PROTO_VERSION,
  pipe2,
  recvMsg,
  ring,
  Segment,
  type SegmentAdd,
  sendMsg,
  unixSocket,
} from '@ferry/sdk/internal';

/** A connected control socket with no protocol on top. */
export class RawChannel {
  readonly fd: number;
  #closed = false;
  #rx = new Uint8Array(65536 + 1);

  constructor(socket: string) {
    this.fd = unixSocket('seqpacket', { nonblock: true });
    try {
      connectUnix(this.fd, socket);
    } catch (err) {
      close(this.fd);
      throw err;
    }
    open.add(this);
  }

  /** Sends raw bytes (and fds, duplicated by the kernel); false when the socket buffer is full. */
  sendBytes(bytes: Uint8Array, fds: readonly number[] = []): boolean {
    return sendMsg(this.fd, bytes, fds) >= 0;
  }

  /**
   * Waits (bounded) for one datagram. Returns its bytes and fds (the caller owns the fds), or null
   * when ferryd closed the channel.
   */
  async recv(timeoutMs = 5000): Promise<{ bytes: Uint8Array; fds: number[] } | null> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const r = recvMsg(this.fd, this.#rx, 8);
      if (r) {
        if (r.bytes === 0 && r.fds.length === 0) return null;
        return { bytes: this.#rx.slice(0, r.bytes), fds: r.fds };
      }
      await new Promise((res) => setTimeout(res, 2));
    }
    throw new Error(`no datagram from ferryd in ${timeoutMs} ms`);
  }

  /** Reads until ferryd closes the channel (bounded); true when it did. */
  async closedByPeer(timeoutMs = 5000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const r = await this.recv(Math.max(1, end - Date.now())).catch(() => undefined);
      if (r === null) return true;
      if (r) for (const fd of r.fds) close(fd);
    }
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    open.delete(this);
    close(this.fd);
  }
}

const open = new Set<{ close(): void }>();

/** Closes every raw channel and raw app a test left open. */
export function closeAll(): void {
  for (const o of [...open]) o.close();
}

/** A received segment-add: the mapping and the peer's doorbell, for scribbling and ringing. */
export interface RawSegment {
  msg: SegmentAdd;
  fd: number;
  peerDoorbellFd: number;
  segment: Segment;
}

const STREAM_FEATURES = FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE;
/** Stream features plus DATAGRAM: what an app that binds UDP endpoints asks for. */
export const DATAGRAM_FEATURES = STREAM_FEATURES | FEATURE.DATAGRAM;

/**
 * An app that did HELLO by hand. It holds the fds an app must hold (ferryd's wake pipe write end,
 * its own doorbell and wake read ends), rings ferryd after each message, keeps every segment ferryd
 * sends it mapped, and can ignore everything else.
 */
export class RawApp {
  readonly ch: RawChannel;
  appId = 0;
  /** Messages received and not yet taken by next(). */
  readonly inbox: CtrlMessage[] = [];
  readonly segments = new Map<number, RawSegment>();
  #fds: number[] = [];
  #daemonWake = -1;
  #nextId = 100;
  #closed = false;

  private constructor(socket: string) {
    this.ch = new RawChannel(socket);
    open.add(this);
  }

  /** HELLO by hand; `features` defaults to what a stream-only app asks for (add DATAGRAM for UDP). */
  static async attach(socket: string, name = 'raw', features = STREAM_FEATURES): Promise<RawApp> {
    const app = new RawApp(socket);
    const [wakeR, wakeW] = pipe2({ nonblock: true });
    const [bellR, bellW] = pipe2({ nonblock: true });
    app.#fds.push(wakeR, bellR);
    app.ch.sendBytes(app.#hello(name, features), [wakeW, bellW]);
    close(wakeW);
    close(bellW);
    const reply = await app.#recvOne();
    if (reply?.t !== 'hello-reply' || reply.st !== 0) {
      app.close();
      throw new Error(`hello refused: ${JSON.stringify(reply)}`);
    }
    app.appId = reply.appId;
    return app;
  }

  #hello(name: string, features: number): Uint8Array {
    return encodeCtrl({
      t: 'hello',
      id: 1,
      version: PROTO_VERSION,
      minVersion: PROTO_MIN_VERSION,
      features,
      name,
      namespace: 'default',
      token: '',
      fds: ['wake', 'doorbell'],
    });
  }

  /** Sends a message and rings ferryd (its loop cannot watch the SEQPACKET socket). */
  send(msg: CtrlMessage, fds: readonly number[] = [], ringIt = true): boolean {
    const ok = this.ch.sendBytes(encodeCtrl(msg), fds);
    if (ringIt) this.ring();
    return ok;
  }

  /** Rings ferryd's wake pipe (what an app does after each message). */
  ring(): void {
    if (this.#daemonWake >= 0) ring(this.#daemonWake);
  }

  /** Sends a request with a fresh id and waits for the message answering it. */
  async request(msg: CtrlMessage, timeoutMs = 5000): Promise<CtrlMessage> {
    const id = this.#nextId++;
    this.send({ ...msg, id } as CtrlMessage);
    return this.next((m) => m.id === id, timeoutMs);
  }

  /** The next message matching `pred` (default: any), bounded. Segment-adds are mapped on the way. */
  async next(pred: (m: CtrlMessage) => boolean = () => true, timeoutMs = 5000): Promise<CtrlMessage> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as CtrlMessage;
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(`no matching message; inbox ${JSON.stringify(this.inbox.map((m) => m.t))}`);
      const m = await this.#recvOne(left);
      if (m === null) throw new Error('ferryd closed the channel');
      this.inbox.push(m);
    }
  }

  async #recvOne(timeoutMs = 5000): Promise<CtrlMessage | null> {
    const r = await this.ch.recv(timeoutMs);
    if (r === null) return null;
    const m = decodeCtrl(r.bytes);
    if (m.t === 'hello-reply' && m.st === 0) {
      const wake = r.fds[m.fds.indexOf('wake')];
      for (const fd of r.fds) if (fd !== wake) close(fd);
      if (wake !== undefined) this.#daemonWake = wake;
    } else if (m.t === 'segment-add') {
      const segFd = r.fds[m.fds.indexOf('segment')];
      const bell = r.fds[m.fds.indexOf('doorbell')];
      if (segFd !== undefined && bell !== undefined) {
        this.segments.set(m.segment, {
          msg: m,
          fd: segFd,
          peerDoorbellFd: bell,
          segment: Segment.attach(segFd, m.size),
        });
      } else for (const fd of r.fds) close(fd);
    } else {
      for (const fd of r.fds) close(fd);
    }
    return m;
  }

  /** Closes the channel and everything held: to ferryd this app died. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    open.delete(this);
    this.ch.close();
    for (const fd of this.#fds) close(fd);
    if (this.#daemonWake >= 0) close(this.#daemonWake);
    for (const s of this.segments.values()) {
      close(s.peerDoorbellFd);
      s.segment.release();
    }
    this.segments.clear();
  }
}

/** Random bytes of 1..maxBytes, from a seeded generator. */
export function randomDatagram(rnd: () => number, maxBytes = 512): Uint8Array {
  const n = 1 + Math.floor(rnd() * maxBytes);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** mulberry32: a small seeded generator, so hostile runs are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pipes' worth of fds to pass and never take back (the write ends; the read ends are closed). */
export function junkFds(n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const [r, w] = pipe2({ nonblock: true });
    close(r);
    out.push(w);
  }
  return out;
}

/** ferryd's open fd count, from /proc (its own stats report the same number). */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** CPU seconds (user + system) process `pid` has used so far, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds `pid` uses over the next `ms`: how tests check ferryd does not spin after abuse. */
export async function cpuSecondsOver(pid: number, ms: number): Promise<number> {
  const cpu0 = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, ms));
  return cpuSeconds(pid) - cpu0;
}
