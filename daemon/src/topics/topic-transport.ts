/**
 * The `topic://` transport: publish/subscribe in shared memory. A connect to `topic://NAME:1`
 * publishes, `topic://NAME:2` subscribes; the session has no fifos, and its reply carries the
 * topic's segment (and, for publishers, the topic's doorbell). Topics live in their namespace
 * (the same name in two namespaces is two topics) and go when their last member does. The
 * session's end is the membership: closing it, resetting it or the app dying leaves the topic.
 */

import type { Socket } from 'node:net';
import {
  type FdRole,
  type FerryError,
  ferryError,
  TOPIC_MAX_RING_BYTES,
  TOPIC_MIN_RING_BYTES,
} from '@ferry/sdk/internal';
import type { SessionEnd } from '../session/session.js';
import type {
  ConnectRequest,
  EndEvents,
  Opened,
  Transport,
  TransportHost,
  TransportListener,
} from '../transport/transport.js';
import { Topic, type TopicPolicy, type Topic as TopicT } from './topic.js';
import { TopicImport } from './topic-import.js';
import { RelayOut } from './topic-relay-out.js';
import { TopicRelayServer } from './topic-relay-server.js';

/**
 * Ring per publisher when the first member asks for none (txFifoSize 0). 4 MiB: a sleeping
 * subscriber is woken through ferryd, and on a loaded machine that took long enough for a
 * publisher at 0.4-0.9 M msgs/s to lap half of a 1 MiB ring (about 8,000 small messages); pages
 * are only used once a publisher writes them (BENCHMARKS.md, topic7).
 */
const DEFAULT_RING_BYTES = 4 * 1024 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
export const TOPIC_ROLE = { PUBLISH: 1, SUBSCRIBE: 2 } as const;

class TopicEnd implements SessionEnd {
  done = false;
  readonly bytesIn = 0;
  readonly bytesOut = 0;
  readonly #events: EndEvents;
  readonly #leave: () => void;

  constructor(events: EndEvents, leave: () => void) {
    this.#events = events;
    this.#leave = leave;
  }

  close(): void {
    this.#finish();
  }

  reset(): void {
    this.#finish();
  }

  abort(): void {
    this.#finish();
  }

  #finish(): void {
    if (this.done) return;
    this.done = true;
    this.#leave();
    this.#events.done();
  }
}

export interface TopicRow {
  namespace: string;
  name: string;
  ringBytes: number;
  policy: TopicPolicy['slow'];
  publishers: { app: number; session: number; slot: number; messages: number; messagesPerSec: number }[];
  subscribers: { app: number; session: number; dropped: number }[];
  /** Streams to other hosts' ferryds reading this topic (`out`), or feeding it from one (`in`). */
  relays: { direction: 'out' | 'in'; peer: string; messages: number; dropped: number }[];
  wakes: number;
}

export class TopicTransport implements Transport {
  readonly scheme = 'topic';
  readonly kind = 'stream' as const;
  readonly tlsOptions = false;
  readonly #host: TransportHost;
  readonly #topics = new Map<string, Topic>();
  /** Last sample of each publisher's count, for rates between two `ferry show topics`. */
  readonly #samples = new Map<string, { at: number; messages: number }>();

  readonly #relayServer: TopicRelayServer | null = null;
  readonly #imports = new Map<TopicT, TopicImport>();

  constructor(host: TransportHost) {
    this.#host = host;
    const listen = host.config.topics.relayListen;
    if (listen !== null) {
      const server = new TopicRelayServer({
        openRelay: (ns, name, socket, shapes) => this.#openRelay(ns, name, socket, shapes),
        log: host.log,
      });
      this.#relayServer = server;
      server.listen(listen).then(
        () => host.log.info(`topic relay listening on ${listen}`),
        (err: Error) => host.log.warn(`topic relay cannot listen on ${listen}: ${err.message}`),
      );
    }
  }

  /** The first `topics.policies` entry naming `name` (or "*"), else lose-oldest. */
  #policyFor(name: string): TopicPolicy {
    const p = this.#host.config.topics.policies.find((x) => x.topic === name || x.topic === '*');
    return p
      ? { slow: p.slow, maxLagBytes: p.maxLagBytes }
      : { slow: 'lose-oldest', maxLagBytes: 4 * 1024 * 1024 };
  }

  #topic(namespace: string, name: string, ringBytes: number): { key: string; topic: TopicT } {
    const key = `${namespace}|${name}`;
    let t = this.#topics.get(key);
    if (!t) {
      t = new Topic(namespace, name, ringBytes, this.#policyFor(name));
      this.#topics.set(key, t);
    }
    return { key, topic: t };
  }

  /** Another host's ferryd asks for `name` of `namespace` (see TopicRelayServer). */
  #openRelay(
    namespace: string,
    name: string,
    socket: Socket,
    shapes: boolean,
  ): { out: RelayOut; policy: string } | FerryError {
    if (!NAME.test(name)) return ferryError('ERR_FERRY_BAD_URI', `'${name}' is not a topic name`);
    const exported = this.#host.config.topics.export.some(
      (e) => e.namespace === namespace && (e.topic === '*' || e.topic === name),
    );
    if (!exported)
      return ferryError('ERR_FERRY_DENIED', `topic '${name}' of namespace '${namespace}' is not exported`);
    const { key, topic } = this.#topic(namespace, name, DEFAULT_RING_BYTES);
    const bit = topic.freeBit();
    if (bit < 0) {
      this.#dropIfEmpty(key, topic);
      return ferryError('ERR_FERRY_LIMIT', `topic '${name}' has no free subscriber slot`);
    }
    const out = new RelayOut(topic, socket, bit, shapes, () => this.#dropIfEmpty(key, topic));
    return { out, policy: topic.policy.slow };
  }

  /** A local subscriber joined `topic`: feed it from another host if the configuration says so. */
  #startImport(key: string, topic: TopicT): void {
    if (topic.stopImport !== null) return;
    const entry = this.#host.config.topics.import.find(
      (e) => e.topic === topic.name && e.namespace === topic.namespace,
    );
    if (!entry) return;
    let imp: TopicImport;
    try {
      imp = new TopicImport(topic, entry, (reason) => {
        this.#host.log.warn(
          `topic import ${topic.namespace}/${topic.name} from ${entry.from} ended: ${reason}`,
        );
        this.#imports.delete(topic);
        topic.stopImport = null;
        // Ended for its subscribers: a new subscriber gets a new topic (and a new stream).
        if (this.#topics.get(key) === topic) this.#topics.delete(key);
        this.#dropIfEmpty(key, topic);
      });
    } catch (err) {
      this.#host.log.warn(`topic import ${topic.name} from ${entry.from}: ${(err as Error).message}`);
      return;
    }
    this.#imports.set(topic, imp);
    topic.stopImport = () => {
      this.#imports.delete(topic);
      imp.stop();
    };
  }

  listen(): Promise<TransportListener> {
    return Promise.reject(
      ferryError(
        'ERR_FERRY_NOT_SUPPORTED',
        'topics are opened with publish() and subscribe(), not listened on',
      ),
    );
  }

  async connect(c: ConnectRequest): Promise<Opened> {
    const name = c.named.host;
    const role = c.named.port;
    if (!NAME.test(name))
      throw ferryError('ERR_FERRY_BAD_URI', `'${name}' is not a topic name ([A-Za-z0-9._-], 1-200)`);
    if (role !== TOPIC_ROLE.PUBLISH && role !== TOPIC_ROLE.SUBSCRIBE) {
      throw ferryError('ERR_FERRY_BAD_URI', `topic role ${role} (1 publish, 2 subscribe)`);
    }
    const { key, topic } = this.#topic(c.app.namespace, name, ringBytesFor(c.req.txFifoSize));
    const index = role === TOPIC_ROLE.PUBLISH ? topic.freeSlot() : topic.freeBit();
    if (index < 0) {
      this.#dropIfEmpty(key, topic);
      throw ferryError(
        'ERR_FERRY_LIMIT',
        `topic '${name}' has no free ${role === 1 ? 'publisher' : 'subscriber'} slot`,
      );
    }
    const { session, events } = this.#host.place({
      app: c.app,
      local: `topic://${name}:${index + 1}`,
      remote: `topic://${name}:${role}`,
      listenerId: 0,
      transport: 'topic',
      fifos: null,
    });
    const member = { app: c.app, sessionId: session.id, index };
    if (role === TOPIC_ROLE.PUBLISH) topic.addPublisher(member);
    else {
      topic.seg.clearSubscriber(index);
      topic.subscribers.set(index, member);
      this.#startImport(key, topic);
    }
    session.end = new TopicEnd(events, () => {
      if (role === TOPIC_ROLE.PUBLISH) topic.removePublisher(index);
      else topic.subscribers.delete(index);
      this.#dropIfEmpty(key, topic);
    });
    const roles: FdRole[] = role === TOPIC_ROLE.PUBLISH ? ['segment', 'doorbell'] : ['segment'];
    const fds = role === TOPIC_ROLE.PUBLISH ? [topic.seg.fd, topic.doorbell.ringFd] : [topic.seg.fd];
    return { session, fds: { roles, fds } };
  }

  stop(): void {
    this.#relayServer?.close();
    for (const t of this.#topics.values()) t.release();
    this.#topics.clear();
  }

  stats(): Record<string, number> {
    let pubs = 0;
    let subs = 0;
    for (const t of this.#topics.values()) {
      pubs += t.publishers.size;
      subs += t.subscribers.size;
    }
    return { topics: this.#topics.size, publishers: pubs, subscribers: subs };
  }

  /** What `ferry show topics` prints. */
  rows(): TopicRow[] {
    const now = Date.now();
    return [...this.#topics.values()].map((t) => ({
      namespace: t.namespace,
      name: t.name,
      ringBytes: t.seg.ringBytes,
      policy: t.policy.slow,
      publishers: [...t.publishers.values()].map((p) => {
        const messages = t.seg.slotSeq(p.index);
        const key = `${t.namespace}|${t.name}|${p.sessionId}`;
        // First look: the rate since the publisher joined (not its whole count over a millisecond).
        const prev = this.#samples.get(key) ?? { at: p.joinedAt ?? now, messages: 0 };
        this.#samples.set(key, { at: now, messages });
        const rate = ((messages - prev.messages) >>> 0) / Math.max(0.001, (now - prev.at) / 1000);
        return {
          app: p.app?.id ?? 0,
          session: p.sessionId,
          slot: p.index,
          messages,
          messagesPerSec: Math.round(rate),
        };
      }),
      subscribers: [...t.subscribers.values()]
        .filter((s) => s.app !== null)
        .map((s) => ({
          app: s.app?.id ?? 0,
          session: s.sessionId,
          dropped: t.seg.drops(s.index),
        })),
      relays: [
        ...[...t.relays].map((r) => {
          const out = r as RelayOut;
          return { direction: 'out' as const, peer: out.peer, messages: out.forwarded, dropped: out.dropped };
        }),
        ...(this.#imports.has(t)
          ? [
              {
                direction: 'in' as const,
                peer: this.#imports.get(t)?.from ?? '',
                messages: this.#imports.get(t)?.received ?? 0,
                dropped: this.#imports.get(t)?.lost ?? 0,
              },
            ]
          : []),
      ],
      wakes: t.wakes,
    }));
  }

  #dropIfEmpty(key: string, t: TopicT): void {
    if (!t.empty) return;
    // An ended topic left the table already; it is released all the same once nobody uses it.
    if (this.#topics.get(key) === t) this.#topics.delete(key);
    t.release();
  }
}

function ringBytesFor(requested: number): number {
  if (!(requested > 0)) return DEFAULT_RING_BYTES;
  let n = TOPIC_MIN_RING_BYTES;
  while (n < requested && n < TOPIC_MAX_RING_BYTES) n *= 2;
  return n;
}
