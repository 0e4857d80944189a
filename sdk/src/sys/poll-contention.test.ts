import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MIN_POLL_MS,
  POLL_WAIT_CLEAR,
  POLL_WAIT_CONTENDED,
  PollContention,
  RETRY_MAX_MS,
  RETRY_MIN_MS,
} from './poll-contention.js';

test('PollContention: undecided polls are let through; a decision needs MIN_POLL_MS of polling', () => {
  const p = new PollContention();
  assert.equal(p.contended(0), false, 'nothing measured: polls are measured, not vetoed');
  // Windows shorter than MIN_POLL_MS add up; only their sum decides.
  p.add(MIN_POLL_MS / 2, MIN_POLL_MS / 2, 1);
  assert.equal(p.stats.decisions, 0);
  assert.equal(p.contended(1), false);
  p.add(MIN_POLL_MS / 2, MIN_POLL_MS / 2, 2);
  assert.equal(p.stats.decisions, 1);
  assert.equal(p.share, 1);
  assert.equal(p.contended(2), true, 'waited all the time it polled: another task wanted the CPU');
  // Bad input (a reading that went backwards) is ignored; waits longer than the window are capped.
  p.add(-1, 0, 3);
  p.add(1, Number.NaN, 3);
  assert.equal(p.stats.decisions, 1);
  p.add(MIN_POLL_MS, MIN_POLL_MS * 5, 3);
  assert.ok(p.share <= 1, `share ${p.share}`);
});

test('PollContention: contended above the threshold, clear only below the lower one; vetoes pause and probe', () => {
  const p = new PollContention();
  let t = 0;
  /** A decision from MIN_POLL_MS of polling at `share`, at time t. */
  const decide = (share: number) => p.add(MIN_POLL_MS, MIN_POLL_MS * share, t);
  // Our own helper threads take a few % of the poller's CPU: clear.
  decide(0.03);
  assert.equal(p.contended(t), false, `${0.03} < ${POLL_WAIT_CONTENDED}`);
  decide(POLL_WAIT_CONTENDED - 0.01);
  assert.equal(p.contended(t), false, 'at most the upper threshold: still clear');
  // A third task wants a CPU all along (a hog beside two pollers on 2 CPUs): a third of the time.
  decide(0.33);
  assert.equal(p.contended(t), true);
  // Vetoed for RETRY_MIN_MS, then polls are let through again to see whether it went.
  assert.equal(p.contended(t + RETRY_MIN_MS - 0.01), true);
  t += RETRY_MIN_MS;
  assert.equal(p.contended(t), false, 'the pause ran out: a probe');
  // The probe finds a share between the thresholds: still contended, and the next pause is longer.
  decide((POLL_WAIT_CLEAR + POLL_WAIT_CONTENDED) / 2);
  assert.equal(p.contended(t), true);
  assert.equal(p.contended(t + RETRY_MIN_MS), true, 'the second pause is twice the first');
  assert.equal(p.contended(t + 2 * RETRY_MIN_MS), false);
  // Pauses double up to RETRY_MAX_MS while each probe finds contention again.
  for (let i = 0; i < 20; i++) {
    t += RETRY_MAX_MS;
    decide(0.6);
  }
  assert.equal(p.contended(t + RETRY_MAX_MS - 0.01), true);
  assert.equal(p.contended(t + RETRY_MAX_MS), false);
  // The machine went quiet: a probe below the lower threshold clears it, and the pause starts
  // small again next time.
  t += RETRY_MAX_MS;
  decide(POLL_WAIT_CLEAR / 2);
  assert.equal(p.contended(t), false);
  decide(0.6);
  assert.equal(p.contended(t + RETRY_MIN_MS - 0.01), true);
  assert.equal(p.contended(t + RETRY_MIN_MS), false);
  assert.equal(p.stats.contendedDecisions, 23);
});

test('PollContention: after a busy start, a probe that finds only our own helpers clears at once', () => {
  const p = new PollContention();
  // Start-up: compiler threads and the connect take half of the poller's CPU.
  p.add(MIN_POLL_MS, MIN_POLL_MS * 0.5, 0);
  assert.equal(p.contended(0), true);
  // The first probe after the pause: helper threads of both processes take 15% (under what a
  // third CPU-bound task would take): polls go on from here, with no longer pause to sit out.
  const t = RETRY_MIN_MS;
  assert.equal(p.contended(t), false);
  p.add(MIN_POLL_MS, MIN_POLL_MS * 0.15, t);
  assert.equal(p.contended(t), false, `share ${p.share}`);
  assert.equal(p.contended(t + 10 * RETRY_MAX_MS), false);
  // Favoured processes on a loaded machine (0.196 read this session): not vetoed by this gate.
  p.add(MIN_POLL_MS, MIN_POLL_MS * 0.196, t + 1);
  assert.equal(p.contended(t + 1), false);
});
