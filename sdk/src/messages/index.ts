/** @ferry/sdk/messages: msgpack values between apps, request/response, loans, publish/subscribe. */

export { connectMessages, createMessageServer } from './connect-messages.js';
export { OutgoingLoan, ReceivedLoan } from './loan.js';
export {
  type ChannelHandlers,
  MessageChannel,
  type MessageContext,
  type RequestContext,
  type RequestOptions,
} from './message-channel.js';
export { MessageServer, type MessageServerOptions } from './message-server.js';
export type { ChannelOptions, ConnectMessagesOptions } from './options.js';
export { RemoteError, type RemoteErrorInfo } from './remote-error.js';
export {
  Publisher,
  type PublishOptions,
  publish,
  type SubscribeOptions,
  Subscriber,
  subscribe,
} from './topics.js';
