/**
 * ListenerRegistration against a scripted attachment: what Server and MessageServer rely on
 * across ferryd restarts (accept routing by id, listening again on the bound URI, failures).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { type FerryError, ferryError } from '../errors.js';
import type { Accepted, AppRequest, DaemonMessage } from '../proto/ctrl/messages.js';
import type { Attachment } from './attachment.js';
import { type ListenerOwner, ListenerRegistration } from './listener-registration.js';

/** An attachment whose requests the test answers one by one. */
class FakeAttachment extends EventEmitter {
  readonly sent: AppRequest[] = [];
  #waiting: { resolve: (m: DaemonMessage) => void; reject: (e: FerryError) => void }[] = [];

  request(msg: AppRequest): Promise<DaemonMessage> {
    this.sent.push(msg);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** Answers the oldest request still waiting. */
  answer(reply: DaemonMessage | FerryError): void {
    const w = this.#waiting.shift();
    assert.ok(w, 'a request is waiting');
    if (reply instanceof Error) w.reject(reply);
    else w.resolve(reply);
  }

  listenReply(listener: number, uri: string): DaemonMessage {
    return { t: 'listen-reply', id: 1, st: 0, err: '', listener, uri };
  }
}

function accepted(listener: number, session: number): Accepted {
  return {
    t: 'accepted',
    id: 0,
    listener,
    session,
    fifos: null,
    localUri: 'tcp://127.0.0.1:1',
    remoteUri: 'tcp://127.0.0.1:2',
    fds: [],
    transport: 'ct',
  };
}

function recorder(withClosed: boolean): { owner: ListenerOwner; log: string[] } {
  const log: string[] = [];
  const owner: ListenerOwner = {
    accepted: (msg) => log.push(`accepted ${msg.session}`),
    lost: (err) => log.push(`lost ${err.code}`),
    reattached: () => log.push('reattached'),
    relistenFailed: (err) => log.push(`failed ${err.code}`),
    ...(withClosed ? { closed: (err: FerryError) => log.push(`closed ${err.code}`) } : {}),
  };
  return { owner, log };
}

const tick = () => new Promise((r) => setImmediate(r));

async function listening(
  att: FakeAttachment,
  owner: ListenerOwner,
  params = { uri: 'tcp://127.0.0.1:0', handoff: true },
): Promise<ListenerRegistration> {
  const p = ListenerRegistration.listen(att as unknown as Attachment, params, owner);
  att.answer(att.listenReply(5, 'tcp://127.0.0.1:4242'));
  return p;
}

test('routes accepts for its id only; after a ferryd restart listens again on the bound URI with its options', async () => {
  const att = new FakeAttachment();
  const { owner, log } = recorder(false);
  const reg = await listening(att, owner);
  assert.equal(reg.uri, 'tcp://127.0.0.1:4242');
  assert.deepEqual(att.sent[0], { t: 'listen', id: 0, uri: 'tcp://127.0.0.1:0', handoff: true });
  att.emit('accepted', accepted(5, 10), null);
  att.emit('accepted', accepted(6, 11), null);
  assert.deepEqual(log, ['accepted 10']);

  att.emit('lost', ferryError('ERR_FERRY_DAEMON_LOST'));
  // The old id died with ferryd: a new ferryd may give it to another app's listener.
  att.emit('accepted', accepted(5, 12), null);
  att.emit('reattached', { appId: 2, awayMs: 1 });
  assert.deepEqual(att.sent[1], { t: 'listen', id: 0, uri: 'tcp://127.0.0.1:4242', handoff: true });
  att.answer(att.listenReply(9, 'tcp://127.0.0.1:4242'));
  await tick();
  att.emit('accepted', accepted(9, 13), null);
  assert.deepEqual(log, ['accepted 10', 'lost ERR_FERRY_DAEMON_LOST', 'reattached', 'accepted 13']);

  const closed = reg.close();
  att.answer({ t: 'status', id: 1, st: 0, err: '' });
  await closed;
  assert.deepEqual(att.sent[2], { t: 'unlisten', id: 0, listener: 9 });
  att.emit('accepted', accepted(9, 14), null);
  assert.equal(log.length, 4);
  assert.equal(
    att.listenerCount('accepted') + att.listenerCount('lost') + att.listenerCount('reattached'),
    0,
  );
});

test('listening again: ferryd lost again is retried at the next reattach; a refusal goes to the owner', async () => {
  const att = new FakeAttachment();
  const { owner, log } = recorder(false);
  await listening(att, owner);
  att.emit('lost', ferryError('ERR_FERRY_DAEMON_LOST'));
  att.emit('reattached', { appId: 2, awayMs: 1 });
  att.answer(ferryError('ERR_FERRY_DAEMON_LOST'));
  await tick();
  att.emit('reattached', { appId: 3, awayMs: 1 });
  att.answer(ferryError('EADDRINUSE'));
  await tick();
  assert.deepEqual(log, ['lost ERR_FERRY_DAEMON_LOST', 'failed EADDRINUSE']);
  assert.equal(att.sent.filter((m) => m.t === 'listen').length, 3);
});

test('closed while listening again: the listener ferryd just gave is given back, the owner hears nothing', async () => {
  const att = new FakeAttachment();
  const { owner, log } = recorder(false);
  const reg = await listening(att, owner);
  att.emit('lost', ferryError('ERR_FERRY_DAEMON_LOST'));
  att.emit('reattached', { appId: 2, awayMs: 1 });
  // Closed while ferryd is away: it has no listener to give back yet.
  await reg.close();
  assert.equal(att.sent.filter((m) => m.t === 'unlisten').length, 0);
  att.answer(att.listenReply(7, 'tcp://127.0.0.1:4242'));
  await tick();
  assert.deepEqual(att.sent.at(-1), { t: 'unlisten', id: 0, listener: 7 });
  assert.deepEqual(log, ['lost ERR_FERRY_DAEMON_LOST']);
});

test("the attachment's end reaches an owner with a closed hook only, and never after detach", async () => {
  const att = new FakeAttachment();
  const a = recorder(true);
  const b = recorder(false);
  await listening(att, a.owner);
  await listening(att, b.owner);
  const detached = recorder(true);
  (await listening(att, detached.owner)).detach();
  att.emit('closed', ferryError('ERR_FERRY_DAEMON_LOST'));
  assert.deepEqual(a.log, ['closed ERR_FERRY_DAEMON_LOST']);
  assert.deepEqual(b.log, []);
  assert.deepEqual(detached.log, []);
});
