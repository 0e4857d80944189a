// The configuration checker and the rule matcher take whatever a file holds: random and mutated
// documents never make them throw, every problem comes back as a `$.path: ...` line, and what
// they accept always matches without throwing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUri } from '@ferry/sdk/internal';
import fc from 'fast-check';
import { crossCheck, defaultConfig } from '../config.js';
import { decide } from '../policy/rules.js';
import { OPTION_NAMES } from './options.js';
import { checkValues, validateFile } from './validate.js';

const ctx = { env: { SOME_TOKEN: 'a-token-from-env' }, baseDir: '/nonexistent' };
const keys = [...OPTION_NAMES, 'bogus'];

/** A value for a key: anything JSON, or something close to what the key wants. */
const value = fc.oneof(
  fc.jsonValue(),
  fc.integer(),
  fc.constantFrom('0660', '0777', 'allow', 'deny', 'open', 'refuse', 'nogroup', ''),
  fc.dictionary(
    fc.string({ maxLength: 10 }),
    fc.record(
      { token: fc.string(), tokenEnv: fc.constantFrom('SOME_TOKEN', 'NOPE', '1x'), tokenFile: fc.string() },
      { requiredKeys: [] },
    ),
  ),
  fc.array(
    fc.record(
      {
        action: fc.constantFrom('allow', 'deny', 'maybe'),
        from: fc.constantFrom('a', 'b', '*', 'bad/name'),
        to: fc.constantFrom('a', 'b', '*'),
        via: fc.constantFrom('local', 'remote', 'x'),
        service: fc.constantFrom(
          'tcp://*:80',
          '*://127.0.0.1:*',
          'udp://[::1]:53',
          'tcp:/x',
          'tcp://*:99999',
        ),
        address: fc.constantFrom('10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', '1.2.3.4/33', 'host'),
        port: fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.tuple(fc.integer(), fc.integer())),
      },
      { requiredKeys: [] },
    ),
    { maxLength: 5 },
  ),
);

const doc = fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 8 }));

describe('configuration checker under random input', () => {
  it('never throws; reports each problem with a path; what it accepts is usable', () => {
    fc.assert(
      fc.property(
        doc,
        fc.array(fc.constantFrom('tcp://127.0.0.1:80', 'udp://[fd00::1]:53', 'tcp://db:5432')),
        (d, uris) => {
          const { values, errors } = validateFile(d, ctx);
          for (const e of errors) assert.match(e, /^\$/);
          if (errors.length > 0) return;
          const config = { ...defaultConfig({}), ...values };
          for (const e of crossCheck(config)) assert.match(e, /^\$\./);
          for (const u of uris) {
            const uri = parseUri(u);
            for (const to of ['a', null]) {
              const v = decide(config.rules, config.defaultAction, {
                from: 'a',
                to,
                uri,
                address: uri.host === 'db' ? null : uri.host,
                via: to === null ? 'remote' : 'local',
              });
              assert.ok(v.action === 'allow' || v.action === 'deny');
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never echoes a token in an error', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 7 }).filter((t) => t.trim().length > 3),
        (token) => {
          const { errors } = validateFile({ namespaces: { n: { token } } }, ctx);
          assert.equal(errors.length, 1);
          assert.ok(!errors.join('\n').includes(JSON.stringify(token)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a value zod cannot compare (a length without a prototype) is a reported problem, not a throw', () => {
    // fast-check found it (seed -1389200544): zod's length check ran on the object and threw
    // "Cannot convert object to primitive value" out of safeParse.
    const hostile = { socket: { length: Object.create(null) } };
    const file = validateFile(hostile, ctx);
    assert.deepEqual(file.values, {});
    assert.equal(file.errors.length, 1);
    assert.match(file.errors[0] ?? '', /^\$: expected plain JSON values .*could not read/);
    const inCode = checkValues({ socket: hostile.socket }, ['socket']);
    assert.equal(inCode.length, 1);
    assert.match(inCode[0] ?? '', /^\$\.socket: expected plain JSON values/);
  });
});
