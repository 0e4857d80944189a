// The table of requests being served: one in a field, the rest in a Map, any u32 id.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServingTable } from './serving-table.js';

describe('ServingTable', () => {
  it('one entry, then more: each id finds its own, deletes take only theirs', () => {
    const t = new ServingTable<string>();
    assert.equal(t.size, 0);
    assert.equal(t.get(0), undefined);
    t.set(7, 'a');
    assert.equal(t.size, 1);
    assert.equal(t.get(7), 'a');
    assert.equal(t.get(8), undefined);
    t.set(0xffff_ffff, 'b');
    t.set(0, 'c');
    assert.equal(t.size, 3);
    assert.equal(t.get(0xffff_ffff), 'b');
    assert.equal(t.get(0), 'c');
    t.delete(123);
    assert.equal(t.size, 3, 'an unknown id deletes nothing');
    t.delete(7);
    assert.equal(t.size, 2);
    assert.equal(t.get(7), undefined);
    assert.deepEqual(t.values().sort(), ['b', 'c']);
    // The field is free again: the next entry may go there while the Map holds the others.
    t.set(7, 'd');
    assert.equal(t.get(7), 'd');
    assert.equal(t.get(0), 'c');
    assert.deepEqual(t.values().sort(), ['b', 'c', 'd']);
    t.delete(0);
    t.delete(0xffff_ffff);
    assert.deepEqual(t.values(), ['d']);
    t.clear();
    assert.equal(t.size, 0);
    assert.deepEqual(t.values(), []);
    assert.equal(t.get(7), undefined);
  });

  it('against a Map, over random operations', () => {
    const t = new ServingTable<number>();
    const m = new Map<number, number>();
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      const id = rnd(16);
      const op = rnd(3);
      if (op === 0 && !m.has(id)) {
        t.set(id, i);
        m.set(id, i);
      } else if (op === 1) {
        t.delete(id);
        m.delete(id);
      }
      assert.equal(t.size, m.size);
      assert.equal(t.get(id), m.get(id));
    }
    assert.deepEqual(
      t.values().sort((a, b) => a - b),
      [...m.values()].sort((a, b) => a - b),
    );
  });
});
