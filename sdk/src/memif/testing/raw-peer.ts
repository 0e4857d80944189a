// Test helper: a hand-driven memif peer over a raw SEQPACKET socket, for hostile-input tests.
// It speaks whatever the test tells it to (any bytes, any fds) and lays out memory independently
// of the SDK's own client code.

import { FerryError } from '../../errors.js';
import {
  decodeMemif,
  encodeMemif,
  MEMIF_COOKIE,
  MEMIF_MSG_SIZE,
  type MemifMessage,
  memifRingBytes,
} from '../../proto/memif/index.js';
import {
  accept,
  addSeals,
  bindUnix,
  close,
  connectUnix,
  eventfd,
  ftruncate,
  listen,
  Mapping,
  memfdCreate,
  recvMsg,
  SEAL,
  sendMsg,
  unixSocket,
} from '../../sys/index.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type RawReceived =
  | { eof: true }
  | { eof: false; bytes: Uint8Array; fds: number[]; msg: MemifMessage | null };

export class RawChannel {
  readonly fd: number;
  #closed = false;
  constructor(fd: number) {
    this.fd = fd;
  }

  sendBytes(bytes: Uint8Array, fds?: number[]): void {
    sendMsg(this.fd, bytes, fds);
  }

  send(msg: MemifMessage, fd?: number): void {
    this.sendBytes(encodeMemif(msg), fd === undefined ? undefined : [fd]);
  }

  /** The next datagram (decoded if it decodes), or EOF; rejects after timeoutMs. */
  async recv(timeoutMs = 3000): Promise<RawReceived> {
    const buf = new Uint8Array(4 * MEMIF_MSG_SIZE);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let r: ReturnType<typeof recvMsg>;
      try {
        r = recvMsg(this.fd, buf, 4);
      } catch (e) {
        if (e instanceof FerryError && e.code === 'ECONNRESET') return { eof: true };
        throw e;
      }
      if (r !== null) {
        if (r.bytes === 0 && r.fds.length === 0) return { eof: true };
        const bytes = buf.slice(0, r.bytes);
        let msg: MemifMessage | null = null;
        try {
          msg = decodeMemif(bytes);
        } catch {
          msg = null;
        }
        return { eof: false, bytes, fds: r.fds, msg };
      }
      if (Date.now() > deadline) throw new Error('raw peer: nothing received in time');
      await sleep(2);
    }
  }

  /** The next message, which must decode; its fds are closed unless keepFds. */
  async expect(timeoutMs = 3000, keepFds = false): Promise<{ msg: MemifMessage; fds: number[] }> {
    const r = await this.recv(timeoutMs);
    if (r.eof) throw new Error('raw peer: EOF where a message was expected');
    if (r.msg === null) throw new Error(`raw peer: undecodable message of ${r.bytes.byteLength} bytes`);
    if (!keepFds) for (const fd of r.fds) close(fd);
    return { msg: r.msg, fds: keepFds ? r.fds : [] };
  }

  /** Waits for DISCONNECT (returns its reason) followed by EOF. */
  async expectDisconnect(timeoutMs = 3000): Promise<string> {
    const { msg } = await this.expect(timeoutMs);
    if (msg.type !== 'disconnect') throw new Error(`raw peer: expected DISCONNECT, got ${msg.type}`);
    const next = await this.recv(timeoutMs);
    if (!next.eof) throw new Error('raw peer: DISCONNECT was not followed by EOF');
    return msg.reason;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.fd);
  }
}

export function rawConnect(socket: string): RawChannel {
  const fd = unixSocket('seqpacket', { nonblock: true });
  connectUnix(fd, socket);
  return new RawChannel(fd);
}

export class RawListener {
  readonly fd: number;
  constructor(socket: string) {
    this.fd = unixSocket('seqpacket', { nonblock: true });
    bindUnix(this.fd, socket);
    listen(this.fd, 4);
  }
  async accept(timeoutMs = 3000): Promise<RawChannel> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fd = accept(this.fd, { nonblock: true });
      if (fd >= 0) return new RawChannel(fd);
      if (Date.now() > deadline) throw new Error('raw listener: no connection in time');
      await sleep(2);
    }
  }
  close(): void {
    close(this.fd);
  }
}

/** Memory a raw client hands over: one region with rings then buffers (like DPDK copy mode). */
export class RawMemory {
  readonly fd: number;
  readonly size: number;
  readonly mapping: Mapping;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly log2: number;
  readonly bufferSize: number;
  readonly rings: number;
  readonly eventfds: number[] = [];

  constructor(opts: {
    rings: number;
    log2: number;
    bufferSize: number;
    seal?: boolean;
    extraBytes?: number;
  }) {
    this.rings = opts.rings;
    this.log2 = opts.log2;
    this.bufferSize = opts.bufferSize;
    this.size =
      opts.rings * memifRingBytes(opts.log2) +
      opts.rings * 2 ** opts.log2 * opts.bufferSize +
      (opts.extraBytes ?? 0);
    this.fd = memfdCreate('raw-memif', { allowSealing: true });
    ftruncate(this.fd, this.size);
    if (opts.seal !== false) addSeals(this.fd, SEAL.SHRINK);
    this.mapping = Mapping.map(this.fd, this.size);
    this.u8 = new Uint8Array(this.mapping.buffer);
    this.dv = new DataView(this.mapping.buffer);
    for (let g = 0; g < opts.rings; g++) {
      const off = this.ringOffset(g);
      this.dv.setUint32(off, MEMIF_COOKIE, true);
      for (let j = 0; j < 2 ** opts.log2; j++)
        this.setDesc(g, j, 0, 0, opts.bufferSize, this.bufferOffset(g, j));
      this.eventfds.push(eventfd(0, { nonblock: true }));
    }
  }

  ringOffset(g: number): number {
    return g * memifRingBytes(this.log2);
  }
  bufferOffset(g: number, slot: number): number {
    return this.rings * memifRingBytes(this.log2) + (g * 2 ** this.log2 + slot) * this.bufferSize;
  }
  head(g: number): number {
    return this.dv.getUint16(this.ringOffset(g) + 6, true);
  }
  setHead(g: number, v: number): void {
    this.dv.setUint16(this.ringOffset(g) + 6, v & 0xffff, true);
  }
  tail(g: number): number {
    return this.dv.getUint16(this.ringOffset(g) + 64, true);
  }
  setTail(g: number, v: number): void {
    this.dv.setUint16(this.ringOffset(g) + 64, v & 0xffff, true);
  }
  flags(g: number): number {
    return this.dv.getUint16(this.ringOffset(g) + 4, true);
  }
  setDesc(g: number, slot: number, flags: number, region: number, length: number, offset: number): void {
    const d = this.ringOffset(g) + 128 + 16 * slot;
    this.dv.setUint16(d, flags, true);
    this.dv.setUint16(d + 2, region, true);
    this.dv.setUint32(d + 4, length, true);
    this.dv.setUint32(d + 8, offset, true);
  }
  desc(g: number, slot: number): { flags: number; region: number; length: number; offset: number } {
    const d = this.ringOffset(g) + 128 + 16 * slot;
    return {
      flags: this.dv.getUint16(d, true),
      region: this.dv.getUint16(d + 2, true),
      length: this.dv.getUint32(d + 4, true),
      offset: this.dv.getUint32(d + 8, true),
    };
  }

  release(): void {
    this.mapping.release();
    close(this.fd);
    for (const e of this.eventfds) close(e);
  }
}

/**
 * Runs a raw client through HELLO .. CONNECTED with one C2S and one S2C ring (ring 0 = C2S,
 * ring 1 = S2C) and returns the channel and memory. `tamper` may change the memory before CONNECT.
 */
export async function rawClientHandshake(
  socket: string,
  opts: {
    id?: number;
    secret?: string;
    log2?: number;
    bufferSize?: number;
    tamper?: (m: RawMemory) => void;
  } = {},
): Promise<{ ch: RawChannel; mem: RawMemory; reply: MemifMessage }> {
  const ch = rawConnect(socket);
  const hello = await ch.expect();
  if (hello.msg.type !== 'hello') throw new Error(`expected HELLO, got ${hello.msg.type}`);
  const mem = new RawMemory({ rings: 2, log2: opts.log2 ?? 4, bufferSize: opts.bufferSize ?? 2048 });
  const steps: Array<[MemifMessage, number | undefined]> = [
    [
      {
        type: 'init',
        version: 0x0200,
        id: opts.id ?? 0,
        mode: 'ethernet',
        secret: opts.secret ?? '',
        name: 'raw',
      },
      undefined,
    ],
    [{ type: 'add-region', index: 0, size: mem.size }, mem.fd],
    [
      {
        type: 'add-ring',
        direction: 'c2s',
        index: 0,
        region: 0,
        offset: mem.ringOffset(0),
        log2RingSize: mem.log2,
      },
      mem.eventfds[0],
    ],
    [
      {
        type: 'add-ring',
        direction: 's2c',
        index: 0,
        region: 0,
        offset: mem.ringOffset(1),
        log2RingSize: mem.log2,
      },
      mem.eventfds[1],
    ],
  ];
  for (const [m, fd] of steps) {
    ch.send(m, fd);
    const r = await ch.expect();
    if (r.msg.type !== 'ack') return { ch, mem, reply: r.msg };
  }
  opts.tamper?.(mem);
  ch.send({ type: 'connect', ifName: 'raw0' });
  const r = await ch.expect();
  return { ch, mem, reply: r.msg };
}
