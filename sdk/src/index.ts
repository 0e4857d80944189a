/** @ferry/sdk public surface: explicit named exports only. */

export { connect, createConnection, createServer } from './api/connect.js';
export {
  type BindOptions,
  createDatagramSocket,
  DatagramSocket,
  type DatagramSocketOptions,
  type RemoteInfo,
} from './api/datagram-socket.js';
export {
  type FerrydLostEvent,
  type FerrydReattachedEvent,
  ferrydEvents,
} from './api/ferryd-events.js';
export type {
  AttachmentOptions,
  ConnectOptions,
  ListenOptions,
  ServerOptions,
  TlsConnectOptions,
  TlsServerOptions,
} from './api/options.js';
export { Server } from './api/server.js';
export { Socket, type SocketOptions } from './api/socket.js';
export { ReadView, WriteReservation } from './api/zero-copy.js';
export { ERROR_MESSAGES, type ErrorCode, FerryError } from './errors.js';
export type { NotifyMode } from './proto/ctrl/messages.js';
