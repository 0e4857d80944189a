// The server maps what the client hands over, after checking it (spec §11, items 5 and 6).
// Every check runs before anything is mapped or touched; failures are ERR_FERRY_MEMIF_BAD_MEMORY
// with the DISCONNECT string to send.

import { fstatSync, readlinkSync } from 'node:fs';
import { type FerryError, ferryError } from '../errors.js';
import { memifRingBytes } from '../proto/memif/index.js';
import { fstatSize, getSeals, Mapping, SEAL, setNonBlocking } from '../sys/index.js';
import { closeQuietly, type OwnedRegion } from './connection.js';
import { MemifRing, regionView } from './ring.js';

/** A refusal: the error for the application and the reason for the peer. */
export class Refusal extends Error {
  readonly error: FerryError;
  readonly reply: string;
  constructor(error: FerryError, reply: string) {
    super(error.message);
    this.error = error;
    this.reply = reply;
  }
}

export function refuse(code: FerryError['code'], reply: string, detail?: string): Refusal {
  return new Refusal(ferryError(code, detail ? `${reply}: ${detail}` : reply), reply);
}

export interface PendingRegion {
  fd: number;
  size: number;
}
export interface PendingRing {
  index: number;
  region: number;
  offset: number;
  log2: number;
  eventfd: number;
}

/** ADD_REGION: the fd is a regular (memory) file, at least `size` long, sealed against shrinking. */
export function checkRegion(fd: number, size: number, maxBytes: number): void {
  if (size > maxBytes)
    throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Region too large', `${size} > ${maxBytes}`);
  let isFile = false;
  try {
    isFile = fstatSync(fd).isFile();
  } catch {
    // Reported below as not a file.
  }
  if (!isFile) throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Region fd is not a memory file');
  let fileSize: number;
  let seals: number;
  try {
    fileSize = fstatSize(fd);
    seals = getSeals(fd);
  } catch (e) {
    throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Region fd is not sealable', (e as Error).message);
  }
  if (fileSize < size)
    throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Region too small', `file ${fileSize} < ${size}`);
  if ((seals & SEAL.SHRINK) === 0)
    throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Region not sealed against shrinking');
}

/** ADD_RING: the fd is an eventfd; the ring lies inside an announced region, 8-byte aligned. */
export function checkRing(ring: PendingRing, regions: readonly PendingRegion[]): void {
  const region = regions[ring.region];
  if (region === undefined)
    throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Invalid ring region', `${ring.region}`);
  if (ring.offset % 8 !== 0 || ring.offset + memifRingBytes(ring.log2) > region.size) {
    throw refuse(
      'ERR_FERRY_MEMIF_BAD_MEMORY',
      'Invalid ring offset',
      `offset ${ring.offset}, ${memifRingBytes(ring.log2)} bytes, region of ${region.size}`,
    );
  }
  let target = '';
  try {
    target = readlinkSync(`/proc/self/fd/${ring.eventfd}`);
  } catch {
    // Reported below.
  }
  if (target !== 'anon_inode:[eventfd]') throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Invalid interrupt fd');
  // The client should have created it with EFD_NONBLOCK (DPDK and libmemif do); make sure, so a
  // doorbell write never blocks the event loop. The flag lives in the shared file description.
  try {
    setNonBlocking(ring.eventfd, true);
  } catch (e) {
    throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Invalid interrupt fd', (e as Error).message);
  }
}

/**
 * CONNECT: maps every region, then checks ring cookies and that no two rings overlap. On success
 * the regions are owned by the result; on failure everything mapped here is released (the fds stay
 * with the caller).
 */
export function mapServerMemory(
  regions: readonly PendingRegion[],
  c2s: readonly PendingRing[],
  s2c: readonly PendingRing[],
): { regions: OwnedRegion[]; c2s: MemifRing[]; s2c: MemifRing[] } {
  const all = [...c2s, ...s2c];
  const sorted = [...all].sort((a, b) => a.region - b.region || a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as PendingRing;
    const b = sorted[i] as PendingRing;
    if (a.region === b.region && a.offset + memifRingBytes(a.log2) > b.offset) {
      throw refuse(
        'ERR_FERRY_MEMIF_BAD_MEMORY',
        'Overlapping rings',
        `region ${a.region} at ${a.offset} and ${b.offset}`,
      );
    }
  }
  const owned: OwnedRegion[] = [];
  try {
    for (const r of regions) {
      let mapping: Mapping;
      try {
        mapping = Mapping.map(r.fd, r.size);
      } catch (e) {
        throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Region mmap failed', (e as Error).message);
      }
      owned.push({ view: regionView(mapping.buffer, r.size), mapping, fd: r.fd });
    }
    const make = (p: PendingRing): MemifRing => {
      const region = owned[p.region];
      if (region === undefined) throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Invalid ring region');
      const ring = new MemifRing(region.view, p.region, p.offset, p.log2, p.eventfd);
      if (!ring.cookieOk())
        throw refuse('ERR_FERRY_MEMIF_BAD_MEMORY', 'Wrong ring', `bad cookie at ${p.offset}`);
      return ring;
    };
    return { regions: owned, c2s: c2s.map(make), s2c: s2c.map(make) };
  } catch (e) {
    for (const o of owned) o.mapping.release();
    throw e;
  }
}

export function closePending(regions: readonly PendingRegion[], rings: readonly PendingRing[]): void {
  for (const r of regions) closeQuietly(r.fd);
  for (const r of rings) closeQuietly(r.eventfd);
}
