/** @ferry/sdk/internal: the layers ferryd, the examples and e2e build on. Not a stable API. */
export { ERROR_MESSAGES, type ErrorCode, FerryError, ferryError, isErrorCode } from './errors.js';
export { accept, addSeals, bindUnix, close, connectUnix, Doorbell, dup, errnoName, eventfd, eventfdRead, eventfdWrite, type FdCallback, type FdEvents, type FdInterest, FdPoller, fstatSize, ftruncate, getSeals, LITTLE_ENDIAN, listen, Mapping, mappingStats, memfdCreate, peerCredentials, pipe2, type RecvResult, read, recvMsg, ring, SEAL, sendMsg, setCloexec, setNonBlocking, shutdown, socketName, socketpair, type UnixSocketType, unixSocket, write } from './sys/index.js';
export { CtrlChannel, type CtrlChannelHandlers } from './ctrl/channel.js';
export { canonicalHost, endpointKey, formatUri, isWildcardHost, parseUri, type SessionUri, type UriScheme } from './proto/uri.js';
export type { Accepted, AppRequest, Connect, ConnectReply, CtrlMessage, DaemonMessage, FifoPairRef, Hello, ListenReply, SegmentAdd } from './proto/ctrl/messages.js';
export { CTRL_MAX_FDS, CTRL_MAX_MESSAGE_BYTES, FEATURE, PROTO_MIN_VERSION, PROTO_VERSION } from './proto/ctrl/messages.js';
