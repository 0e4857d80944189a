// createMemif options: types, defaults and validation (bad options throw at once).

import { ferryError } from '../errors.js';
import {
  MEMIF_MAX_LOG2_RING_SIZE,
  MEMIF_MAX_RING_INDEX,
  MEMIF_NAME_SIZE,
  MEMIF_SECRET_SIZE,
} from '../proto/memif/index.js';

export type MemifRole = 'client' | 'server';
export type MemifMode = 'ethernet' | 'ip';
export type MemifRxMode = 'interrupt' | 'poll' | 'adaptive';

export interface MemifOptions {
  role: MemifRole;
  /** '/path/to.sock' or '@abstract-name'. */
  socket: string;
  /** Interface id (u32). Default 0. */
  id?: number;
  secret?: string;
  mode?: MemifMode;
  /** From this interface's point of view. Default 1 / 1. */
  queues?: { rx?: number; tx?: number };
  /** log2 of the ring size. Client: requested; server: the largest accepted. Default 10. */
  ringSize?: number;
  /** Client: bytes per buffer. Default 2048. */
  bufferSize?: number;
  rxMode?: MemifRxMode;
  /** App name sent in HELLO / INIT. */
  name?: string;
  /** Interface name sent in CONNECT / CONNECTED. */
  ifName?: string;
  /** Client: retry after failures and after the peer goes away. Default { 50, 2000 }. */
  reconnect?: false | { minDelayMs?: number; maxDelayMs?: number };
  /** Handshake must complete within this. Default 5000. */
  handshakeTimeoutMs?: number;
  /** Most segments of one chained packet, in either direction. Default 64. */
  maxChainSegments?: number;
  /** Server: largest region a client may hand over. Default 1 GiB. */
  maxRegionBytes?: number;
}

export interface ResolvedOptions {
  role: MemifRole;
  socket: string;
  id: number;
  secret: string;
  mode: MemifMode;
  rxQueues: number;
  txQueues: number;
  log2RingSize: number;
  bufferSize: number;
  rxMode: MemifRxMode;
  name: string;
  ifName: string;
  reconnect: { minDelayMs: number; maxDelayMs: number } | null;
  handshakeTimeoutMs: number;
  maxChainSegments: number;
  maxRegionBytes: number;
}

/** Largest segment we accept from a peer's buffer (DPDK's bsize is a u16). */
export const MEMIF_MAX_SEGMENT = 65_535;
/** Offsets in descriptors are u32: a region we create stays below 4 GiB. */
export const MEMIF_MAX_CLIENT_REGION = 2 ** 32 - 1;

function int(v: unknown, what: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw ferryError('ERR_INVALID_ARG_TYPE', `${what} must be an integer`);
  if (v < min || v > max) throw ferryError('ERR_OUT_OF_RANGE', `${what} must be in ${min}..${max}, got ${v}`);
  return v;
}

function str(v: unknown, what: string, maxBytes: number, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string') throw ferryError('ERR_INVALID_ARG_TYPE', `${what} must be a string`);
  if (v.includes('\0') || Buffer.byteLength(v) > maxBytes) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `${what} must be at most ${maxBytes} bytes of UTF-8, no NUL`);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, what: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) {
    throw ferryError(
      'ERR_INVALID_ARG_VALUE',
      `${what} must be one of ${allowed.join(', ')}, got ${String(v)}`,
    );
  }
  return v as T;
}

export function resolveOptions(o: MemifOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null)
    throw ferryError('ERR_INVALID_ARG_TYPE', 'options must be an object');
  const role = oneOf(o.role, 'role', ['client', 'server'] as const, 'client');
  if (o.role === undefined) throw ferryError('ERR_INVALID_ARG_VALUE', "role must be 'client' or 'server'");
  if (typeof o.socket !== 'string' || o.socket.length < 2 || o.socket.includes('\0')) {
    throw ferryError('ERR_INVALID_ARG_VALUE', "socket must be a path or '@name'");
  }
  if (Buffer.byteLength(o.socket) > 107)
    throw ferryError('ERR_INVALID_ARG_VALUE', 'socket name longer than 107 bytes');
  const q = o.queues ?? {};
  if (typeof q !== 'object' || q === null)
    throw ferryError('ERR_INVALID_ARG_TYPE', 'queues must be { rx, tx }');
  const rc = o.reconnect;
  let reconnect: ResolvedOptions['reconnect'] = null;
  if (role === 'client' && rc !== false) {
    const minDelayMs = int(rc?.minDelayMs, 'reconnect.minDelayMs', 1, 60_000, 50);
    const maxDelayMs = int(
      rc?.maxDelayMs,
      'reconnect.maxDelayMs',
      minDelayMs,
      600_000,
      Math.max(minDelayMs, 2000),
    );
    reconnect = { minDelayMs, maxDelayMs };
  }
  const r: ResolvedOptions = {
    role,
    socket: o.socket,
    id: int(o.id, 'id', 0, 0xffff_ffff, 0),
    secret: str(o.secret, 'secret', MEMIF_SECRET_SIZE - 1, ''),
    mode: oneOf(o.mode, 'mode', ['ethernet', 'ip'] as const, 'ethernet'),
    rxQueues: int(q.rx, 'queues.rx', 1, MEMIF_MAX_RING_INDEX, 1),
    txQueues: int(q.tx, 'queues.tx', 1, MEMIF_MAX_RING_INDEX, 1),
    log2RingSize: int(o.ringSize, 'ringSize', 1, MEMIF_MAX_LOG2_RING_SIZE, 10),
    bufferSize: int(o.bufferSize, 'bufferSize', 64, 65_535, 2048),
    rxMode: oneOf(o.rxMode, 'rxMode', ['interrupt', 'poll', 'adaptive'] as const, 'interrupt'),
    name: str(o.name, 'name', MEMIF_NAME_SIZE, 'ferry'),
    ifName: str(o.ifName, 'ifName', MEMIF_NAME_SIZE, `memif${o.id ?? 0}`.slice(0, MEMIF_NAME_SIZE)),
    reconnect,
    handshakeTimeoutMs: int(o.handshakeTimeoutMs, 'handshakeTimeoutMs', 1, 600_000, 5000),
    maxChainSegments: int(o.maxChainSegments, 'maxChainSegments', 1, 1024, 64),
    maxRegionBytes: int(o.maxRegionBytes, 'maxRegionBytes', 4096, 2 ** 32, 2 ** 30),
  };
  if (role === 'client') {
    const size = clientRegionLayout(r.txQueues, r.rxQueues, r.log2RingSize, r.bufferSize).size;
    if (size > MEMIF_MAX_CLIENT_REGION) {
      throw ferryError(
        'ERR_OUT_OF_RANGE',
        `queues x ring size x buffer size need ${size} bytes, above 4 GiB`,
      );
    }
  }
  return r;
}

/**
 * Our client's region 0 (DPDK copy-mode layout, spec §7.2): all C2S rings, then all S2C rings,
 * then every buffer, each ring's 2^log2 buffers together (C2S rings first).
 */
export function clientRegionLayout(
  c2s: number,
  s2c: number,
  log2: number,
  bufferSize: number,
): { stride: number; buffersAt: number; size: number } {
  const slots = 2 ** log2;
  const stride = 128 + 16 * slots;
  const ringsEnd = (c2s + s2c) * stride;
  const buffersAt = Math.ceil(ringsEnd / 64) * 64;
  return { stride, buffersAt, size: buffersAt + (c2s + s2c) * slots * bufferSize };
}
