// Tests for mapping.ts: shared views, release safety (stale views read zeros), unmapping after GC.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { close, write } from './fd.js';
import { Mapping, mappingStats } from './mapping.js';
import { ftruncate, memfdCreate } from './memfd.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SIZE = 1 << 20;

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
    const a = Mapping.map(fd, SIZE);
    const b = Mapping.map(fd, SIZE);
    close(fd);
    const stale = new Uint8Array(a.buffer);
    const staleWords = new Int32Array(a.buffer);
    stale.fill(0xab);
    Atomics.store(staleWords, 10, 1234);
    const before = smapsEntry(a.address);
    assert.ok(before?.path.includes(`/memfd:${name}`), `smaps before: ${before?.path}`);
    assert.ok((before?.rssKb ?? 0) >= SIZE / 1024, 'pages are resident before release');

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
    const after = smapsEntry(a.address);
    assert.ok(after !== undefined, 'the range stays reserved until GC');
    assert.ok(!after.path.includes('memfd'), `smaps after: ${after.path}`);
    assert.equal(after.rssKb, 0);
    // The other mapping still has the data: the memfd's pages were not destroyed, only detached.
    assert.equal(new Uint8Array(b.buffer)[SIZE - 1], 0xab);
    assert.equal(Atomics.load(new Int32Array(b.buffer), 10), 1234);
    // Writes through a stale view stay private.
    stale[0] = 7;
    assert.equal(new Uint8Array(b.buffer)[0], 0xab);
    b.release();
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
    const unmappedBefore = mappingStats.unmapped;
    m = null;
    for (let i = 0; i < 50 && mappingStats.unmapped === unmappedBefore; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(mappingStats.unmapped > unmappedBefore, 'the finalizer ran');
    assert.equal(smapsEntry(address), undefined);
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
