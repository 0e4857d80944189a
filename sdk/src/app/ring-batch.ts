// Doorbell rings asked for while the data poll dispatches are rung once, when that poll ends.
//
// Why: a post rings the peer's doorbell only when the peer sleeps (its wantWake flag, cleared by
// the ring), but a peer woken by the first reply of a batch starts working at once, finds only that
// reply, and sleeps again before the next one: with 8 HTTP connections, a poll that answered 8
// requests rang up to 4 times, and on a busy 2-vCPU machine each ring can hand the CPU to the
// woken peer in the middle of the batch. Replies written by the poll's handlers (and its afterPoll
// flushes) are rung when the poll ends; everything else rings at once, as before (a ring deferred
// to the end of the tick, or a space notice deferred to the end of the poll, cost 256 KiB streams
// up to twice the CPU per MiB: the writer stopped refilling while the reader read).

/** What can be rung later: a segment's link to its peer's doorbell. */
export interface Ringable {
  /** Rings the peer's doorbell now (nothing if the segment is gone). */
  ringNow(): void;
}

const pending: Ringable[] = [];
let held = 0;

/** Rings `r` now, or at the end of the running data poll (once, however many posts ask). */
export function ringSoon(r: Ringable): void {
  if (held === 0) {
    r.ringNow();
    return;
  }
  if (!pending.includes(r)) pending.push(r);
}

/** A data poll starts: rings wait for its end. */
export function holdRings(): void {
  held++;
}

/** A data poll ended: ring what it asked for (when no outer poll still holds them). */
export function releaseRings(): void {
  if (held > 0) held--;
  if (held > 0 || pending.length === 0) return;
  const rs = pending.splice(0);
  for (const r of rs) r.ringNow();
}

/** Rings waiting (for tests). */
export function pendingRings(): number {
  return pending.length;
}
