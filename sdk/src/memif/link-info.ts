// What 'up' reports, and the down reason type.
import type { FerryError } from '../errors.js';
import type { MemifMode, MemifRole } from './options.js';

export interface MemifLinkInfo {
  role: MemifRole;
  id: number;
  mode: MemifMode;
  /** Queues in use, from this interface's point of view. */
  queues: { rx: number; tx: number };
  /** log2 of the ring size in use. */
  ringSize: number;
  /** Client: our buffer size. Server: smallest buffer the client has lent so far (0 before any). */
  bufferSize: number;
  /** The peer's application name (HELLO / INIT). */
  peerName: string;
  /** The peer's interface name (CONNECT / CONNECTED). */
  peerIfName: string;
  /** 1 for the first 'up' of this interface, then 2, 3, ... */
  connection: number;
}

/** A 'down' / 'handshake-failed' reason: a FerryError plus what the peer said and what happens next. */
export type MemifDownReason = FerryError & {
  /** The reason string of the peer's DISCONNECT, if it sent one. */
  peerMessage?: string;
  /** Client: a reconnect is scheduled. */
  willRetry?: boolean;
};
