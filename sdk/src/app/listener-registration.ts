/**
 * A listener registered with ferryd, across ferryd's restarts: what Server and MessageServer share.
 *
 * It routes `accepted` events for its listener id to its owner. On the attachment's 'lost' the id
 * dies with ferryd (accepts stop matching); on 'reattached' it listens again on the bound URI (so
 * a port picked with :0 is kept), with the same TLS and handoff options, and tells its owner. A
 * failure to listen again (someone took the address meanwhile) goes to the owner, except ferryd
 * going away again: the next 'reattached' retries.
 */
import type { FerryError } from '../errors.js';
import type { Accepted } from '../proto/ctrl/messages.js';
import type { Attachment, HandedFd } from './attachment.js';
import { type ListenParams, requestListen, requestUnlisten } from './session-control.js';

/** What the owner of a listener hears. */
export interface ListenerOwner {
  /** A session ferryd accepted for this listener (`handed`: a kernel socket, handoff mode). */
  accepted(msg: Accepted, handed: HandedFd | null): void;
  /** ferryd went away; accepts resume once it is back and the listener registered again. */
  lost(err: FerryError): void;
  /** Listening again, with a ferryd that came back. */
  reattached(): void;
  /** Listening again failed; the registration stays (the next reattach tries again). */
  relistenFailed(err: FerryError): void;
  /** The attachment is gone for good. Without this hook the owner is not told. */
  closed?(err: FerryError): void;
}

export class ListenerRegistration {
  readonly att: Attachment;
  #params: ListenParams;
  #owner: ListenerOwner;
  /** ferryd's id of the listener: 0 while ferryd is away or after close. */
  #id: number;
  #active = true;

  private constructor(att: Attachment, params: ListenParams, id: number, owner: ListenerOwner) {
    this.att = att;
    this.#params = params;
    this.#id = id;
    this.#owner = owner;
    att.on('accepted', this.#onAccepted);
    att.on('lost', this.#onLost);
    att.on('reattached', this.#onReattached);
    if (owner.closed) att.once('closed', this.#onClosed);
  }

  /** Registers a listener on `params.uri`; rejects with ferryd's refusal. */
  static async listen(
    att: Attachment,
    params: ListenParams,
    owner: ListenerOwner,
  ): Promise<ListenerRegistration> {
    const reply = await requestListen(att, params);
    return new ListenerRegistration(att, { ...params, uri: reply.uri }, reply.listener, owner);
  }

  /** ferryd's id of the listener now (0 while ferryd is away, or before listening again). */
  get id(): number {
    return this.#id;
  }

  /** The URI bound (a port chosen for :0 filled in). */
  get uri(): string {
    return this.#params.uri;
  }

  /** Stops routing events and gives the listener back to ferryd; resolves once it answered. */
  close(): Promise<void> {
    const id = this.#id;
    this.detach();
    return id !== 0 ? requestUnlisten(this.att, id) : Promise.resolve();
  }

  /** Stops routing events without telling ferryd (the listener is already gone there). */
  detach(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#id = 0;
    this.att.off('accepted', this.#onAccepted);
    this.att.off('lost', this.#onLost);
    this.att.off('reattached', this.#onReattached);
    this.att.off('closed', this.#onClosed);
  }

  readonly #onAccepted = (msg: Accepted, handed: HandedFd | null): void => {
    if (this.#active && msg.listener === this.#id) this.#owner.accepted(msg, handed);
  };

  readonly #onLost = (err: FerryError): void => {
    this.#id = 0;
    this.#owner.lost(err);
  };

  readonly #onReattached = (): void => {
    if (!this.#active) return;
    const att = this.att;
    requestListen(att, this.#params).then(
      (reply) => {
        if (!this.#active) {
          void requestUnlisten(att, reply.listener);
          return;
        }
        this.#id = reply.listener;
        this.#owner.reattached();
      },
      (err: FerryError) => {
        // Lost again before the reply: the next 'reattached' retries.
        if (err.code === 'ERR_FERRY_DAEMON_LOST' || err.code === 'ERR_FERRY_DAEMON_UNREACHABLE') return;
        if (this.#active) this.#owner.relistenFailed(err);
      },
    );
  };

  readonly #onClosed = (err: FerryError): void => {
    if (this.#active) this.#owner.closed?.(err);
  };
}
