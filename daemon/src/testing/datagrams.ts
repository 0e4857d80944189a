/** Test datagrams: seeded payloads both ends can rebuild, and their checksums. */
import { createHash } from 'node:crypto';
import { seededBytes } from './seeded.js';

/** The payload of datagram `i` of a burst: seeded bytes, so the receiver can check each one. */
export function datagramPayload(seed: number, i: number, size: number): Buffer {
  return seededBytes(seed * 100_003 + i, size);
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
