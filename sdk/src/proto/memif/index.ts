// memif 2.0 control protocol: constants, message types and the 128-byte codec (pure).
export { decodeMemif, encodeMemif, truncateUtf8 } from './codec.js';
export * from './constants.js';
export {
  MEMIF_MESSAGE_TYPES,
  type MemifAck,
  type MemifAddRegion,
  type MemifAddRing,
  type MemifConnect,
  type MemifConnected,
  type MemifDisconnect,
  type MemifHello,
  type MemifInit,
  type MemifMessage,
  type MemifMessageType,
  memifMessageCarriesFd,
} from './messages.js';
export { MEMIF_SAMPLES } from './samples.js';
