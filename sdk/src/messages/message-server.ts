/**
 * MessageServer: listen(uri) registers a listener with ferryd, as net-shaped servers do; each
 * accepted session becomes a MessageChannel served by the server's handlers. Across a ferryd
 * restart it listens again on the same URI (as Server does).
 */
import { EventEmitter } from 'node:events';
import { getAttachment } from '../api/attachments.js';
import { type AttachmentOptions, resolveUri } from '../api/options.js';
import { AppSession } from '../app/app-session.js';
import type { Attachment } from '../app/attachment.js';
import { type FerryError, ferryError } from '../errors.js';
import type { Accepted, ListenReply } from '../proto/ctrl/messages.js';
import { type ChannelHandlers, MessageChannel } from './message-channel.js';
import { type ChannelOptions, type ResolvedChannelOptions, resolveChannelOptions } from './options.js';

export interface MessageServerOptions extends ChannelHandlers, ChannelOptions, AttachmentOptions {
  /** Called with each new channel (also emitted as 'channel'). */
  onChannel?: (channel: MessageChannel) => void;
}

export class MessageServer extends EventEmitter {
  listening = false;
  readonly #opts: MessageServerOptions;
  readonly #channelOpts: ResolvedChannelOptions;
  readonly #handlers: ChannelHandlers;
  #att: Attachment | null = null;
  #listener = 0;
  #uri = '';
  #channels = new Set<MessageChannel>();
  #ready: Promise<void> | null = null;

  constructor(opts: MessageServerOptions = {}) {
    super();
    this.#opts = opts;
    this.#channelOpts = resolveChannelOptions(opts);
    for (const k of ['onRequest', 'onMessage', 'onChannel'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'function') {
        throw ferryError('ERR_INVALID_ARG_TYPE', `${k} must be a function`);
      }
    }
    this.#handlers = {
      ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
      ...(opts.onMessage ? { onMessage: opts.onMessage } : {}),
      exposeStack: opts.exposeStack === true,
    };
  }

  /** Starts listening on `uri` (same URIs and rules as sockets); 'listening' when done. */
  listen(uri: string, cb?: () => void): this {
    if (this.listening || this.#ready) throw ferryError('ERR_FERRY_SERVER_LISTENING');
    const target = resolveUri(uri);
    if (cb) this.once('listening', cb);
    this.#ready = (async () => {
      const att = await getAttachment(this.#opts);
      const reply = (await att.request({ t: 'listen', id: 0, uri: target })) as ListenReply;
      this.#att = att;
      this.#listener = reply.listener;
      this.#uri = reply.uri;
      this.listening = true;
      att.ref();
      att.on('accepted', this.#onAccepted);
      att.on('lost', this.#onLost);
      att.on('reattached', this.#onReattached);
      this.emit('listening');
    })();
    this.#ready.catch((err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    return this;
  }

  /** Resolves once listening; rejects with the listen's error. */
  ready(): Promise<void> {
    if (!this.#ready) return Promise.reject(ferryError('ERR_FERRY_NOT_ATTACHED', 'listen() was not called'));
    return this.#ready;
  }

  /** The bound URI (a port chosen with :0 filled in), or null before listening. */
  get uri(): string | null {
    return this.listening ? this.#uri : null;
  }

  /** Channels open now. */
  get channels(): ReadonlySet<MessageChannel> {
    return this.#channels;
  }

  /** Stops listening and closes every channel; resolves once they are closed. */
  async close(): Promise<void> {
    const att = this.#att;
    if (att && this.listening) {
      this.listening = false;
      this.#detach(att);
      if (this.#listener !== 0)
        await att.request({ t: 'unlisten', id: 0, listener: this.#listener }).catch(() => {});
      att.unref();
    }
    await Promise.all([...this.#channels].map((c) => c.close()));
    this.emit('close');
  }

  readonly #onAccepted = (msg: Accepted): void => {
    const att = this.#att;
    if (!att || msg.listener !== this.#listener || !this.listening) return;
    const seg = msg.fifos ? att.segments.get(msg.fifos.segment) : undefined;
    if (!seg || !msg.fifos) {
      att.notify({ t: 'reset', id: 0, session: msg.session });
      return;
    }
    const session = new AppSession(msg.session, seg, msg.fifos, msg.transport);
    const ch = new MessageChannel(
      { att, session, localUri: msg.localUri, remoteUri: msg.remoteUri, transport: msg.transport },
      this.#channelOpts,
      this.#handlers,
    );
    this.#channels.add(ch);
    ch.once('close', () => this.#channels.delete(ch));
    this.#opts.onChannel?.(ch);
    this.emit('channel', ch);
  };

  #detach(att: Attachment): void {
    att.off('accepted', this.#onAccepted);
    att.off('lost', this.#onLost);
    att.off('reattached', this.#onReattached);
  }

  readonly #onLost = (err: Error): void => {
    this.#listener = 0;
    this.emit('ferryd-lost', err);
  };

  readonly #onReattached = (): void => {
    const att = this.#att;
    if (!att || !this.listening) return;
    att.request({ t: 'listen', id: 0, uri: this.#uri }).then(
      (r) => {
        const reply = r as ListenReply;
        if (!this.listening) {
          att.request({ t: 'unlisten', id: 0, listener: reply.listener }).catch(() => {});
          return;
        }
        this.#listener = reply.listener;
        this.emit('reattached');
      },
      (err: FerryError) => {
        if (err.code === 'ERR_FERRY_DAEMON_LOST' || err.code === 'ERR_FERRY_DAEMON_UNREACHABLE') return;
        if (this.listenerCount('error') > 0) this.emit('error', err);
      },
    );
  };
}
