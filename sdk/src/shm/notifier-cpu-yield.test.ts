import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Notifier, type NotifyMode } from './notifier.js';

// Adaptive gives its CPU away (yieldCpu) once per idle stretch that has polled 10 us without work:
// a peer it woke may wait on its CPU behind the spin. On a fake clock (1 us per reading) so that
// what is checked follows from the polls, not from the machine's load.

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function withFakeClock(fn: (advance: (ms: number) => void) => Promise<void>): Promise<void> {
  const realNow = performance.now;
  let ms = 0;
  performance.now = () => {
    ms += 0.001;
    return ms;
  };
  try {
    await fn((d) => {
      ms += d;
    });
  } finally {
    performance.now = realNow;
  }
}

class FakeDoorbell {
  #cbs: Array<() => void> = [];
  onRing(cb: () => void): void {
    this.#cbs.push(cb);
  }
  ring(): void {
    for (const cb of this.#cbs) cb();
  }
}

/** Work arrives `replyAfter` polls after each unit done while `chain` lasts (a ping-pong's replies). */
function harness(mode: NotifyMode) {
  const doorbell = new FakeDoorbell();
  const st = { pending: 0, polls: 0, done: 0, chain: 0, replyIn: 0, replyAfter: 3 };
  const yields: { at: number; polls: number; done: number; sinceWorkMs: number }[] = [];
  let lastWorkAt = 0;
  const n = new Notifier({
    mode,
    doorbell,
    spinUs: 50,
    adaptiveIdleUs: 200,
    preemptedUs: 1e9,
    poll: () => {
      st.polls++;
      if (st.replyIn > 0 && --st.replyIn === 0) st.pending++;
      if (st.pending === 0) return 0;
      st.pending--;
      st.done++;
      lastWorkAt = performance.now();
      if (st.chain > 0) {
        st.chain--;
        st.replyIn = st.replyAfter;
      }
      return 1;
    },
    arm: () => st.pending > 0,
    yieldCpu: () => {
      const at = performance.now();
      yields.push({ at, polls: st.polls, done: st.done, sinceWorkMs: at - lastWorkAt });
    },
  });
  return { n, doorbell, st, yields };
}

async function untilAsleep(n: Notifier): Promise<void> {
  for (let i = 0; i < 100_000 && !n.sleeping; i++) await turn();
  assert.equal(n.sleeping, true);
}

test('adaptive: an idle stretch yields its CPU once, after 10 us without work, then polls on', async () => {
  await withFakeClock(async () => {
    const { n, st, yields } = harness('adaptive');
    // Each unit brings the next 800 polls later: about 25 us on this clock (2 readings per clock
    // batch, batches grown to 64 polls), under a wake's cost (50 us), so adaptive polls across
    // every gap.
    st.replyAfter = 800;
    st.chain = 6;
    st.pending = 1;
    n.start();
    await untilAsleep(n);
    assert.equal(st.done, 7);
    assert.equal(n.cpuYields, yields.length);
    // One yield in each gap (6) and in the last stretch, which polled its window and slept.
    assert.equal(yields.length, 7, `yields at units done: ${yields.map((y) => y.done)}`);
    assert.deepEqual(
      yields.map((y) => y.done),
      [1, 2, 3, 4, 5, 6, 7],
      'never twice in one stretch',
    );
    for (const y of yields) assert.ok(y.sinceWorkMs >= 0.01, `yielded ${y.sinceWorkMs * 1000} us after work`);
    // It polled on after each yield: the next unit was found by polling, not by a ring.
    assert.equal(n.wakeups, 0);
    n.stop();
  });
});

test('adaptive: replies that come within a few polls never make it yield', async () => {
  await withFakeClock(async () => {
    const { n, st, yields } = harness('adaptive');
    // 300 units, each bringing the next 3 polls later: no stretch polls 10 us without work.
    st.chain = 300;
    st.pending = 1;
    n.start();
    await untilAsleep(n);
    assert.equal(st.done, 301);
    // Only the stretch after the last unit, which had nothing more to find, may have yielded.
    assert.ok(
      yields.every((y) => y.done === 301),
      `yields while replies kept coming, at units done: ${yields.map((y) => y.done)}`,
    );
    n.stop();
  });
});

test('interrupt and poll modes never yield their CPU', async () => {
  await withFakeClock(async () => {
    for (const mode of ['interrupt', 'poll'] as const) {
      const { n, st, yields } = harness(mode);
      st.pending = 2;
      n.start();
      for (let i = 0; i < 200; i++) await turn();
      assert.equal(st.done, 2);
      assert.equal(yields.length, 0, `${mode} yielded`);
      assert.equal(n.cpuYields, 0);
      n.stop();
    }
  });
});
