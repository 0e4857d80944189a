// The client owns all memory (spec §1, §7): one sealed memfd region holding every ring and buffer,
// and one eventfd per ring. Fresh for every connection; never reused after a disconnect.

import { addSeals, eventfd, ftruncate, Mapping, memfdCreate, SEAL } from '../sys/index.js';
import { closeQuietly, type OwnedRegion } from './connection.js';
import { clientRegionLayout } from './options.js';
import { MemifRing, regionView } from './ring.js';

export interface ClientMemory {
  region: OwnedRegion;
  c2s: MemifRing[];
  s2c: MemifRing[];
  /** Buffer base of each ring, C2S rings first. */
  bufBases: number[];
  bufferSize: number;
}

export function createClientMemory(c2s: number, s2c: number, log2: number, bufferSize: number): ClientMemory {
  const layout = clientRegionLayout(c2s, s2c, log2, bufferSize);
  const slots = 2 ** log2;
  const fds: number[] = [];
  let mapping: Mapping | null = null;
  try {
    const fd = memfdCreate('ferry-memif', { allowSealing: true });
    fds.push(fd);
    ftruncate(fd, layout.size);
    // SHRINK is what the server needs (no SIGBUS from a file cut under its mapping); GROW and SEAL
    // make the size final.
    addSeals(fd, SEAL.SHRINK | SEAL.GROW | SEAL.SEAL);
    mapping = Mapping.map(fd, layout.size);
    const view = regionView(mapping.buffer, layout.size);
    const rings: MemifRing[] = [];
    const bufBases: number[] = [];
    for (let g = 0; g < c2s + s2c; g++) {
      const efd = eventfd(0, { nonblock: true });
      fds.push(efd);
      const ring = new MemifRing(view, 0, g * layout.stride, log2, efd);
      ring.writeCookie();
      ring.setInterruptsMasked(false);
      ring.storeHead(0);
      ring.storeTail(0);
      const base = layout.buffersAt + g * slots * bufferSize;
      for (let j = 0; j < slots; j++) ring.writeDesc(j, 0, 0, bufferSize, base + j * bufferSize);
      rings.push(ring);
      bufBases.push(base);
    }
    return {
      region: { view, mapping, fd },
      c2s: rings.slice(0, c2s),
      s2c: rings.slice(c2s),
      bufBases,
      bufferSize,
    };
  } catch (e) {
    mapping?.release();
    for (const fd of fds) closeQuietly(fd);
    throw e;
  }
}
