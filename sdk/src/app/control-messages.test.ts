import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeCtrl, encodeCtrl } from '../proto/ctrl/codec.js';
import type { AppRequest } from '../proto/ctrl/messages.js';
import { CTRL_TYPES } from '../proto/ctrl/schema.js';
import {
  adoptMessage,
  connectMessage,
  dgramBindMessage,
  dgramConnectMessage,
  helloMessage,
  listenMessage,
  segmentReleasedMessage,
  sessionNoticeMessage,
  unlistenMessage,
} from './control-messages.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

test('every control message the SDK builds passes the wire codec as built', () => {
  const built: AppRequest[] = [
    helloMessage({ name: 'app', namespace: 'default', token: '' }),
    helloMessage({ name: 'app', namespace: 'ns', token: 't', reattach: 2 }),
    connectMessage({ uri: 'tcp://127.0.0.1:80' }),
    connectMessage({
      uri: 'tls://example.test:443',
      rxFifoSize: 4096,
      txFifoSize: 8192,
      tls: { servername: 'example.test', rejectUnauthorized: true },
      handoff: true,
    }),
    listenMessage({ uri: 'tcp://0.0.0.0:0' }),
    listenMessage({ uri: 'tcp://0.0.0.0:0', handoff: true }),
    unlistenMessage(7),
    adoptMessage(),
    dgramBindMessage({ uri: 'udp://127.0.0.1:0' }),
    dgramConnectMessage({ endpoint: 3, uri: 'udp://127.0.0.1:9', rxFifoSize: 0, txFifoSize: 0 }),
    sessionNoticeMessage('shutdown', 1),
    sessionNoticeMessage('close', 2),
    sessionNoticeMessage('reset', 3),
    segmentReleasedMessage(4),
  ];
  for (const msg of built) {
    const sent = { ...msg, id: 9 } as AppRequest;
    assert.deepEqual(decodeCtrl(encodeCtrl(sent)), sent, msg.t);
  }
  // Options left out stay out of the message (ferryd reads an absent handoff/tls as "no").
  assert.deepEqual(connectMessage({ uri: 'ferry://x:1', handoff: false }), {
    t: 'connect',
    id: 0,
    uri: 'ferry://x:1',
    rxFifoSize: 0,
    txFifoSize: 0,
  });
  assert.equal('reattach' in helloMessage({ name: 'a', namespace: 'b', token: '' }), false);
});

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/**
 * Where a control message is written by hand in `text`: a `t: '<control type>'` literal, or a
 * call of an attachment's request/notify/notifySession (which take a message).
 */
function controlMessageSites(text: string): string[] {
  const types = CTRL_TYPES.map((t) => t.replace(/[-]/g, '\\-')).join('|');
  const patterns = [
    new RegExp(`\\bt\\s*:\\s*['"\`](?:${types})['"\`]`, 'g'),
    /(?:\batt|#att|\battachment|#attachment)\??\.(?:request|notify|notifySession)\s*\(/g,
  ];
  const found: string[] = [];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[0]);
  return found;
}

test('the scan finds a hand-built control message in each form', () => {
  assert.deepEqual(controlMessageSites("att.request({ t: 'connect', id: 0 })"), [
    "t: 'connect'",
    'att.request(',
  ]);
  assert.deepEqual(controlMessageSites("this.#att?.notify({ t: 'close', id: 0, session })"), [
    "t: 'close'",
    '#att?.notify(',
  ]);
  assert.deepEqual(controlMessageSites("link.att.notifySession(s, m, 'lazy')"), ['att.notifySession(']);
  assert.deepEqual(controlMessageSites('const m = { t: "dgram-bind" }'), ['t: "dgram-bind"']);
  // Not control messages: a comparison, a message channel's request, a frame kind.
  assert.deepEqual(
    controlMessageSites("if (msg.t === 'accepted') ch.request({ op: 1 }); x = { t: 'req' }"),
    [],
  );
});

test('only sdk/src/app builds control messages: sdk/src/api, messages, http and register never do', () => {
  const offenders: string[] = [];
  for (const dir of ['api', 'messages', 'http', 'register', 'memif']) {
    for (const file of sources(join(SRC, dir))) {
      for (const site of controlMessageSites(readFileSync(file, 'utf8'))) {
        offenders.push(`${relative(SRC, file)}: ${site}`);
      }
    }
  }
  assert.deepEqual(offenders, [], 'use the functions of sdk/src/app/session-control.ts');
});

test('inside sdk/src/app, control messages are built in control-messages.ts only', () => {
  const offenders: string[] = [];
  for (const file of sources(join(SRC, 'app'))) {
    if (file.endsWith('control-messages.ts')) continue;
    const text = readFileSync(file, 'utf8');
    // The attachment and session-control call request/notify with a built message: allowed;
    // a literal message is not.
    for (const site of controlMessageSites(text))
      if (site.startsWith('t')) offenders.push(`${relative(SRC, file)}: ${site}`);
  }
  assert.deepEqual(offenders, []);
});
