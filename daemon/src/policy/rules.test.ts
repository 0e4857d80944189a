// Session rules and namespace checks, without processes: matching, first match, the default, tokens.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FerryError, parseUri } from '@ferry/sdk/internal';
import { ListenerTable } from '../app/listener-table.js';
import { hashToken } from '../config/tokens.js';
import { defaultConfig, type Rule } from '../config.js';
import { Policy } from './policy.js';
import { type ConnectContext, decide, ruleMatches } from './rules.js';

const ctx = (over: Partial<Omit<ConnectContext, 'uri'>> & { uri?: string } = {}): ConnectContext => ({
  from: 'a',
  to: 'a',
  via: 'local',
  address: '127.0.0.1',
  ...over,
  uri: parseUri(over.uri ?? 'tcp://127.0.0.1:80'),
});

describe('rules', () => {
  it('match on every field, each left out matching anything', () => {
    assert.ok(ruleMatches({ action: 'deny' }, ctx()));
    assert.ok(ruleMatches({ action: 'deny', from: 'a', to: '*' }, ctx()));
    assert.ok(!ruleMatches({ action: 'deny', from: 'b' }, ctx()));
    assert.ok(!ruleMatches({ action: 'deny', to: 'b' }, ctx()));
    assert.ok(!ruleMatches({ action: 'deny', to: '*' }, ctx({ to: null, via: 'remote' })));
    assert.ok(ruleMatches({ action: 'deny', via: 'remote' }, ctx({ to: null, via: 'remote' })));
    assert.ok(!ruleMatches({ action: 'deny', via: 'remote' }, ctx()));
    assert.ok(ruleMatches({ action: 'deny', port: 80 }, ctx()));
    assert.ok(ruleMatches({ action: 'deny', port: [1, 1024] }, ctx()));
    assert.ok(!ruleMatches({ action: 'deny', port: [81, 1024] }, ctx()));
  });

  it('match services with wildcards and canonical hosts', () => {
    assert.ok(ruleMatches({ action: 'deny', service: 'tcp://*:80' }, ctx()));
    assert.ok(ruleMatches({ action: 'deny', service: '*://localhost:*' }, ctx()));
    assert.ok(
      ruleMatches({ action: 'deny', service: 'tcp://127.0.0.1:80' }, ctx({ uri: 'tcp://localhost:80' })),
    );
    assert.ok(!ruleMatches({ action: 'deny', service: 'udp://*:80' }, ctx()));
    assert.ok(!ruleMatches({ action: 'deny', service: 'tcp://*:81' }, ctx()));
    // A host name resolved by ferryd: the service may name the address it resolved to.
    assert.ok(
      ruleMatches(
        { action: 'deny', service: 'tcp://10.1.2.3:80' },
        ctx({ uri: 'tcp://db.internal:80', address: '10.1.2.3' }),
      ),
    );
  });

  it('match IPv4 and IPv6 addresses and CIDR blocks; a host name matches no address', () => {
    const r = (address: string): Rule => ({ action: 'deny', address });
    assert.ok(ruleMatches(r('127.0.0.0/8'), ctx()));
    assert.ok(ruleMatches(r('127.0.0.1'), ctx()));
    assert.ok(!ruleMatches(r('10.0.0.0/8'), ctx()));
    assert.ok(ruleMatches(r('0.0.0.0/0'), ctx()));
    assert.ok(ruleMatches(r('10.1.0.0/15'), ctx({ address: '10.0.255.1' })));
    assert.ok(!ruleMatches(r('10.1.0.0/16'), ctx({ address: '10.0.255.1' })));
    assert.ok(ruleMatches(r('fd00::/8'), ctx({ address: 'fd12:3456::1' })));
    assert.ok(!ruleMatches(r('fd00::/8'), ctx({ address: 'fe80::1' })));
    assert.ok(ruleMatches(r('::1'), ctx({ address: '0:0:0:0:0:0:0:1' })));
    assert.ok(ruleMatches(r('10.0.0.0/8'), ctx({ address: '::ffff:10.2.3.4' })));
    assert.ok(!ruleMatches(r('10.0.0.0/8'), ctx({ address: null })));
  });

  it('first match wins; no match takes the default action', () => {
    const rules: Rule[] = [
      { action: 'allow', port: 80 },
      { action: 'deny', from: 'a' },
    ];
    assert.deepEqual(decide(rules, 'deny', ctx()), { action: 'allow', rule: 0 });
    assert.deepEqual(decide(rules, 'allow', ctx({ uri: 'tcp://127.0.0.1:81' })), { action: 'deny', rule: 1 });
    assert.deepEqual(decide(rules, 'deny', ctx({ from: 'b', uri: 'tcp://127.0.0.1:81' })), {
      action: 'deny',
      rule: -1,
    });
  });
});

describe('Policy', () => {
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (err) {
      return (err as FerryError).code;
    }
    return undefined;
  };

  it('checks tokens: needed where configured, refused where none is expected', () => {
    const c = defaultConfig({});
    c.namespaces = { locked: { tokenHash: hashToken('right-token'), tokenSource: 'token' } };
    const p = new Policy(c);
    assert.equal(p.checkAttach('default', ''), null);
    assert.equal(p.checkAttach('locked', 'right-token'), null);
    assert.equal(p.checkAttach('locked', 'wrong-token')?.code, 'EACCES');
    assert.equal(p.checkAttach('locked', '')?.code, 'EACCES');
    assert.equal(p.checkAttach('default', 'unexpected')?.code, 'EACCES');
    assert.equal(p.checkAttach('../etc', '')?.code, 'EACCES');
    assert.ok(!p.checkAttach('locked', 'wrong-token')?.message.includes('right-token'));
    assert.equal(p.counters.attachRefused, 5);
    c.unlistedNamespaces = 'refuse';
    assert.equal(p.checkAttach('default', '')?.code, 'EACCES');
  });

  it('admits only the listed uids or gids when a namespace names them', () => {
    const c = defaultConfig({});
    c.namespaces = {
      ops: { tokenHash: null, tokenSource: null, uids: [1000], gids: [50] },
      both: { tokenHash: hashToken('ops-token-1'), tokenSource: 'token', uids: [0] },
    };
    const p = new Policy(c);
    assert.equal(p.checkAttach('ops', '', { uid: 1000, gid: 1000 }), null);
    assert.equal(p.checkAttach('ops', '', { uid: 7, gid: 50 }), null);
    assert.equal(p.checkAttach('ops', '', { uid: 7, gid: 7 })?.code, 'EACCES');
    assert.equal(p.checkAttach('ops', '')?.code, 'EACCES', 'no credentials, no entry');
    // Both must hold: the right uid and the token.
    assert.equal(p.checkAttach('both', 'ops-token-1', { uid: 0, gid: 0 }), null);
    assert.equal(p.checkAttach('both', 'wrong-token', { uid: 0, gid: 0 })?.code, 'EACCES');
    assert.equal(p.checkAttach('both', 'ops-token-1', { uid: 1, gid: 0 })?.code, 'EACCES');
  });

  it('reaches another namespace only through an allow rule with `to`', () => {
    const c = defaultConfig({});
    const p = new Policy(c);
    const t = new ListenerTable();
    const uri = parseUri('tcp://127.0.0.1:7000');
    const inB = t.add(1, 'b', uri);
    assert.ok(inB);
    assert.equal(
      code(() => p.routeLocal('a', uri, t)),
      'ERR_FERRY_DENIED',
    );
    c.rules = [{ action: 'allow', port: 7000 }];
    assert.equal(
      code(() => p.routeLocal('a', uri, t)),
      'ERR_FERRY_DENIED',
      'an allow without `to` does not open b',
    );
    c.rules = [{ action: 'allow', from: 'a', to: 'b' }];
    assert.equal(p.routeLocal('a', uri, t), inB);
    assert.equal(p.routeLocal('b', uri, t), inB);
    assert.equal(p.routeLocal('a', parseUri('tcp://127.0.0.1:7001'), t), null, 'no listener: remote');
    // Each namespace reaches its own listener on a shared address.
    const inA = t.add(2, 'a', uri);
    assert.equal(p.routeLocal('a', uri, t), inA);
    c.rules = [{ action: 'deny', from: 'a', to: 'a' }];
    assert.equal(
      code(() => p.routeLocal('a', uri, t)),
      'ERR_FERRY_DENIED',
    );
    assert.equal(p.counters.deniedConnects, 3);
  });

  it('checks remote connects with the default action and remote rules', async () => {
    const c = defaultConfig({});
    const p = new Policy(c);
    const uri = parseUri('tcp://127.0.0.1:9');
    assert.deepEqual(await p.routeRemote('a', uri), uri);
    c.rules = [{ action: 'deny', via: 'remote', address: '127.0.0.0/8' }];
    await assert.rejects(p.routeRemote('a', uri), { code: 'ERR_FERRY_DENIED' });
    const named = await p.routeRemote('a', parseUri('tcp://198.18.0.1:9'));
    assert.equal(named.host, '198.18.0.1');
    // A host name is resolved before the check, and the connect goes to what was checked.
    await assert.rejects(p.routeRemote('a', parseUri('tcp://localhost:9')), { code: 'ERR_FERRY_DENIED' });
    c.rules = [];
    c.defaultAction = 'deny';
    await assert.rejects(p.routeRemote('a', uri), { code: 'ERR_FERRY_DENIED' });
  });
});
