import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseExposition, sampleValue } from './exposition.js';

describe('parseExposition', () => {
  test('reads families, types, help, labels with escapes, special values and histograms', () => {
    const text = [
      '# HELP a_total Things\\ncounted',
      '# TYPE a_total counter',
      'a_total{kind="x",path="C:\\\\dir \\"q\\"\\nz"} 3',
      'a_total{kind="y"} 1.5e3 1700000000000',
      '# a plain comment',
      '',
      '# TYPE g gauge',
      'g -Inf',
      '# TYPE h histogram',
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="+Inf"} 2',
      'h_sum 0.35',
      'h_count 2',
      '# TYPE n gauge',
      'n NaN',
      '# TYPE n2 gauge',
      'n2 Nan',
      '',
    ].join('\n');
    const f = parseExposition(text);
    assert.deepEqual([...f.keys()], ['a_total', 'g', 'h', 'n', 'n2']);
    assert.equal(f.get('a_total')?.help, 'Things\ncounted');
    assert.equal(f.get('a_total')?.type, 'counter');
    assert.deepEqual(f.get('a_total')?.samples[0]?.labels, { kind: 'x', path: 'C:\\dir "q"\nz' });
    assert.equal(sampleValue(f, 'a_total', { kind: 'y' }), 1500);
    assert.equal(sampleValue(f, 'g'), Number.NEGATIVE_INFINITY);
    assert.equal(sampleValue(f, 'h_bucket', { le: '+Inf' }), 2);
    assert.equal(sampleValue(f, 'h_count'), 2);
    assert.ok(Number.isNaN(sampleValue(f, 'n')));
    assert.ok(Number.isNaN(sampleValue(f, 'n2')));
    assert.throws(() => sampleValue(f, 'a_total'), /2 samples/);
    assert.throws(() => sampleValue(f, 'missing'), /no family/);
  });

  test('refuses malformed input, naming the line', () => {
    const bad: [string, RegExp][] = [
      ['# TYPE x counter\nx 1', /newline/],
      ['# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\n', /repeated/],
      ['# TYPE x counter\ny 1\n', /outside its family/],
      ['x 1\n', /outside its family/],
      ['# TYPE x counter\nx{a=1} 1\n', /not quoted/],
      ['# TYPE x counter\nx{a="1} 1\n', /unterminated/],
      ['# TYPE x counter\nx{a="\\t"} 1\n', /bad escape/],
      ['# TYPE x counter\nx{1a="1"} 1\n', /bad label name/],
      ['# TYPE x counter\nx{a="1",a="2"} 1\n', /twice/],
      ['# TYPE x counter\nx 1 2 3\n', /trailing/],
      ['# TYPE x counter\nx one\n', /bad value/],
      ['# TYPE x counter\nx 1 soon\n', /bad timestamp/],
      ['# TYPE x weird\n', /unknown type/],
      ['# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\n# TYPE x counter\n', /declared twice/],
      ['# TYPE h histogram\nh 1\n', /outside its family/],
      ['# TYPE 9x counter\n', /bad metric name/],
      ['# TYPE x counter\nx{a="1"}1\n', /space before the value/],
    ];
    for (const [text, why] of bad) assert.throws(() => parseExposition(text), why, text);
  });
});
