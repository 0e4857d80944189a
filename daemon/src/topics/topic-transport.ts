/**
 * The `topic://` transport: publish/subscribe in shared memory. A connect to `topic://NAME:1`
 * publishes, `topic://NAME:2` subscribes; the session has no fifos, and its reply carries the
 * topic's segment (and, for publishers, the topic's doorbell). Topics live in their namespace
 * (the same name in two namespaces is two topics) and go when their last member does. The
 * session's end is the membership: closing it, resetting it or the app dying leaves the topic.
 */
import { type FdRole, ferryError, TOPIC_MAX_RING_BYTES, TOPIC_MIN_RING_BYTES } from '@ferry/sdk/internal';
import type { SessionEnd } from '../session/session.js';
import type {
  ConnectRequest,
  EndEvents,
  Opened,
  Transport,
  TransportHost,
  TransportListener,
} from '../transport/transport.js';
import { Topic } from './topic.js';

/** Ring per publisher when the first member asks for none (txFifoSize 0). */
const DEFAULT_RING_BYTES = 1024 * 1024;
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
  publishers: { app: number; session: number; slot: number; messages: number; messagesPerSec: number }[];
  subscribers: { app: number; session: number; dropped: number }[];
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

  constructor(host: TransportHost) {
    this.#host = host;
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
    const key = `${c.app.namespace}|${name}`;
    let t = this.#topics.get(key);
    if (!t) {
      t = new Topic(c.app.namespace, name, ringBytesFor(c.req.txFifoSize));
      this.#topics.set(key, t);
    }
    const topic = t;
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
      publishers: [...t.publishers.values()].map((p) => {
        const messages = t.seg.slotSeq(p.index);
        const key = `${t.namespace}|${t.name}|${p.sessionId}`;
        const prev = this.#samples.get(key) ?? { at: now - 1, messages: 0 };
        this.#samples.set(key, { at: now, messages });
        const rate = ((messages - prev.messages) >>> 0) / Math.max(0.001, (now - prev.at) / 1000);
        return {
          app: p.app.id,
          session: p.sessionId,
          slot: p.index,
          messages,
          messagesPerSec: Math.round(rate),
        };
      }),
      subscribers: [...t.subscribers.values()].map((s) => ({
        app: s.app.id,
        session: s.sessionId,
        dropped: t.seg.drops(s.index),
      })),
      wakes: t.wakes,
    }));
  }

  #dropIfEmpty(key: string, t: Topic): void {
    if (!t.empty || this.#topics.get(key) !== t) return;
    this.#topics.delete(key);
    t.release();
  }
}

function ringBytesFor(requested: number): number {
  if (!(requested > 0)) return DEFAULT_RING_BYTES;
  let n = TOPIC_MIN_RING_BYTES;
  while (n < requested && n < TOPIC_MAX_RING_BYTES) n *= 2;
  return n;
}
