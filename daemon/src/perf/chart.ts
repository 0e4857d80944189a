/**
 * SVG charts for `ferry perf --chart`: throughput over time (a line) and, for rtt, a histogram of
 * round-trip times on log-spaced buckets. Plain SVG 1.1, no script, no external resource; each
 * point and bar carries its value in a data- attribute so a test (or a person) can read it back.
 */

export interface TimePoint {
  /** Seconds since the workload started. */
  t: number;
  /** Units done per second over the interval ending at t. */
  rate: number;
}

export interface HistogramBucket {
  /** Lower and upper bound in us (upper excluded). */
  lo: number;
  hi: number;
  count: number;
}

const W = 720;
const H = 260;
const PAD = { left: 70, right: 20, top: 34, bottom: 40 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(n: number): string {
  if (n === 0) return '0';
  const units: [number, string][] = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${(n / v).toPrecision(3)}${u}`;
  return n < 10 ? n.toPrecision(3) : String(Math.round(n));
}

/** Buckets from `minUs` doubling up to past the largest sample: 1, 2, 4, ... us (empty tails cut). */
export function rttHistogram(samplesUs: readonly number[]): HistogramBucket[] {
  if (samplesUs.length === 0) return [];
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const s of samplesUs) {
    if (s > max) max = s;
    if (s < min) min = s;
  }
  let lo = 2 ** Math.floor(Math.log2(Math.max(1, min)));
  const buckets: HistogramBucket[] = [];
  while (lo <= max) {
    buckets.push({ lo, hi: lo * 2, count: 0 });
    lo *= 2;
  }
  const first = buckets[0]?.lo ?? 1;
  for (const s of samplesUs) {
    const i = Math.min(buckets.length - 1, Math.max(0, Math.floor(Math.log2(Math.max(s, first) / first))));
    const b = buckets[i];
    if (b) b.count++;
  }
  return buckets;
}

function frame(y: number, title: string, xLabel: string, yLabel: string, yMax: number): string[] {
  const plotH = H - PAD.top - PAD.bottom;
  const out = [
    `<g transform="translate(0,${y})">`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#333"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="#333"/>`,
    `<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    `<text x="14" y="${PAD.top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${PAD.top + plotH / 2})">${esc(yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const yy = H - PAD.bottom - (plotH * i) / 4;
    out.push(
      `<text x="${PAD.left - 6}" y="${yy + 4}" text-anchor="end" font-size="11">${fmt(v)}</text>`,
      `<line x1="${PAD.left}" y1="${yy}" x2="${W - PAD.right}" y2="${yy}" stroke="#ddd"/>`,
    );
  }
  return out;
}

function lineChart(y: number, title: string, unit: string, points: readonly TimePoint[]): string[] {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const yMax = Math.max(1e-9, ...points.map((p) => p.rate)) * 1.1;
  const tMax = Math.max(1e-9, ...points.map((p) => p.t));
  const out = frame(y, title, 'seconds', unit, yMax);
  const xy = points.map((p) => [PAD.left + (p.t / tMax) * plotW, H - PAD.bottom - (p.rate / yMax) * plotH]);
  out.push(
    `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${xy.map(([a, b]) => `${(a ?? 0).toFixed(1)},${(b ?? 0).toFixed(1)}`).join(' ')}"/>`,
  );
  points.forEach((p, i) => {
    const cx = xy[i]?.[0] ?? 0;
    const cy = xy[i]?.[1] ?? 0;
    out.push(
      `<circle class="point" cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="2" fill="#1f77b4" data-t="${p.t}" data-rate="${p.rate}"/>`,
    );
  });
  for (let i = 0; i <= 4; i++) {
    const x = PAD.left + (plotW * i) / 4;
    out.push(
      `<text x="${x}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="11">${fmt((tMax * i) / 4)}</text>`,
    );
  }
  out.push('</g>');
  return out;
}

function histogramChart(y: number, title: string, buckets: readonly HistogramBucket[]): string[] {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const yMax = Math.max(1, ...buckets.map((b) => b.count)) * 1.1;
  const out = frame(y, title, 'round-trip time (us, log2 buckets)', 'round trips', yMax);
  const bw = plotW / Math.max(1, buckets.length);
  buckets.forEach((b, i) => {
    const h = (b.count / yMax) * plotH;
    const x = PAD.left + i * bw;
    out.push(
      `<rect class="bar" x="${(x + 1).toFixed(1)}" y="${(H - PAD.bottom - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#ff7f0e" data-lo="${b.lo}" data-hi="${b.hi}" data-count="${b.count}"/>`,
      `<text x="${(x + bw / 2).toFixed(1)}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="10">${fmt(b.lo)}</text>`,
    );
  });
  out.push('</g>');
  return out;
}

export interface ChartInput {
  title: string;
  /** What `rate` counts per second ('bytes/s', 'messages/s', ...). */
  unit: string;
  timeline: readonly TimePoint[];
  rttUs?: readonly number[];
}

export function perfChartSvg(c: ChartInput): string {
  const parts = [lineChart(0, `${c.title}: throughput over time`, c.unit, c.timeline)];
  if (c.rttUs && c.rttUs.length > 0)
    parts.push(histogramChart(H, `${c.title}: RTT histogram`, rttHistogram(c.rttUs)));
  const height = H * parts.length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    ...parts.flat(),
    '</svg>',
    '',
  ].join('\n');
}
