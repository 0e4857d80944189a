/**
 * Differential node:net conformance: every scenario runs on node:net (TCP loopback: the
 * reference; a unix socket: node's own second transport) and on Ferry (cut-through, and ferryd
 * carrying kernel TCP to or from a node:net peer), and what a user observes must be the same, or
 * differ exactly as KNOWN_DIVERGENCES lists. FERRY_CONF_PRINT=1 prints every observation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';
import { diffObservations } from './compare.js';
import { KNOWN_DIVERGENCES } from './known-divergences.js';
import type { Observation, Scenario } from './scenario.js';
import { CLOSE_SCENARIOS } from './scenarios-close.js';
import { CONNECT_SCENARIOS } from './scenarios-connect.js';
import { PROCESS_SCENARIOS } from './scenarios-process.js';
import { SERVER_SCENARIOS } from './scenarios-server.js';
import { STREAM_SCENARIOS } from './scenarios-stream.js';
import { WRITE_SCENARIOS } from './scenarios-write.js';
import { Scope } from './scope.js';
import { TARGETS, type Target, target } from './targets.js';

const SCENARIOS: readonly Scenario[] = [
  ...STREAM_SCENARIOS,
  ...WRITE_SCENARIOS,
  ...CLOSE_SCENARIOS,
  ...SERVER_SCENARIOS,
  ...CONNECT_SCENARIOS,
  ...PROCESS_SCENARIOS,
];
const print = process.env['FERRY_CONF_PRINT'] === '1';
let d: DaemonHandle;

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
});

after(async () => {
  await d?.stop();
});

async function observe(s: Scenario, t: Target): Promise<Observation> {
  const sc = new Scope(t);
  try {
    // A scenario that throws is an observation too (a method missing, a signature refused).
    const o = await s.run(sc).catch((e: Error) => ({ common: { threw: `${e.name}: ${e.message}` } }));
    // A copy taken now: traces are live arrays, and the teardown below still adds to them.
    const copy = JSON.parse(JSON.stringify(o)) as Observation;
    if (print) console.log(`## ${s.name} [${t.name}]\n${JSON.stringify(copy)}`);
    return copy;
  } finally {
    await sc.close();
  }
}

test('every scenario name is unique and every known divergence names a scenario and a Ferry target', () => {
  const names = SCENARIOS.map((s) => s.name);
  assert.equal(new Set(names).size, names.length);
  for (const [name, byTarget] of Object.entries(KNOWN_DIVERGENCES)) {
    assert.ok(names.includes(name), `known divergence for unknown scenario: ${name}`);
    for (const t of Object.keys(byTarget)) assert.ok(target(t as Target['name']).ferry, `${name}: ${t}`);
  }
});

for (const s of SCENARIOS) {
  describe(s.name, () => {
    let ref: Observation;
    before(async () => {
      ref = await observe(s, target('net-tcp'));
    });

    test('node:net (the reference) does what the scenario claims', () => {
      s.check?.(ref);
    });

    for (const t of TARGETS) {
      if (t.name === 'net-tcp' || (s.inetOnly && t.kind !== 'inet')) continue;
      test(t.name, async () => {
        const got = await observe(s, t);
        const diff = diffObservations(ref, got);
        if (print && diff.length > 0) console.log(`DIFF ${JSON.stringify([s.name, t.name, diff])}`);
        // node:net on a unix socket must agree with node:net on TCP (beyond the addresses, which
        // scenarios keep apart in `inet`): a disagreement means the scenario observes timing.
        const known = t.ferry ? (KNOWN_DIVERGENCES[s.name]?.[t.name] ?? []) : [];
        assert.deepEqual(diff, known);
      });
    }
  });
}
