// sys/: Ferry's only native boundary (koffi + libc); everything else reaches the kernel through here.

export { LE as LITTLE_ENDIAN } from './constants.js';
export { Doorbell, ring } from './doorbell.js';
export {
  close,
  dup,
  eventfd,
  eventfdRead,
  eventfdWrite,
  pipe2,
  read,
  setCloexec,
  setNonBlocking,
  write,
} from './fd.js';
export {
  LARGE_READ_BYTES,
  mallocTuning,
  mallocTuningVeto,
  tuneMallocForLargeReads,
} from './malloc-tuning.js';
export { Mapping, mappingStats } from './mapping.js';
export { addSeals, fstatSize, ftruncate, getSeals, memfdCreate, SEAL } from './memfd.js';
export { type RecvResult, recvMsg, sendMsg } from './msg.js';
export {
  MIN_POLL_MS,
  POLL_WAIT_CLEAR,
  POLL_WAIT_CONTENDED,
  PollContention,
  type PollContentionStats,
  RETRY_MAX_MS,
  RETRY_MIN_MS,
} from './poll-contention.js';
export { type FdCallback, type FdEvents, type FdInterest, FdPoller } from './poller.js';
export { parseRunnable, RUN_QUEUE_CLEAR, RUN_QUEUE_OVER, RunQueue, type RunQueueStats } from './run-queue.js';
export { RUN_WAIT_CLEAR, RUN_WAIT_CONTENDED, RUN_WAIT_FREE, RunWait, type RunWaitStats } from './run-wait.js';
export { errnoName } from './sys-error.js';
export {
  type InetAddress,
  isNumericAddress,
  isTcpSocket,
  setTcpNoDelay,
  type TcpInfo,
  type TcpState,
  tcpAddresses,
  tcpConnect,
  tcpConnected,
  tcpDisconnect,
  tcpInfo,
  tcpLocalAddress,
  tcpNoDelay,
  tcpReadEnd,
  tcpSocket,
} from './tcp-socket.js';
export {
  accept,
  bindUnix,
  connectUnix,
  listen,
  peerCredentials,
  shutdown,
  socketName,
  socketpair,
  type UnixSocketType,
  unixSocket,
} from './unix-socket.js';
