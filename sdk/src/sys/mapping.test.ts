// Tests for mapping.ts: shared views, release safety (stale views read zeros), unmapping after GC.

import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MAP_ANONYMOUS, MAP_FAILED, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './constants.js';
import { close, write } from './fd.js';
import { libc, viewMemory } from './libc.js';
import { Mapping, mappingStats } from './mapping.js';
import { ftruncate, memfdCreate } from './memfd.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SIZE = 1 << 20;
/** Linux 4.17+: map at the address given or fail with EEXIST, never over another mapping. */
const MAP_FIXED_NOREPLACE = 0x100000;

/** The smaps block of the mapping that starts at address, or undefined when none starts there. */
function smapsEntry(address: bigint): { path: string; rssKb: number } | undefined {
  const text = readFileSync('/proc/self/smaps', 'utf8');
  const start = address.toString(16);
  const blocks = text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  for (const b of blocks) {
    if (!b.startsWith(`${start}-`)) continue;
    const head = b.slice(0, b.indexOf('\n'));
    const path = head.split(/\s+/).slice(5).join(' ');
    const rss = /\nRss:\s+(\d+) kB/.exec(b);
    return { path, rssKb: Number(rss?.[1] ?? -1) };
  }
  return undefined;
}

interface MapsLine {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
}

/**
 * The /proc/self/maps lines of the mappings that overlap [address, address + size). Not the line
 * that starts at address: the kernel merges a range with a neighbour that has the same flags, and
 * release()'s private zero mapping has those of glibc's thread arenas and V8's committed pages.
 */
function mapsOver(address: bigint, size: number): MapsLine[] {
  const end = address + BigInt(size);
  const out: MapsLine[] = [];
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (!m) continue;
    const lo = BigInt(`0x${m[1]}`);
    const hi = BigInt(`0x${m[2]}`);
    if (lo < end && hi > address) out.push({ start: lo, end: hi, perms: m[3] ?? '', path: m[4] ?? '' });
  }
  return out;
}

function showMaps(lines: MapsLine[]): string {
  return lines.map((m) => `${m.start.toString(16)}-${m.end.toString(16)} ${m.perms} ${m.path}`).join('; ');
}

/**
 * What each page of [address, address + size) maps, from /proc/self/pagemap (the kernel's
 * admin-guide/mm/pagemap: bit 63 present, 61 a file or shared-memory page, 56 mapped only here).
 * The shared zero page that reads of an untouched private page map is present, but neither a file
 * page nor exclusive; a page written through a private mapping is present and exclusive.
 */
function pageKinds(address: bigint, size: number): { present: number; file: number; exclusive: number } {
  const pages = size / 4096;
  const entries = Buffer.alloc(8 * pages);
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    assert.equal(readSync(fd, entries, 0, entries.length, Number(address / 4096n) * 8), entries.length);
  } finally {
    closeSync(fd);
  }
  const kinds = { present: 0, file: 0, exclusive: 0 };
  for (let i = 0; i < pages; i++) {
    const e = entries.readBigUInt64LE(8 * i);
    if ((e >> 63n) & 1n) kinds.present++;
    if ((e >> 61n) & 1n) kinds.file++;
    if ((e >> 56n) & 1n) kinds.exclusive++;
  }
  return kinds;
}

/**
 * Whether a read fault in a plain anonymous mapping may map the huge zero page (THP "always" for
 * PMD-size pages). Recent kernels' pagemap flags every page of it as a file page (it is not an
 * anonymous folio), so the per-page check of a released range only holds without it; the maps
 * check holds either way.
 */
function hugeZeroPagePossible(): boolean {
  const read = (p: string): string => {
    try {
      return readFileSync(`/sys/kernel/mm/transparent_hugepage/${p}`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  if (read('use_zero_page') === '0') return false;
  const pmdKb = Number(read('hpage_pmd_size')) / 1024;
  const perSize = read(`hugepages-${pmdKb}kB/enabled`);
  if (perSize.includes('[always]')) return true;
  return (perSize === '' || perSize.includes('[inherit]')) && read('enabled').includes('[always]');
}

/**
 * Maps `size` bytes of written private anonymous memory ending at `address`, with the flags of
 * release()'s zero mapping, so that the kernel merges the two once the range is released (what
 * happened by chance with a glibc thread arena right above the range: its Rss counted as the
 * range's). Returns null when that address space is taken.
 */
function residentNeighbourBelow(address: bigint, size: number): bigint | null {
  const want = address - BigInt(size);
  const p = libc.mmap(
    want,
    size,
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
    -1,
    0,
  ) as bigint;
  if (p === MAP_FAILED) return null;
  // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and take the address as a hint.
  if (p !== want) {
    libc.munmap(p, size);
    return null;
  }
  new Uint8Array(viewMemory(p, size)).fill(0x5a);
  return p;
}

function mapsMention(name: string): boolean {
  return readFileSync('/proc/self/maps', 'utf8').includes(name);
}

describe('Mapping', () => {
  it('two mappings of one memfd share bytes; the fd may be closed after map()', () => {
    const fd = memfdCreate('ferry-map-share');
    ftruncate(fd, SIZE);
    const a = Mapping.map(fd, SIZE);
    const b = Mapping.map(fd, SIZE, { readOnly: true });
    close(fd);
    try {
      assert.equal(a.size, SIZE);
      assert.equal(typeof a.address, 'bigint');
      new Uint8Array(a.buffer).set([1, 2, 3], 4096);
      assert.deepEqual([...new Uint8Array(b.buffer, 4096, 3)], [1, 2, 3]);
    } finally {
      a.release();
      b.release();
    }
  });

  it('sees bytes written through the fd, and maps at a page-aligned offset', () => {
    const fd = memfdCreate('ferry-map-offset');
    try {
      ftruncate(fd, 3 * 4096);
      write(fd, new Uint8Array(8192).fill(9));
      const m = Mapping.map(fd, 4096, { offset: 4096 });
      assert.equal(new Uint8Array(m.buffer)[0], 9);
      m.release();
      assert.throws(() => Mapping.map(fd, 4096, { offset: 100 }), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => Mapping.map(fd, 0), { code: 'ERR_OUT_OF_RANGE' });
    } finally {
      close(fd);
    }
  });

  it('release(): stale views read zeros, other holders keep the data, and the shared pages are dropped', () => {
    const name = `ferry-map-release-${process.pid}`;
    const fd = memfdCreate(name);
    ftruncate(fd, SIZE);
    // A resident anonymous neighbour right below the range, so that every run sees the zero mapping
    // merged with it. Where that address space is taken, map elsewhere (bounded).
    const NEIGHBOUR = 20 * 4096;
    const spares: Mapping[] = [];
    let a = Mapping.map(fd, SIZE);
    let neighbour = residentNeighbourBelow(a.address, NEIGHBOUR);
    while (neighbour === null && spares.length < 8) {
      spares.push(a);
      a = Mapping.map(fd, SIZE);
      neighbour = residentNeighbourBelow(a.address, NEIGHBOUR);
    }
    assert.ok(neighbour !== null, 'no free address space below 9 fresh mappings');
    for (const m of spares) m.release();
    const b = Mapping.map(fd, SIZE);
    close(fd);
    const stale = new Uint8Array(a.buffer);
    const staleWords = new Int32Array(a.buffer);
    stale.fill(0xab);
    Atomics.store(staleWords, 10, 1234);
    const before = mapsOver(a.address, SIZE);
    assert.equal(before.length, 1);
    assert.ok(before[0]?.path.includes(`/memfd:${name}`), showMaps(before));
    assert.equal(pageKinds(a.address, SIZE).file, SIZE / 4096, 'the memfd pages are mapped before release');

    a.release();
    a.release();
    assert.equal(a.released, true);
    assert.throws(() => a.buffer, { code: 'ERR_FERRY_MAPPING_RELEASED' });
    // Reading the old views does not crash and sees the private zero mapping.
    assert.equal(stale[0], 0);
    assert.equal(stale[SIZE - 1], 0);
    assert.equal(Atomics.load(staleWords, 10), 0);
    assert.equal(
      stale.some((x) => x !== 0),
      false,
    );
    // What release() promises, checked on the range itself: it stays reserved (until GC), only
    // private anonymous mappings cover it, and none of its pages is the memfd's (nor a private
    // copy: the reads above mapped the shared zero page). Not smaps Rss: the kernel merged the
    // zero mapping with the neighbour, and Rss is per mapping, so it counts the neighbour's pages.
    const after = mapsOver(a.address, SIZE);
    assert.ok(after.length > 0 && after.every((m) => m.path === '' && m.perms === 'rw-p'), showMaps(after));
    assert.ok((after[0]?.start ?? 0n) <= a.address && (after.at(-1)?.end ?? 0n) >= a.address + BigInt(SIZE));
    if (!hugeZeroPagePossible()) {
      assert.deepEqual(pageKinds(a.address, SIZE), { present: SIZE / 4096, file: 0, exclusive: 0 });
    }
    assert.equal(
      new Uint8Array(viewMemory(neighbour, NEIGHBOUR)).every((x) => x === 0x5a),
      true,
      'the neighbour keeps its bytes',
    );
    // The other mapping still has the data: the memfd's pages were not destroyed, only detached.
    assert.equal(new Uint8Array(b.buffer)[SIZE - 1], 0xab);
    assert.equal(Atomics.load(new Int32Array(b.buffer), 10), 1234);
    // Writes through a stale view stay private.
    stale[0] = 7;
    assert.equal(new Uint8Array(b.buffer)[0], 0xab);
    assert.deepEqual(pageKinds(a.address, 4096), { present: 1, file: 0, exclusive: 1 });
    b.release();
    libc.munmap(neighbour, NEIGHBOUR);
    // With both mappings released and the fd closed, nothing in this process holds the memfd.
    assert.equal(mapsMention(name), false);
  });

  it('munmaps the range once the buffer is unreachable', async () => {
    const fd = memfdCreate('ferry-map-gc');
    ftruncate(fd, SIZE);
    let m: Mapping | null = Mapping.map(fd, SIZE);
    close(fd);
    const address = m.address;
    new Uint8Array(m.buffer)[0] = 1;
    m.release();
    // Released, the range may be merged with a neighbour (see mapsOver): look for any mapping over
    // it, not for one that starts at its address, or a merge below would pass for an unmap.
    assert.ok(mapsOver(address, SIZE).length > 0, 'reserved until GC');
    const unmappedBefore = mappingStats.unmapped;
    m = null;
    for (let i = 0; i < 50 && mapsOver(address, SIZE).length > 0; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(mappingStats.unmapped > unmappedBefore, 'the finalizer ran');
    assert.deepEqual(mapsOver(address, SIZE), []);
  });

  it('unmaps a mapping that is dropped without release()', async () => {
    const name = `ferry-map-dropped-${process.pid}`;
    const fd = memfdCreate(name);
    ftruncate(fd, SIZE);
    (() => {
      const m = Mapping.map(fd, SIZE);
      new Uint8Array(m.buffer)[0] = 1;
    })();
    close(fd);
    assert.equal(mapsMention(name), true);
    for (let i = 0; i < 50 && mapsMention(name); i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(mapsMention(name), false);
  });

  it('view(): parts of the range share the bytes, are checked, and read zeros after release()', () => {
    const fd = memfdCreate('ferry-map-view');
    ftruncate(fd, SIZE);
    const a = Mapping.map(fd, SIZE);
    const b = Mapping.map(fd, SIZE);
    close(fd);
    const viewBytes = mappingStats.viewBytes;
    const part = new Uint8Array(a.view(8192, 4096));
    // Only the part is viewed (V8 counts it as external memory), not the whole range.
    assert.equal(mappingStats.viewBytes - viewBytes, 4096);
    part[1] = 77;
    assert.equal(new Uint8Array(b.buffer)[8193], 77);
    new Uint8Array(b.buffer)[8192 + 4095] = 5;
    assert.equal(part[4095], 5);
    assert.throws(() => a.view(SIZE - 4096, 8192), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => a.view(-1, 1), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => a.view(0, 0), { code: 'ERR_OUT_OF_RANGE' });
    a.release();
    assert.throws(() => a.view(0, 4096), { code: 'ERR_FERRY_MAPPING_RELEASED' });
    assert.equal(part[1], 0);
    assert.equal(new Uint8Array(b.buffer)[8193], 77);
    b.release();
  });

  it('keeps the range mapped while a part view is reachable, and unmaps it after', async () => {
    const fd = memfdCreate('ferry-map-view-gc');
    ftruncate(fd, SIZE);
    let m: Mapping | null = Mapping.map(fd, SIZE);
    close(fd);
    const address = m.address;
    let part: Uint8Array | null = new Uint8Array(m.view(4096, 4096));
    part[0] = 3;
    m = null;
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The Mapping is gone but its part view is not: the range must still be there to read.
    assert.ok(smapsEntry(address) !== undefined, 'still mapped while a view lives');
    assert.equal(part[0], 3);
    part = null;
    // Other tests' mappings may be finalized meanwhile: wait for this range.
    for (let i = 0; i < 50 && smapsEntry(address) !== undefined; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(smapsEntry(address), undefined);
  });
});
