/**
 * Namespace tokens. ferryd keeps only a token's sha256; an app's token is hashed and the two
 * hashes compared with timingSafeEqual (equal lengths whatever was sent, so neither the length
 * nor the content of the secret leaks through timing). The fingerprint `ferry show` prints is a
 * separate, domain-separated hash, cut to 8 hex digits: enough to tell which token is loaded,
 * useless for guessing it (tokens must be at least 8 characters; use long random ones).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function tokenMatches(expectedHash: Buffer, given: string): boolean {
  return timingSafeEqual(expectedHash, hashToken(given));
}

/** What `ferry show` prints for a token: 8 hex digits of a hash of its hash. */
export function tokenFingerprint(tokenHash: Buffer): string {
  return createHash('sha256').update('ferry-token-fingerprint\0').update(tokenHash).digest('hex').slice(0, 8);
}
