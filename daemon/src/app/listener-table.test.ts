import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { describe, it } from 'node:test';
import { parseUri } from '@ferry/sdk/internal';
import { ListenerTable } from './listener-table.js';
import { mayBeLocalHost } from './local-address.js';

describe('ListenerTable routing', () => {
  it('an exact host wins over a wildcard on the same port', () => {
    const t = new ListenerTable(() => true);
    const wild = t.add(1, 'ns', parseUri('tcp://0.0.0.0:7000'));
    const exact = t.add(2, 'ns', parseUri('tcp://127.0.0.1:7000'));
    assert.equal(t.lookup('ns', parseUri('tcp://127.0.0.1:7000'))?.id, exact?.id);
    assert.equal(t.lookup('ns', parseUri('tcp://localhost:7000'))?.id, exact?.id);
    assert.equal(t.lookup('ns', parseUri('tcp://10.1.2.3:7000'))?.id, wild?.id);
  });

  it("a wildcard listener does not answer for another machine's address", () => {
    const t = new ListenerTable((host) => host === '127.0.0.1');
    const wild = t.add(1, 'ns', parseUri('tcp://0.0.0.0:7000'));
    assert.equal(t.lookup('ns', parseUri('tcp://127.0.0.1:7000'))?.id, wild?.id);
    assert.equal(t.lookup('ns', parseUri('tcp://198.18.0.77:7000')), undefined);
    assert.deepEqual(t.lookupAll(parseUri('tcp://198.18.0.77:7000')), []);
    assert.deepEqual(
      t.lookupAll(parseUri('tcp://127.0.0.1:7000')).map((l) => l.id),
      [wild?.id],
    );
    // An exact listener on a foreign-looking address is still found (it was registered here).
    const exact = t.add(2, 'ns', parseUri('tcp://198.18.0.77:7000'));
    assert.equal(t.lookup('ns', parseUri('tcp://198.18.0.77:7000'))?.id, exact?.id);
  });
});

describe('mayBeLocalHost', () => {
  it('loopback, wildcard and names may be local; a foreign IP is not', () => {
    for (const h of ['127.0.0.1', '127.9.9.9', 'localhost', '::1', '0.0.0.0', '::', 'ferryd-b']) {
      assert.equal(mayBeLocalHost(h), true, h);
    }
    // 198.51.100.0/24 is TEST-NET-2 (RFC 5737): never a configured address here.
    assert.equal(mayBeLocalHost('198.51.100.7'), false);
    assert.equal(mayBeLocalHost('2001:db8::7'), false);
  });

  it("every address of this machine's interfaces is local", () => {
    const addrs = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
    assert.ok(addrs.length > 0);
    for (const a of addrs) assert.equal(mayBeLocalHost(a), true, a);
  });
});
