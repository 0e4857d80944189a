// memif control messages as typed objects (spec/memif.md §3). One variant per wire type.
import type { MemifModeName } from './constants.js';

export interface MemifAck {
  type: 'ack';
}
export interface MemifHello {
  type: 'hello';
  /** Server application name (at most 32 bytes; may fill the field with no NUL). */
  name: string;
  minVersion: number;
  maxVersion: number;
  /** Highest region index the server accepts. */
  maxRegion: number;
  /** Highest S2C ring index (on the wire before C2S). */
  maxS2cRing: number;
  /** Highest C2S ring index. */
  maxC2sRing: number;
  maxLog2RingSize: number;
}
export interface MemifInit {
  type: 'init';
  version: number;
  id: number;
  mode: MemifModeName;
  /** '' = no secret. At most 23 bytes (the field keeps a terminating NUL). */
  secret: string;
  name: string;
}
export interface MemifAddRegion {
  type: 'add-region';
  index: number;
  /** Bytes to map; u64 on the wire, refused above 2^53 - 1. */
  size: number;
}
export interface MemifAddRing {
  type: 'add-ring';
  direction: 'c2s' | 's2c';
  index: number;
  region: number;
  offset: number;
  log2RingSize: number;
}
export interface MemifConnect {
  type: 'connect';
  ifName: string;
}
export interface MemifConnected {
  type: 'connected';
  ifName: string;
}
export interface MemifDisconnect {
  type: 'disconnect';
  code: number;
  reason: string;
}

export type MemifMessage =
  | MemifAck
  | MemifHello
  | MemifInit
  | MemifAddRegion
  | MemifAddRing
  | MemifConnect
  | MemifConnected
  | MemifDisconnect;

export type MemifMessageType = MemifMessage['type'];

export const MEMIF_MESSAGE_TYPES: readonly MemifMessageType[] = [
  'ack',
  'hello',
  'init',
  'add-region',
  'add-ring',
  'connect',
  'connected',
  'disconnect',
];

/** Whether a message of this type carries a descriptor (required), or must not carry one. */
export function memifMessageCarriesFd(type: MemifMessageType): boolean {
  return type === 'add-region' || type === 'add-ring';
}
