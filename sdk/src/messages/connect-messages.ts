/** connectMessages() and createMessageServer(): the entry points of @ferry/sdk/messages. */
import { resolveUri } from '../api/options.js';
import { type ChannelHandlers, MessageChannel } from './message-channel.js';
import { MessageServer, type MessageServerOptions } from './message-server.js';
import { type ConnectMessagesOptions, resolveChannelOptions } from './options.js';
import { connectLink } from './session-link.js';

/**
 * Connects a message channel to a message server at `uri` (same URIs as sockets: a local server is
 * reached through shared memory, a remote one through ferryd over TCP). Resolves once connected.
 */
export async function connectMessages(
  uri: string,
  options: ConnectMessagesOptions & ChannelHandlers = {},
): Promise<MessageChannel> {
  const opts = resolveChannelOptions(options);
  const link = await connectLink(resolveUri(uri), {
    ...options,
    timeoutMs: options.timeout ?? 10_000,
  });
  const handlers: ChannelHandlers = {
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    exposeStack: options.exposeStack === true,
  };
  return new MessageChannel(link, opts, handlers);
}

/** A server whose channels answer requests with `onRequest` and take values with `onMessage`. */
export function createMessageServer(options: MessageServerOptions = {}): MessageServer {
  return new MessageServer(options);
}
