// @ferry/sdk/memif: memif 2.0 interfaces (see README.md in this folder).
export { FerryError } from '../errors.js';
export { MemifRxBurst, type MemifSegment, MemifTxBurst } from './bursts.js';
export type { MemifDownReason, MemifLinkInfo } from './link-info.js';
export { createMemif, Memif, type MemifEvents, type MemifPacketHandler, type MemifState } from './memif.js';
export type { MemifMode, MemifOptions, MemifRole, MemifRxMode } from './options.js';
export type { MemifQueueStats, MemifStats } from './stats.js';
