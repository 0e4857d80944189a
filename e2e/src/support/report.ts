/** Throughput figures from the container suites: printed (median over rounds), never asserted. */
import type { TestContext } from 'node:test';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** One line per variant: median GB/s, the rounds, and the ratio to the first variant. */
export function reportThroughput(t: TestContext, title: string, gbps: Record<string, number[]>): void {
  const entries = Object.entries(gbps);
  const base = median(entries[0]?.[1] ?? [1]);
  const lines = [`throughput (preliminary, not asserted) — ${title}`];
  for (const [name, xs] of entries) {
    const m = median(xs);
    lines.push(
      `  ${name}: median ${m.toFixed(2)} GB/s (rounds ${xs.map((x) => x.toFixed(2)).join(', ')}), ×${(m / base).toFixed(2)} of the first`,
    );
  }
  for (const l of lines) t.diagnostic(l);
}
