/** Options of message channels and servers, their defaults and their checks. */
import type { AttachmentOptions } from '../api/options.js';
import { ferryError } from '../errors.js';

export interface ChannelOptions {
  /** Largest encoded value (or loan) a channel sends or accepts, in bytes. Default 64 MiB. A larger
   *  one is refused with EMSGSIZE (sending), or fails the channel (receiving). */
  maxMessageBytes?: number;
  /** Encoded bytes that may wait behind a full fifo before send() throws ENOBUFS. Default 8 MiB.
   *  send() returns false as soon as anything waits: wait for 'drain' or `await ready()`. */
  maxQueuedBytes?: number;
  /** Default timeout of request(), in ms (ETIMEDOUT). Default 30 000; 0 = none. */
  requestTimeoutMs?: number;
  /** A frame begun by the peer and not continued for this long fails the channel with
   *  ERR_FERRY_MSG_INCOMPLETE. Default 30 000 ms. */
  frameTimeoutMs?: number;
  /** Received values buffered for the iterator before the channel stops reading (the peer's
   *  send() then returns false). Default 1024. */
  highWaterMark?: number;
  /** Requests whose handler has not finished before the channel stops reading. Default 16 384. */
  maxConcurrentRequests?: number;
  /** How long close() waits for queued frames to go out and for the peer's end, in ms. Default 2000. */
  closeTimeoutMs?: number;
}

export interface ConnectMessagesOptions extends ChannelOptions, AttachmentOptions {
  /** Connect timeout in ms (ETIMEDOUT). Default 10 000. */
  timeout?: number;
  /** Fifo sizes in bytes (rounded up to a power of two by ferryd); default: ferryd's. */
  rxFifoSize?: number;
  txFifoSize?: number;
}

export interface ResolvedChannelOptions {
  maxMessageBytes: number;
  maxQueuedBytes: number;
  requestTimeoutMs: number;
  frameTimeoutMs: number;
  highWaterMark: number;
  maxConcurrentRequests: number;
  closeTimeoutMs: number;
}

export const CHANNEL_DEFAULTS: ResolvedChannelOptions = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxQueuedBytes: 8 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  frameTimeoutMs: 30_000,
  highWaterMark: 1024,
  maxConcurrentRequests: 16_384,
  closeTimeoutMs: 2000,
};

/** Largest maxMessageBytes accepted (frame lengths are u32). */
const MAX_MESSAGE_LIMIT = 2 ** 31;

/** Fills in defaults; throws ERR_OUT_OF_RANGE / ERR_INVALID_ARG_TYPE for a bad option. */
export function resolveChannelOptions(o: ChannelOptions = {}): ResolvedChannelOptions {
  const out = { ...CHANNEL_DEFAULTS };
  const keys = Object.keys(CHANNEL_DEFAULTS) as (keyof ResolvedChannelOptions)[];
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || Number.isNaN(v)) {
      throw ferryError('ERR_INVALID_ARG_TYPE', `${k} must be a number, got ${typeof v}`);
    }
    const min = k === 'requestTimeoutMs' || k === 'closeTimeoutMs' ? 0 : 1;
    const max = k === 'maxMessageBytes' ? MAX_MESSAGE_LIMIT : Number.POSITIVE_INFINITY;
    if (!(v >= min && v <= max) || (!Number.isInteger(v) && v !== Number.POSITIVE_INFINITY)) {
      throw ferryError('ERR_OUT_OF_RANGE', `${k} must be an integer in [${min}, ${max}], got ${v}`);
    }
    out[k] = v;
  }
  return out;
}
