import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { perfChartSvg, rttHistogram } from './chart.js';
import { PerfRecorder } from './progress.js';

/** Tags open and close in order (no XML parser here: a stack of names). */
function checkBalanced(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, close, name = '', selfClose] = m;
    if (selfClose) continue;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the open tag`);
    else stack.push(name);
  }
  assert.deepEqual(stack, []);
}

const attrs = (svg: string, cls: string, attr: string) =>
  [...svg.matchAll(new RegExp(`class="${cls}"[^>]*data-${attr}="([^"]+)"`, 'g'))].map((m) => Number(m[1]));

describe('perf charts', () => {
  test('rtt histogram: log2 buckets that hold every sample once', () => {
    const samples = [3, 3.5, 4, 7.9, 8, 100, 1000, 1023.9];
    const b = rttHistogram(samples);
    assert.equal(b[0]?.lo, 2);
    assert.ok(b.every((x, i) => i === 0 || x.lo === (b[i - 1]?.hi ?? 0)));
    assert.equal(b.at(-1)?.hi, 1024);
    assert.equal(
      b.reduce((s, x) => s + x.count, 0),
      samples.length,
    );
    assert.deepEqual(
      b.filter((x) => x.count > 0).map((x) => [x.lo, x.count]),
      [
        [2, 2],
        [4, 2],
        [8, 1],
        [64, 1],
        [512, 2],
      ],
    );
    assert.deepEqual(rttHistogram([]), []);
  });

  test('the SVG carries every point and bar with its value, and is well formed', () => {
    const timeline = [
      { t: 0.1, rate: 10 },
      { t: 0.2, rate: 30 },
      { t: 0.3, rate: 20 },
    ];
    const rtt = Array.from({ length: 500 }, (_, i) => 5 + (i % 97) * 3);
    const svg = perfChartSvg({ title: 'a <test> & "chart"', unit: 'bytes/s', timeline, rttUs: rtt });
    checkBalanced(svg);
    assert.match(svg, /^<\?xml version="1\.0"/);
    assert.ok(svg.includes('a &lt;test&gt; &amp; &quot;chart&quot;'));
    assert.deepEqual(attrs(svg, 'point', 'rate'), [10, 30, 20]);
    assert.equal(
      attrs(svg, 'bar', 'count').reduce((s, n) => s + n, 0),
      500,
    );
    // The highest rate is the highest point (smallest y).
    const ys = [...svg.matchAll(/class="point" cx="[^"]+" cy="([^"]+)"/g)].map((m) => Number(m[1]));
    assert.equal(ys.indexOf(Math.min(...ys)), 1);
    // Without rtt samples: one chart only.
    assert.equal(attrs(perfChartSvg({ title: 't', unit: 'u', timeline }), 'bar', 'count').length, 0);
  });

  test('the recorder: a timeline whose steps add up to the work done, and progress lines', () => {
    let now = 0;
    const lines: string[] = [];
    const rec = new PerfRecorder(
      1000,
      'bytes',
      (l) => lines.push(l),
      false,
      () => now,
    );
    for (let i = 1; i <= 25; i++) {
      now = i * 100;
      rec.add(40);
      rec.sample();
    }
    now = 2550;
    rec.stop();
    let done = 0;
    let prev = 0;
    for (const p of rec.timeline) {
      done += p.rate * (p.t - prev);
      prev = p.t;
    }
    assert.ok(Math.abs(done - 1000) < 1e-6, `timeline adds up to ${done}`);
    // A line a second (not on the final sample), each ending in a newline without a terminal.
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^40\.0% \(400 of 1\.00k bytes\) 400 bytes\/s, 1\.0 s\n$/);
    assert.match(lines[1] ?? '', /^80\.0% \(800 of 1\.00k bytes\)/);
    // On a terminal the line is rewritten in place, and cleared at the end.
    const tty: string[] = [];
    now = 0;
    const r2 = new PerfRecorder(
      10,
      'x',
      (l) => tty.push(l),
      true,
      () => now,
    );
    now = 1000;
    r2.add(5);
    r2.sample();
    r2.stop();
    assert.ok((tty[0] ?? '').startsWith('\r\u001b[K50.0%'), tty[0]);
    assert.equal(tty.at(-1), '\r\u001b[K');
  });
});
