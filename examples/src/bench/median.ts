/** The medians the benches report, in one place (each bench used to carry its own copy). */

/** The middle of `xs` (the mean of the two middles for an even count); `empty` when there is none. */
export function median(xs: readonly number[], empty = Number.NaN): number {
  if (xs.length === 0) return empty;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * The upper middle of `xs` (no mean for an even count), as the older benches report theirs;
 * `empty` when there is none.
 */
export function upperMedian(xs: readonly number[], empty = Number.NaN): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? empty;
}
