// A clock two processes on this machine can compare: CLOCK_MONOTONIC, read through performance.now().
//
// Why not process.hrtime.bigint() (the same clock): it allocates a BigInt per reading, and the
// doorbell stamps rings with it. performance.now() is that clock minus this process's start, as a
// double in ms; the start is found once here by bracketing a performance.now() reading between two
// hrtime readings (the narrowest of a few tries: ~0.3 us). Rounding and that bracket leave an error
// well under a microsecond, against wake latencies of several microseconds.

let originMs = 0;
{
  let bracket = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 20; i++) {
    const a = process.hrtime.bigint();
    const p = performance.now();
    const b = process.hrtime.bigint();
    const d = Number(b - a);
    if (d < bracket) {
      bracket = d;
      originMs = (Number(a) + d / 2) / 1e6 - p;
    }
  }
}

const TWO_32 = 4294967296;

/** CLOCK_MONOTONIC in ns modulo 2^32 (wraps every ~4.3 s: only differences under that mean anything). */
export function monoNs32(): number {
  return (((performance.now() + originMs) * 1e6) % TWO_32) >>> 0;
}

/** ms from a monoNs32() reading `then` to now; a `then` from the future reads as about 4.3 s. */
export function monoAgeMs(then: number): number {
  return ((monoNs32() - then) >>> 0) / 1e6;
}
