// Property tests of the other decoders ferryd and the SDK run on a peer's input: session URIs (an
// app names any string in connect and listen) and wire statuses (any value the codec admits).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../errors.js';
import { errorFromWire } from './ctrl/status.js';
import { endpointKey, formatUri, parseUri, URI_SCHEMES } from './uri.js';

const OPTS = { seed: 0x0071_f022, numRuns: 2000 } as const;

const validUri = fc
  .record({
    scheme: fc.constantFrom(...URI_SCHEMES),
    host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.constantFrom('*', 'localhost', '0.0.0.0', '::')),
    port: fc.integer({ min: 0, max: 65535 }),
  })
  .map((u) => formatUri(u));

/** A URI string with characters replaced, inserted or deleted. */
const mutatedUri = fc
  .tuple(
    validUri,
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 }), fc.string({ maxLength: 3 })), { maxLength: 4 }),
  )
  .map(([u, edits]) => {
    let s = u;
    for (const [at, kind, text] of edits) {
      const i = s.length === 0 ? 0 : at % s.length;
      if (kind === 0) s = s.slice(0, i) + text + s.slice(i + 1);
      else if (kind === 1) s = s.slice(0, i) + text + s.slice(i);
      else s = s.slice(0, i) + s.slice(i + 1);
    }
    return s;
  });

test('parseUri: any string gives a well-formed URI that round-trips, or ERR_FERRY_BAD_URI', {
  timeout: 30_000,
}, () => {
  let parsed = 0;
  let refused = 0;
  fc.assert(
    fc.property(
      fc.oneof(
        validUri,
        mutatedUri,
        fc.string({ maxLength: 64 }),
        fc.string({ minLength: 1000, maxLength: 1100 }),
      ),
      (s) => {
        let u: ReturnType<typeof parseUri>;
        try {
          u = parseUri(s);
        } catch (e) {
          if (!(e instanceof FerryError) || e.code !== 'ERR_FERRY_BAD_URI')
            assert.fail(`unexpected ${String(e)}`);
          refused++;
          return;
        }
        parsed++;
        assert.ok((URI_SCHEMES as readonly string[]).includes(u.scheme));
        assert.ok(Number.isInteger(u.port) && u.port >= 0 && u.port <= 65535);
        assert.ok(u.host.length > 0);
        assert.deepEqual(parseUri(formatUri(u)), u);
        assert.equal(typeof endpointKey(u), 'string');
      },
    ),
    OPTS,
  );
  assert.ok(parsed > 100 && refused > 100, `parsed ${parsed}, refused ${refused}`);
});

test('errorFromWire: every status the codec admits gives a FerryError with a known code', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: -1 }), fc.string({ maxLength: 300 }), (st, err) => {
      const e = errorFromWire(st, err);
      assert.ok(e instanceof FerryError);
      assert.equal(e.wireStatus, st);
      assert.equal(typeof e.code, 'string');
    }),
    OPTS,
  );
});
