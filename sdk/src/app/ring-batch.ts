// Doorbell rings are rung once per batch of work, not once per post.
//
// Why: a post rings the peer's doorbell only when the peer sleeps (its wantWake flag, cleared by
// the ring), but a peer woken by the first post of a batch starts working at once, finds only that
// post, and sleeps again before the next one: with 8 HTTP connections, a poll that answers 8
// requests rang up to 8 times, and on a busy 2-vCPU machine each ring can hand the CPU to the
// woken peer in the middle of the batch. So posts made while the data poll dispatches are rung when
// that poll ends (after its afterPoll work), and posts made elsewhere (a timer, a promise) when the
// current tick ends (process.nextTick): the peer then finds the whole batch in one wake-up.
// On exit, rings still pending are rung, so nothing written before process.exit() waits unheard.

/** What can be rung later: a segment's link to its peer's doorbell. */
export interface Ringable {
  /** Rings the peer's doorbell now (nothing if the segment is gone). */
  ringNow(): void;
}

const pending: Ringable[] = [];
let held = 0;
let scheduled = false;
let exitHooked = false;

/** Rings `r` at the end of the current poll or tick (once, however many posts ask). */
export function ringSoon(r: Ringable): void {
  if (!pending.includes(r)) pending.push(r);
  if (held > 0 || scheduled) return;
  scheduled = true;
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', flushRings);
  }
  process.nextTick(flushRings);
}

/** A data poll starts: rings wait for its end. */
export function holdRings(): void {
  held++;
}

/** A data poll ended: ring what it asked for (when no outer poll still holds them). */
export function releaseRings(): void {
  if (held > 0) held--;
  if (held === 0) flushRings();
}

/** Rings everything pending now. */
export function flushRings(): void {
  scheduled = false;
  if (pending.length === 0) return;
  // Rung in order; a ring that posts nothing more cannot add to the list, but copy anyway.
  const rs = pending.splice(0);
  for (const r of rs) r.ringNow();
}

/** Rings waiting (for tests). */
export function pendingRings(): number {
  return pending.length;
}
