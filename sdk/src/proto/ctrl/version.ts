// Protocol version and feature negotiation at HELLO: pure arithmetic on the two sides' ranges.
import { PROTO_MIN_VERSION, PROTO_VERSION } from './messages.js';

/**
 * The highest version both sides speak, or null when their ranges [min, version] do not overlap
 * (the daemon then replies ERR_FERRY_PROTO_VERSION). An inverted range (min > version) overlaps nothing.
 */
export function negotiate(
  remoteVersion: number,
  remoteMin: number,
  localVersion: number = PROTO_VERSION,
  localMin: number = PROTO_MIN_VERSION,
): number | null {
  const high = Math.min(remoteVersion, localVersion);
  const low = Math.max(remoteMin, localMin);
  return Number.isSafeInteger(high) && Number.isSafeInteger(low) && high >= low ? high : null;
}

/** Feature bits both sides have. `>>> 0` keeps bit 31 positive: `&` yields a signed 32-bit result. */
export function negotiateFeatures(remote: number, local: number): number {
  return (remote & local) >>> 0;
}
