/** One app's end of a connection, and its transitions (checked against states.ts). */
import { ferryError } from '@ferry/sdk/internal';
import { nextState, type SessionEvent, type SessionState } from './states.js';

/**
 * `ct`: app to app through the fifos; `tcp`: ferryd carries the bytes over a kernel socket; `udp`:
 * a datagram endpoint's relay, ferryd carries its datagrams over a kernel UDP socket; `tls`: as
 * `tcp`, with ferryd terminating TLS on that socket. A transport added later names its own
 * (transport/transport.ts): the name goes to the app in `connect-reply` and `accepted`.
 */
export type SessionTransport = 'ct' | 'tcp' | 'udp' | 'tls' | (string & {});

/**
 * ferryd's end of a session a transport carries (tcp-pump.ts, udp-relay.ts): what the session
 * layer tells it. A cut-through session has none (its other end is the peer app's session).
 */
export interface SessionEnd {
  /** ferryd no longer touches the session's resources (fifos, kernel socket). */
  readonly done: boolean;
  /** Bytes ferryd moved for the session, each way (for `ferry show`). */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The app sent close: finish what it sent, then let go. */
  close(): void;
  /** The app sent reset: reset the transport's side too. */
  reset(): void;
  /** The app is gone: reset, and stop touching the session's resources now. */
  abort(): void;
  /** What else the end can tell `ferry show` (a handed socket: the kernel's TCP_INFO). */
  describe?(): Record<string, unknown>;
}

export class Session {
  readonly id: number;
  readonly appId: number;
  readonly transport: SessionTransport;
  readonly localUri: string;
  readonly remoteUri: string;
  readonly createdAt = Date.now();
  /** Pair segment and slot of the fifo pair; `side` says which fifo this end writes. Segment 0:
   *  the session has no fifo pair (its transport gives the app something else). */
  readonly segmentId: number;
  readonly slot: number;
  readonly side: 'a' | 'b';
  readonly listenerId: number;
  state: SessionState = 'established';
  /** The other end, for cut-through sessions. */
  peer: Session | null = null;
  /** ferryd's end, for sessions a transport carries (tcp, tls, udp): it moves the bytes to a kernel socket. */
  end: SessionEnd | null = null;
  /** The app has let go of the fifos (sent close, or is gone). */
  released = false;
  /** The fifo pair went back to the segment. */
  freed = false;
  /**
   * A fast connect ferryd counted from its pool pair's words before it entered the table (a lock):
   * the metrics counted its opening then (session/fast-pools.ts), not again when it is put here.
   */
  openCounted = false;

  constructor(init: {
    id: number;
    appId: number;
    localUri: string;
    remoteUri: string;
    segmentId: number;
    slot: number;
    side: 'a' | 'b';
    listenerId: number;
    transport: SessionTransport;
  }) {
    this.id = init.id;
    this.appId = init.appId;
    this.transport = init.transport;
    this.localUri = init.localUri;
    this.remoteUri = init.remoteUri;
    this.segmentId = init.segmentId;
    this.slot = init.slot;
    this.side = init.side;
    this.listenerId = init.listenerId;
  }

  /** Applies an event; throws ERR_FERRY_SESSION_STATE when the table refuses it. */
  apply(event: SessionEvent): SessionState {
    const next = nextState(this.state, event);
    if (next === undefined) {
      throw ferryError('ERR_FERRY_SESSION_STATE', `session ${this.id}: '${event}' in state '${this.state}'`);
    }
    this.state = next;
    return next;
  }

  /** Like apply(), but an event the table does not list leaves the state alone. */
  tryApply(event: SessionEvent): boolean {
    const next = nextState(this.state, event);
    if (next === undefined) return false;
    this.state = next;
    return true;
  }

  /** Bytes ferryd moved for this session (none for cut-through). */
  get daemonBytes(): number {
    return this.end ? this.end.bytesIn + this.end.bytesOut : 0;
  }

  get hasFifos(): boolean {
    return this.segmentId !== 0;
  }

  get terminal(): boolean {
    return this.state === 'closed' || this.state === 'reset';
  }
}
