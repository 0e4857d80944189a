/**
 * MessageServer: listen(uri) registers a listener with ferryd, as net-shaped servers do; each
 * accepted session becomes a MessageChannel served by the server's handlers. Across a ferryd
 * restart it listens again on the same URI (as Server does).
 */
import { EventEmitter } from 'node:events';
import { getAttachment } from '../api/attachments.js';
import { type AttachmentOptions, resolveUri } from '../api/options.js';
import { ListenerRegistration } from '../app/listener-registration.js';
import { acceptSession } from '../app/session-control.js';
import { ferryError } from '../errors.js';
import type { Accepted } from '../proto/ctrl/messages.js';
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
  /** The listener with ferryd (registered again after a ferryd restart). */
  #reg: ListenerRegistration | null = null;
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
      const reg = await ListenerRegistration.listen(
        att,
        { uri: target },
        {
          accepted: (msg) => this.#onAccepted(msg),
          lost: (err) => this.emit('ferryd-lost', err),
          reattached: () => this.emit('reattached'),
          relistenFailed: (err) => {
            if (this.listenerCount('error') > 0) this.emit('error', err);
          },
        },
      );
      this.#reg = reg;
      this.#uri = reg.uri;
      this.listening = true;
      att.ref();
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
    const reg = this.#reg;
    if (reg && this.listening) {
      this.listening = false;
      await reg.close();
      reg.att.unref();
    }
    await Promise.all([...this.#channels].map((c) => c.close()));
    this.emit('close');
  }

  #onAccepted(msg: Accepted): void {
    const att = this.#reg?.att;
    if (!att || !this.listening) return;
    const session = acceptSession(att, msg);
    if (!session) return;
    const ch = new MessageChannel(
      { att, session, localUri: msg.localUri, remoteUri: msg.remoteUri, transport: msg.transport },
      this.#channelOpts,
      this.#handlers,
    );
    this.#channels.add(ch);
    ch.once('close', () => this.#channels.delete(ch));
    this.#opts.onChannel?.(ch);
    this.emit('channel', ch);
  }
}
