/**
 * ferryd's topic relay listener (`topics.relayListen`): other ferryds connect, name one exported
 * topic in a HELLO, and get its messages over that stream (RelayOut). One connection per topic
 * per importing host: that host's subscribers share it.
 */
import * as net from 'node:net';
import {
  encodeRelayJson,
  type FerryError,
  RELAY_KIND,
  RELAY_VERSION,
  RelayDecoder,
  type RelayFrame,
} from '@ferry/sdk/internal';
import { parseListenAddress } from '../obs/listen-address.js';
import type { RelayOut } from './topic-relay-out.js';

/** A HELLO must arrive within this long of the connect. */
const HELLO_TIMEOUT_MS = 10_000;

export interface RelayHost {
  /** Opens `topic` of `namespace` to a relay: a subscriber bit on it, or throws (not exported, full). */
  openRelay(
    namespace: string,
    topic: string,
    socket: net.Socket,
    shapes: boolean,
  ): { out: RelayOut; policy: string } | FerryError;
  log: { warn(msg: string): void; info(msg: string): void };
}

export class TopicRelayServer {
  readonly #server: net.Server;
  readonly #host: RelayHost;
  readonly #sockets = new Set<net.Socket>();
  /** The bound address (after listen()). */
  address: { host: string; port: number } | null = null;

  constructor(host: RelayHost) {
    this.#host = host;
    this.#server = net.createServer((s) => this.#accept(s));
  }

  listen(text: string): Promise<void> {
    const { host, port } = parseListenAddress(text);
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const a = this.#server.address() as net.AddressInfo;
        this.address = { host: a.address, port: a.port };
        resolve();
      });
    });
  }

  close(): void {
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
  }

  #accept(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    const dec = new RelayDecoder(0);
    const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    timer.unref();
    const onData = (chunk: Buffer) => {
      let frames: RelayFrame[];
      try {
        frames = dec.push(chunk);
      } catch (err) {
        this.#refuse(socket, 'ERR_FERRY_PROTO_MALFORMED', (err as Error).message);
        return;
      }
      if (frames.length === 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      const f = frames[0] as RelayFrame;
      if (f.kind !== RELAY_KIND.HELLO || frames.length > 1 || dec.pending > 0) {
        this.#refuse(socket, 'ERR_FERRY_PROTO_MALFORMED', 'topic relay: expected one HELLO');
        return;
      }
      const { v, namespace, topic, shapes } = f.json;
      if (v !== RELAY_VERSION) {
        this.#refuse(socket, 'ERR_FERRY_PROTO_VERSION', `topic relay version ${String(v)}`);
        return;
      }
      if (typeof namespace !== 'string' || typeof topic !== 'string') {
        this.#refuse(socket, 'ERR_FERRY_PROTO_MALFORMED', 'topic relay: HELLO without namespace or topic');
        return;
      }
      // shapes: 1 says the importer's subscribers read shape records (TOPIC_VERSION 2); an importer
      // that does not say so (an older ferryd) gets them re-encoded as msgpack (RelayOut).
      const r = this.#host.openRelay(namespace, topic, socket, shapes === 1);
      if (!('out' in r)) {
        this.#host.log.warn(`topic relay from ${socket.remoteAddress}: ${r.message}`);
        this.#refuse(socket, r.code, r.message);
        return;
      }
      const welcome: Record<string, unknown> = { v: RELAY_VERSION, policy: r.policy };
      if (shapes === 1) welcome['shapes'] = 1;
      socket.write(encodeRelayJson(RELAY_KIND.WELCOME, welcome));
      this.#host.log.info(`topic relay: ${namespace}/${topic} to ${r.out.peer}`);
      // Nothing more is expected from the importer: anything it sends is read and dropped.
      socket.on('data', () => {});
    };
    socket.on('data', onData);
  }

  #refuse(socket: net.Socket, code: string, message: string): void {
    socket.end(encodeRelayJson(RELAY_KIND.BYE, { code, message }));
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
