/**
 * What `ferry perf client` reports while it runs: a timeline of the work done (for the chart) and
 * progress lines on stderr (rewritten in place on a terminal, one line per report otherwise).
 */
import type { TimePoint } from './chart.js';

export const TIMELINE_STEP_MS = 100;
const REPORT_MS = 1000;

export class PerfRecorder {
  readonly timeline: TimePoint[] = [];
  #done = 0;
  #lastDone = 0;
  #start: number;
  #last: number;
  #lastReport: number;
  #timer: NodeJS.Timeout | null = null;
  #total: number;
  #unit: string;
  #report: ((line: string) => void) | null;
  #tty: boolean;
  #now: () => number;

  /** `now` (ms) is for tests; `start()` samples every TIMELINE_STEP_MS on a timer. */
  constructor(
    total: number,
    unit: string,
    report: ((line: string) => void) | null,
    tty: boolean,
    now: () => number = () => performance.now(),
  ) {
    this.#total = total;
    this.#unit = unit;
    this.#report = report;
    this.#tty = tty;
    this.#now = now;
    this.#start = now();
    this.#last = this.#start;
    this.#lastReport = this.#start;
  }

  start(): void {
    this.#start = this.#now();
    this.#last = this.#start;
    this.#lastReport = this.#start;
    this.#timer = setInterval(() => this.sample(), TIMELINE_STEP_MS);
    this.#timer.unref();
  }

  /** One timeline step (the timer's job; tests call it with their own clock). */
  sample(): void {
    this.#tick(false);
  }

  add(units: number): void {
    this.#done += units;
  }

  /** Ends the timeline with the last partial interval; clears the progress line on a terminal. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#tick(true);
    if (this.#report && this.#tty) this.#report('\r\x1b[K');
  }

  #tick(final: boolean): void {
    const now = this.#now();
    const dt = (now - this.#last) / 1000;
    if (dt <= 0 || (final && this.#done === this.#lastDone && this.timeline.length > 0)) return;
    this.timeline.push({ t: (now - this.#start) / 1000, rate: (this.#done - this.#lastDone) / dt });
    this.#last = now;
    this.#lastDone = this.#done;
    if (this.#report && !final && now - this.#lastReport >= REPORT_MS) {
      this.#lastReport = now;
      this.#report(this.#line(now));
    }
  }

  #line(now: number): string {
    const secs = (now - this.#start) / 1000;
    const pct = this.#total > 0 ? Math.min(100, (this.#done / this.#total) * 100) : 0;
    const recent = this.timeline.slice(-Math.round(REPORT_MS / TIMELINE_STEP_MS));
    const rate = recent.reduce((s, p) => s + p.rate, 0) / Math.max(1, recent.length);
    const text = `${pct.toFixed(1)}% (${human(this.#done)} of ${human(this.#total)} ${this.#unit}) ${human(rate)} ${this.#unit}/s, ${secs.toFixed(1)} s`;
    return this.#tty ? `\r\x1b[K${text}` : `${text}\n`;
  }
}

function human(n: number): string {
  for (const [v, u] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (n >= v) return `${(n / v).toFixed(2)}${u}`;
  }
  return String(Math.round(n));
}
