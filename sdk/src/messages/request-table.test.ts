// The request table alone: ids, settling, timeouts by the shared deadline queue and by their own
// timers, aborts, and many requests in flight.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ferryError } from '../errors.js';
import { RequestTable } from './request-table.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether the object behind `ref` was collected (after the current job, which keeps it alive). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  await nextTurn();
  gc();
  return ref.deref() === undefined;
}

function table(defaultMs = 0) {
  const cancelled: number[] = [];
  const t = new RequestTable(defaultMs, (id) => cancelled.push(id));
  return { t, cancelled };
}

/** rs[i], which the test knows is there. */
function at<T>(xs: T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no element ${i}`);
  return x;
}

/**
 * The promise's outcome, without an unhandled rejection meanwhile. The table's timers are unref'd
 * (the channel keeps a process alive), so a ref'd one keeps this test's process up until then.
 */
function outcome(p: Promise<unknown>): Promise<{ ok: boolean; v: unknown }> {
  const alive = setInterval(() => {}, 1000);
  return p.then(
    (v) => {
      clearInterval(alive);
      return { ok: true, v };
    },
    (v) => {
      clearInterval(alive);
      return { ok: false, v };
    },
  );
}

describe('RequestTable', () => {
  it('settles each id with its own reply; a reply to an id never issued is unknown, a repeated one late', async () => {
    const { t } = table();
    const a = t.add(undefined, undefined);
    const b = t.add(undefined, undefined);
    assert.notEqual(a.id, b.id);
    assert.equal(t.size, 2);
    assert.equal(t.settle(b.id, 'B', false), 'ok');
    assert.equal(t.settle(a.id, new Error('no'), true), 'ok');
    assert.equal(await b.promise, 'B');
    await assert.rejects(a.promise, /no/);
    assert.equal(t.size, 0);
    assert.equal(t.settle(a.id, 'again', false), 'late');
    assert.equal(t.lateReplies, 1);
    assert.equal(t.settle(b.id + 1000, 'x', false), 'unknown');
  });

  it('10,000 in flight: every reply finds its own request, in any order', async () => {
    const { t } = table(30_000);
    const rs = Array.from({ length: 10_000 }, () => t.add(undefined, undefined));
    assert.equal(new Set(rs.map((r) => r.id)).size, 10_000);
    assert.equal(t.size, 10_000);
    // Odd ones first, then even ones from the end.
    for (let i = 1; i < rs.length; i += 2) assert.equal(t.settle(at(rs, i).id, i, false), 'ok');
    for (let i = rs.length - 2; i >= 0; i -= 2) assert.equal(t.settle(at(rs, i).id, i, false), 'ok');
    const got = await Promise.all(rs.map((r) => r.promise));
    assert.deepEqual(
      got,
      rs.map((_, i) => i),
    );
    assert.equal(t.size, 0);
  });

  it('an id whose slot is still held by an old pending request is skipped, never reused while in flight', async () => {
    const { t } = table();
    const old = t.add(undefined, undefined);
    const seen = new Set([old.id]);
    // Far more requests than slots, one at a time: the ids go round the slots many times.
    for (let i = 0; i < 5_000; i++) {
      const r = t.add(undefined, undefined);
      assert.ok(r.id !== old.id);
      assert.equal(t.settle(r.id, i, false), 'ok');
      assert.equal(await r.promise, i);
      seen.add(r.id);
    }
    assert.equal(seen.size, 5_001);
    assert.equal(t.settle(old.id, 'old', false), 'ok');
    assert.equal(await old.promise, 'old');
  });

  it('default-timeout requests expire in order with ETIMEDOUT and a cancel each; answered ones do not', async () => {
    const { t, cancelled } = table(30);
    const a = t.add(undefined, undefined);
    const b = t.add(undefined, undefined);
    const c = t.add(undefined, undefined);
    const oa = outcome(a.promise);
    const ob = outcome(b.promise);
    const oc = outcome(c.promise);
    assert.equal(t.settle(b.id, 'B', false), 'ok');
    const ra = await oa;
    const rc = await oc;
    assert.equal(ra.ok, false);
    assert.equal((ra.v as { code?: string }).code, 'ETIMEDOUT');
    assert.equal((rc.v as { code?: string }).code, 'ETIMEDOUT');
    assert.deepEqual(await ob, { ok: true, v: 'B' });
    assert.deepEqual(cancelled, [a.id, c.id]);
    assert.equal(t.size, 0);
    assert.equal(t.settle(a.id, 'late', false), 'late');
  });

  it('a request made after the queue emptied still times out (the timer is re-armed)', async () => {
    const { t } = table(20);
    const a = t.add(undefined, undefined);
    assert.equal(t.settle(a.id, 1, false), 'ok');
    await sleep(40);
    const b = t.add(undefined, undefined);
    const r = await outcome(b.promise);
    assert.equal((r.v as { code?: string }).code, 'ETIMEDOUT');
  });

  it('answers out of order behind one pending request keep the queue bounded, and it still expires', async () => {
    const { t, cancelled } = table(200);
    const stuck = t.add(undefined, undefined);
    const o = outcome(stuck.promise);
    let first: WeakRef<object> | null = null;
    for (let i = 0; i < 20_000; i++) {
      const r = t.add(undefined, undefined);
      const reply = { i };
      first ??= new WeakRef(reply);
      t.settle(r.id, reply, false);
    }
    assert.equal(t.size, 1);
    // The answered requests behind the stuck one were swept out (their replies with them).
    assert.ok(first && (await collected(first)), 'the first reply is still held');
    const r = await o;
    assert.equal((r.v as { code?: string }).code, 'ETIMEDOUT');
    assert.deepEqual(cancelled, [stuck.id]);
  });

  it('pipelined requests (the queue never empties) do not keep the answered ones, nor their replies', async () => {
    const { t } = table(30_000);
    const inFlight = [t.add(undefined, undefined), t.add(undefined, undefined)];
    let first: WeakRef<object> | null = null;
    for (let i = 0; i < 20_000; i++) {
      const oldest = inFlight.shift();
      assert.ok(oldest);
      const reply = { i };
      first ??= new WeakRef(reply);
      assert.equal(t.settle(oldest.id, reply, false), 'ok');
      inFlight.push(t.add(undefined, undefined));
    }
    assert.equal(t.size, 2);
    assert.ok(first && (await collected(first)), 'the first reply is still held by the deadline queue');
    t.rejectAll(ferryError('ECONNRESET', 'done'));
    for (const r of inFlight) await assert.rejects(r.promise, { code: 'ECONNRESET' });
  });

  it('one request at a time (the queue empties after each) keeps neither the answered ones nor their replies', async () => {
    const { t } = table(30_000);
    let first: WeakRef<object> | null = null;
    for (let i = 0; i < 20_000; i++) {
      const r = t.add(undefined, undefined);
      const reply = { i };
      first ??= new WeakRef(reply);
      assert.equal(t.settle(r.id, reply, false), 'ok');
      assert.deepEqual(await r.promise, { i });
    }
    assert.equal(t.size, 0);
    assert.ok(first && (await collected(first)), 'the first reply is still held by the deadline queue');
  });

  it('an answered request, once its table is left, keeps no reply alive (nor does the module)', async () => {
    // No default timeout: the table holds no deadline queue, and once answered nothing of the
    // request should hold its reply but the caller's promise.
    const { t } = table(0);
    let ref: WeakRef<object> | null = null;
    await (async () => {
      const r = t.add(undefined, undefined);
      const reply = { big: new Uint8Array(1 << 20) };
      ref = new WeakRef(reply);
      assert.equal(t.settle(r.id, reply, false), 'ok');
      assert.equal(await r.promise, reply);
    })();
    assert.equal(t.size, 0);
    assert.ok(ref && (await collected(ref)), 'the last reply is still held');
  });

  it('a timeout of its own, an abort, and an already aborted signal', async () => {
    const { t, cancelled } = table(60_000);
    const own = t.add(15, undefined);
    const r = await outcome(own.promise);
    assert.equal((r.v as { code?: string }).code, 'ETIMEDOUT');
    const ac = new AbortController();
    const ab = t.add(undefined, ac.signal);
    const oab = outcome(ab.promise);
    ac.abort();
    assert.equal(((await oab).v as { code?: string }).code, 'ABORT_ERR');
    assert.deepEqual(cancelled, [own.id, ab.id]);
    assert.throws(() => t.add(undefined, ac.signal), { code: 'ABORT_ERR' });
    assert.equal(t.size, 0);
  });

  it('rejectAll rejects every pending request once; fail() one that could not be sent', async () => {
    const { t, cancelled } = table(60_000);
    const rs = Array.from({ length: 100 }, () => t.add(undefined, undefined));
    const outs = rs.map((r) => outcome(r.promise));
    t.fail(at(rs, 0).id, new Error('unsent'));
    t.rejectAll(ferryError('ECONNRESET', 'gone'));
    const got = await Promise.all(outs);
    assert.match(String((at(got, 0).v as Error).message), /unsent/);
    for (const g of got.slice(1)) assert.equal((g.v as { code?: string }).code, 'ECONNRESET');
    assert.equal(t.size, 0);
    assert.deepEqual(cancelled, []);
  });
});
