/** An attached application as ferryd sees it: who it is, its channel and what it owns. */
import type { CtrlChannel, CtrlMessage, RingWhen } from '@ferry/sdk/internal';

export interface Credentials {
  pid: number;
  uid: number;
  gid: number;
}

export class App {
  readonly id: number;
  readonly name: string;
  readonly namespace: string;
  readonly creds: Credentials;
  readonly channel: CtrlChannel;
  /** Write end of the app's data doorbell: handed to each peer that shares a segment with it. */
  readonly doorbellFd: number;
  readonly attachedAt = Date.now();
  readonly sessions = new Set<number>();
  readonly listeners = new Set<number>();
  /** Pair segments this app maps. */
  readonly segments = new Set<number>();
  badMessages = 0;
  /** Feature bits negotiated at HELLO (FEATURE.*). */
  features = 0;
  /** Sessions its lent listeners may hold (their windows), counted against maxSessionsPerApp. */
  lentReserved = 0;

  constructor(
    id: number,
    name: string,
    namespace: string,
    creds: Credentials,
    channel: CtrlChannel,
    doorbellFd: number,
  ) {
    this.id = id;
    this.name = name;
    this.namespace = namespace;
    this.creds = creds;
    this.channel = channel;
    this.doorbellFd = doorbellFd;
  }

  /**
   * `ring` 'soon' rings the app's wake pipe at the end of this loop turn (see CtrlChannel.send):
   * for connect replies and accepted events, which come in bursts under load (several connects
   * complete, or several connections are accepted, in one turn), so that the app wakes once for them.
   */
  send(msg: CtrlMessage, fds: readonly number[] = [], ring: RingWhen = 'now'): void {
    this.channel.send(msg, fds, ring);
  }
}
