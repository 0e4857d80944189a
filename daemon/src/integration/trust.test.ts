/**
 * Who may attach and who may connect, against a real ferryd and real app processes: the socket's
 * mode, SO_PEERCRED, namespace tokens (and their rotation on SIGHUP), namespace isolation, session
 * rules for cut-through and remote TCP connects, and the configuration file's validation.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { closeServer, netServer } from '../testing/net-peer.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-trust-'));
const running: { stop(): Promise<void> }[] = [];
after(async () => {
  for (const r of running.reverse()) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function configFile(doc: unknown): string {
  const f = join(dir, `ferryd-${++files}.json`);
  writeFileSync(f, JSON.stringify(doc));
  return f;
}

async function daemon(
  doc: unknown,
  env: Record<string, string> = {},
): Promise<{ d: DaemonHandle; file: string }> {
  const file = configFile(doc);
  const d = await startDaemon(['--config', file], { env });
  running.push(d);
  return { d, file };
}

const CLI = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
const UDP_APP = fileURLToPath(new URL('../testing/udp-app.js', import.meta.url));

async function app(d: DaemonHandle, env: Record<string, string> = {}, script?: string): Promise<AppHandle> {
  const a = await startApp(d.socket, env, script);
  running.push({ stop: () => a.kill() });
  return a;
}

/** Rewrites the file, sends SIGHUP and waits for ferryd to log the outcome. */
async function reload(d: DaemonHandle, file: string, doc: unknown | string): Promise<string> {
  const before = d.output().split('configuration reload').length;
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  d.proc.kill('SIGHUP');
  await eventually(
    async () => d.output().split('configuration reload').length > before,
    10_000,
    'reload log',
  );
  return `configuration reload${d.output().split('configuration reload').at(-1) ?? ''}`;
}

async function listen(a: AppHandle, behavior = 'echo'): Promise<string> {
  const r = await a.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior });
  return String(r['uri']);
}

/** Connects, sends a few bytes and reads them back: the session works end to end. */
async function echoes(a: AppHandle, uri: string, tag: string): Promise<string> {
  const r = await a.ok({ op: 'connect', tag, uri });
  await a.ok({ op: 'end', tag, data: 'ping' });
  const end = await a.waitFor((e) => e.event === 'end' && e.tag === tag);
  assert.equal(end['rxBytes'], 4);
  return String(r['transport']);
}

const policyOf = async (d: DaemonHandle) => (await d.stats())['policy'] as Record<string, unknown>;

describe('attach', () => {
  it('creates the socket files with the configured mode and records SO_PEERCRED', async () => {
    const { d } = await daemon({ socketMode: '0600' });
    assert.equal(statSync(d.socket).mode & 0o777, 0o600);
    await eventually(async () => (statSync(`${d.socket}.admin`).mode & 0o777) === 0o600, 5000, 'admin mode');
    const { d: d2 } = await daemon({});
    assert.equal(statSync(d2.socket).mode & 0o777, 0o660, 'the default mode is 0660');

    const a = await app(d);
    await listen(a);
    const apps = (await d.show('apps')) as Record<string, unknown>[];
    const row = apps.find((x) => x['pid'] === a.proc.pid);
    assert.ok(row, JSON.stringify(apps));
    assert.equal(row['uid'], process.getuid?.());
    assert.equal(row['gid'], process.getgid?.());
    assert.equal(row['namespace'], 'default');
  });

  it('gives the socket files the configured group', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('changing a file to another group takes root');
      return;
    }
    const { d } = await daemon({ socketGroup: 65534, socketMode: '0660' });
    assert.equal(statSync(d.socket).gid, 65534);
    await eventually(async () => statSync(`${d.socket}.admin`).gid === 65534, 5000, 'admin group');
    await assert.rejects(
      startDaemon(['--config', configFile({ socketGroup: 'no-such-group-x' })]),
      /no group named 'no-such-group-x'/,
    );
  });

  it('needs the namespace token, compares it, never shows it, and rotates it on SIGHUP', async () => {
    const tokenFile = join(dir, 'secure.token');
    const first = 'first-secret-3f9a1c77';
    const second = 'second-secret-b61d02e4';
    const envToken = 'env-secret-0d8e5a21';
    writeFileSync(tokenFile, `${first}\n`);
    const doc = {
      namespaces: { secure: { tokenFile }, fromenv: { tokenEnv: 'FERRY_TEST_NS_TOKEN' } },
    };
    const { d, file } = await daemon(doc, { FERRY_TEST_NS_TOKEN: envToken });

    const wrong = await app(d, { FERRY_NAMESPACE: 'secure', FERRY_TOKEN: 'not-the-secret' });
    const r1 = await wrong.call({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    assert.equal(r1['code'], 'EACCES', JSON.stringify(r1));
    const none = await app(d, { FERRY_NAMESPACE: 'secure' });
    assert.equal(
      (await none.call({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' }))['code'],
      'EACCES',
    );
    const unexpected = await app(d, { FERRY_TOKEN: 'a-token-default-does-not-need' });
    assert.equal(
      (await unexpected.call({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' }))['code'],
      'EACCES',
    );

    const server = await app(d, { FERRY_NAMESPACE: 'secure', FERRY_TOKEN: first });
    const uri = await listen(server);
    const client = await app(d, { FERRY_NAMESPACE: 'secure', FERRY_TOKEN: first });
    assert.equal(await echoes(client, uri, 'c1'), 'ct');
    const envApp = await app(d, { FERRY_NAMESPACE: 'fromenv', FERRY_TOKEN: envToken });
    await listen(envApp);

    const namespaces = (await d.show('namespaces')) as Record<string, unknown>[];
    const secure = namespaces.find((n) => n['namespace'] === 'secure');
    assert.match(String(secure?.['token']), /^sha256:[0-9a-f]{8}$/);
    assert.equal(secure?.['apps'], 2);
    const fp1 = secure?.['token'];

    assert.match(await reload(d, file, doc), /no change/);
    writeFileSync(tokenFile, second);
    assert.match(await reload(d, file, doc), /reloaded: namespaces/);
    const fp2 = ((await d.show('namespaces')) as Record<string, unknown>[]).find(
      (n) => n['namespace'] === 'secure',
    )?.['token'];
    assert.notEqual(fp2, fp1);

    // Attached apps keep running; a new attach needs the new token.
    const stale = await app(d, { FERRY_NAMESPACE: 'secure', FERRY_TOKEN: first });
    assert.equal((await stale.call({ op: 'connect', tag: 's', uri }))['code'], 'EACCES');
    const fresh = await app(d, { FERRY_NAMESPACE: 'secure', FERRY_TOKEN: second });
    assert.equal(await echoes(fresh, uri, 'f1'), 'ct');
    assert.equal(await echoes(client, uri, 'c2'), 'ct');

    const policy = await policyOf(d);
    assert.equal(policy['attachRefused'], 4);
    const shown = JSON.stringify([
      await d.show('apps'),
      await d.show('namespaces'),
      await d.show('stats'),
      await d.show('rules'),
    ]);
    for (const secret of [first, second, envToken, 'not-the-secret']) {
      assert.ok(!d.output().includes(secret), `ferryd's output shows a token: ${d.output()}`);
      assert.ok(!shown.includes(secret), 'ferry show shows a token');
    }
  });

  it('admits to a namespace only the uids or gids it lists (from SO_PEERCRED)', async () => {
    const uid = process.getuid?.() ?? 0;
    const other = uid === 54321 ? 54322 : 54321;
    const { d } = await daemon({ namespaces: { mine: { uids: [uid] }, theirs: { uids: [other] } } });
    const ok = await app(d, { FERRY_NAMESPACE: 'mine' });
    await listen(ok);
    const no = await app(d, { FERRY_NAMESPACE: 'theirs' });
    const r = await no.call({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    assert.equal(r['code'], 'EACCES');
    assert.match(String(r['message']), new RegExp(`uid ${uid} / gid \\d+ may not attach`));
    const ns = (await d.show('namespaces')) as Record<string, unknown>[];
    assert.deepEqual(ns.find((n) => n['namespace'] === 'theirs')?.['uids'], [other]);
  });

  it('refuses to start on an invalid configuration, naming each offending key', async () => {
    const file = configFile({ maxApps: -1, rules: [{ action: 'allow', from: 'a/b' }] });
    await assert.rejects(startDaemon(['--config', file]), (err: Error) => {
      assert.match(err.message, /exited with 2/);
      assert.match(err.message, /\$\.maxApps: expected an integer in 1\.\.1000000, got -1/);
      assert.match(err.message, /\$\.rules\[0\]\.from: expected a namespace name or "\*", got "a\/b"/);
      return true;
    });
  });
});

describe('ferry config', () => {
  it('check prints the configuration with fingerprints, never tokens; exits 2 when invalid', () => {
    const token = 'check-secret-7a0c3e19';
    const file = configFile({ maxApps: 9, namespaces: { n1: { token } } });
    const ok = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const shown = JSON.parse(ok.stdout) as Record<string, unknown>;
    assert.equal(shown['maxApps'], 9);
    assert.match(JSON.stringify(shown['namespaces']), /"token":"sha256:[0-9a-f]{8}"/);
    assert.ok(!ok.stdout.includes(token) && !ok.stderr.includes(token));
    const bad = spawnSync(
      process.execPath,
      [CLI, 'config', 'check', '--config', configFile({ namespaces: { n1: { token: 'shorty' } } })],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /\$\.namespaces\.n1\.token: expected a string of 8\.\.4096 characters/);
    assert.ok(!bad.stderr.includes('shorty'));
    const defaults = spawnSync(process.execPath, [CLI, 'config', 'defaults'], { encoding: 'utf8' });
    assert.equal(defaults.status, 0);
    // What `config defaults` prints is itself a valid file.
    const again = spawnSync(
      process.execPath,
      [CLI, 'config', 'check', '--config', configFile(JSON.parse(defaults.stdout))],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(again.status, 0, again.stderr);
  });
});

describe('ferry show', () => {
  it('finds the socket in --config FILE without needing the tokens the file names', async () => {
    const { d } = await daemon({});
    const file = configFile({ socket: d.socket, namespaces: { n: { tokenEnv: 'FERRY_TEST_UNSET_TOKEN' } } });
    const env = { ...process.env };
    delete env['FERRY_SOCKET'];
    delete env['FERRY_TEST_UNSET_TOKEN'];
    const r = spawnSync(process.execPath, [CLI, 'show', 'rules', '--json', '--config', file], {
      encoding: 'utf8',
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.at(-1)?.['rule'], 'default');
  });
});

describe('namespaces and rules', () => {
  it('isolates namespaces unless a rule with `to` allows, and applies rule changes on SIGHUP', async () => {
    const { d, file } = await daemon({ namespaces: { a: {}, b: {} } });
    const serverA = await app(d, { FERRY_NAMESPACE: 'a' });
    const uri = await listen(serverA);
    const clientA = await app(d, { FERRY_NAMESPACE: 'a' });
    const clientB = await app(d, { FERRY_NAMESPACE: 'b' });
    assert.equal(await echoes(clientA, uri, 'a1'), 'ct');
    // b does not see a's listener, and is not routed to its kernel socket either.
    const denied = await clientB.call({ op: 'connect', tag: 'b1', uri });
    assert.equal(denied['code'], 'ERR_FERRY_DENIED', JSON.stringify(denied));
    const listeners = (await d.show('listeners')) as Record<string, unknown>[];
    assert.deepEqual(
      listeners.map((l) => l['namespace']),
      ['a'],
    );

    const port = Number(uri.split(':').at(-1));
    const allow = { namespaces: { a: {}, b: {} }, rules: [{ action: 'allow', from: 'b', to: 'a', port }] };
    assert.match(await reload(d, file, allow), /reloaded: rules/);
    assert.equal(await echoes(clientB, uri, 'b2'), 'ct');

    const deny = {
      ...allow,
      rules: [...allow.rules, { action: 'deny', from: 'a', to: 'a', service: `tcp://*:${port}` }],
    };
    await reload(d, file, deny);
    assert.equal((await clientA.call({ op: 'connect', tag: 'a2', uri }))['code'], 'ERR_FERRY_DENIED');
    assert.equal(await echoes(clientB, uri, 'b3'), 'ct');

    const rules = (await d.show('rules')) as Record<string, unknown>[];
    assert.deepEqual(
      rules.map((r) => [r['rule'], r['action'], r['hits']]),
      [
        [0, 'allow', 1],
        [1, 'deny', 1],
        ['default', 'allow', 0],
      ],
    );
    assert.equal((await policyOf(d))['deniedConnects'], 2);

    // A broken file is refused whole: the running rules stay.
    assert.match(
      await reload(d, file, '{"rules": ['),
      /refused, the running one stays: [\s\S]*not valid JSON/,
    );
    assert.equal((await clientA.call({ op: 'connect', tag: 'a3', uri }))['code'], 'ERR_FERRY_DENIED');
    assert.equal((await policyOf(d))['reloadFailures'], 1);
  });

  it('applies rules and the default action to the TCP connects ferryd makes', async () => {
    const { server, port } = await netServer((s: Socket) => s.pipe(s));
    running.push({ stop: () => closeServer(server) });
    const { d, file } = await daemon({ rules: [{ action: 'deny', via: 'remote', port }] });
    const a = await app(d);
    const target = `tcp://127.0.0.1:${port}`;
    assert.equal((await a.call({ op: 'connect', tag: 'r1', uri: target }))['code'], 'ERR_FERRY_DENIED');

    await reload(d, file, {
      defaultAction: 'deny',
      rules: [{ action: 'allow', via: 'remote', address: '127.0.0.0/8', port: [port, port] }],
    });
    assert.equal(await echoes(a, target, 'r2'), 'tcp');
    // The default action now denies what no rule allows (here: another port, even with no listener).
    assert.equal(
      (await a.call({ op: 'connect', tag: 'r3', uri: `tcp://127.0.0.1:${port === 1 ? 2 : 1}` }))['code'],
      'ERR_FERRY_DENIED',
    );
    // ...and local connects too: the default action governs an app's own namespace.
    const uri = await listen(a);
    assert.equal((await a.call({ op: 'connect', tag: 'r4', uri }))['code'], 'ERR_FERRY_DENIED');
    assert.equal((await policyOf(d))['deniedConnects'], 3);
  });
});

describe('datagrams', () => {
  it('keep to their namespace and obey the rules, per destination', async () => {
    const got: number[] = [];
    const peer = createSocket('udp4');
    peer.on('message', (m) => got.push(m.length));
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
    running.push({ stop: () => new Promise<void>((resolve) => peer.close(() => resolve())) });
    const peerPort = peer.address().port;
    const doc = {
      namespaces: { a: {}, b: {} },
      rules: [{ action: 'deny', via: 'remote', from: 'b', port: peerPort }],
    };
    const { d, file } = await daemon(doc);
    const a1 = await app(d, { FERRY_NAMESPACE: 'a' }, UDP_APP);
    const a2 = await app(d, { FERRY_NAMESPACE: 'a' }, UDP_APP);
    const b1 = await app(d, { FERRY_NAMESPACE: 'b' }, UDP_APP);
    const portA1 = Number((await a1.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
    await a2.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' });
    await b1.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' });

    // b cannot reach a's endpoint, neither cut-through nor through its relay and the kernel.
    const fromB = await b1.ok({ op: 'send', port: portA1, sizes: [11], seed: 1 });
    assert.deepEqual(fromB['codes'], ['ERR_FERRY_DENIED']);
    const fromA = await a2.ok({ op: 'send', port: portA1, sizes: [22], seed: 2 });
    assert.deepEqual(fromA['codes'], [null]);
    await eventually(
      async () => ((await a1.ok({ op: 'received' }))['received'] as unknown[]).length > 0,
      10_000,
      'a datagram within a',
    );
    const sizes = ((await a1.ok({ op: 'received' }))['received'] as { size: number }[]).map((g) => g.size);
    assert.deepEqual(sizes, [22]);

    // A remote destination the rules deny for b; a may send there.
    assert.deepEqual((await b1.ok({ op: 'send', port: peerPort, sizes: [33], seed: 3 }))['codes'], [
      'ERR_FERRY_DENIED',
    ]);
    assert.deepEqual((await a2.ok({ op: 'send', port: peerPort, sizes: [44], seed: 4 }))['codes'], [null]);
    await eventually(async () => got.length > 0, 10_000, 'the datagram from a');
    assert.deepEqual(got, [44]);
    assert.equal((await policyOf(d))['deniedConnects'], 2);

    // a's route to the peer is known (the SDK sends straight into its relay now): a rule added
    // on SIGHUP still holds, because ferryd's relay checks each datagram as it sends it.
    await reload(d, file, { ...doc, rules: [{ action: 'deny', via: 'remote', port: peerPort }] });
    assert.deepEqual((await a2.ok({ op: 'send', port: peerPort, sizes: [55, 66], seed: 5 }))['codes'], [
      null,
      null,
    ]);
    await eventually(async () => (await policyOf(d))['deniedDatagrams'] === 2, 10_000, 'datagrams dropped');
    assert.deepEqual(got, [44]);
  });
});
