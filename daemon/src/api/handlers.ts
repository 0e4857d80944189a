/** One function per app request: call the session layer, turn the outcome into a reply. */
import {
  type AppRequest,
  type DaemonMessage,
  ferryError,
  NOTICE_OP,
  type Notices,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import { observeConnect } from '../obs/events.js';
import type { SessionLayer } from '../session/session-layer.js';
import { failureReply, okStatus } from '../session/wire.js';

/**
 * Handles a request from an attached app and returns the reply to send (never throws). Most
 * replies are immediate; a listen (kernel bind) and a TCP connect are answered later, as a
 * promise that always resolves, to a failure reply when the request failed.
 */
export function handleRequest(
  layer: SessionLayer,
  app: App,
  msg: AppRequest,
  socketFd = -1,
): DaemonMessage | Promise<DaemonMessage> | null {
  const ok = okStatus(msg.id);
  try {
    switch (msg.t) {
      case 'listen':
        return later(msg, layer.listen(app, msg.id, msg.uri, msg.tls, msg.handoff));
      case 'unlisten':
        layer.unlisten(app, msg.listener);
        return ok;
      case 'connect':
        return later(
          msg,
          observeConnect(layer, msg.uri, () => layer.connect(app, msg)),
        );
      case 'dgram-bind':
        return later(msg, layer.bind(app, msg));
      case 'dgram-connect':
        return layer.connectDatagram(app, msg);
      case 'shutdown':
        layer.shutdown(app, msg.session);
        return ok;
      case 'close':
        layer.close(app, msg.session);
        return ok;
      case 'reset':
        layer.reset(app, msg.session);
        return ok;
      case 'fast-open':
        layer.fastOpen(app, msg.session);
        return ok;
      case 'notices':
        return notices(layer, app, msg);
      case 'pool-release':
        layer.poolRelease(app, msg.pool);
        return ok;
      case 'accepts':
        layer.lentAccepts(app, msg);
        return ok;
      case 'segment-released':
        layer.segmentReleased(app, msg.segment);
        return ok;
      case 'adopt':
        if (socketFd < 0) throw ferryError('ERR_FERRY_PROTO_MALFORMED', "adopt carries no 'socket' fd");
        return layer.adopt(app, msg, socketFd);
      case 'ping':
        return { t: 'pong', id: msg.id, st: 0, err: '' };
      case 'hello':
        return failureReply(msg, ferryError('ERR_FERRY_SESSION_STATE', 'already attached'));
      case 'detach':
        return ok;
    }
  } catch (err) {
    return failureReply(msg, err);
  }
}

/**
 * Each notice of a batch, in order, as if it had come alone: one that fails does not stop the
 * others. The answer is the first failure (a notice's failure is reported, its success is not).
 */
function notices(layer: SessionLayer, app: App, msg: Notices): DaemonMessage {
  let failed: DaemonMessage | null = null;
  const ops = msg.ops;
  if (ops.length % 2 !== 0) {
    failed = failureReply(msg, ferryError('ERR_FERRY_PROTO_MALFORMED', 'notices: ops come in pairs'));
  }
  for (let i = 0; i + 1 < ops.length; i += 2) {
    const op = ops[i];
    const session = ops[i + 1] ?? 0;
    try {
      if (op === NOTICE_OP['fast-open']) layer.fastOpen(app, session);
      else if (op === NOTICE_OP.close) layer.close(app, session);
      else if (op === NOTICE_OP.shutdown) layer.shutdown(app, session);
      else if (op === NOTICE_OP.reset) layer.reset(app, session);
      else throw ferryError('ERR_FERRY_PROTO_MALFORMED', `notices: unknown op ${op}`);
    } catch (err) {
      failed ??= failureReply(msg, err);
    }
  }
  return failed ?? okStatus(msg.id);
}

function later(
  msg: AppRequest,
  r: DaemonMessage | Promise<DaemonMessage>,
): DaemonMessage | Promise<DaemonMessage> {
  if (!(r instanceof Promise)) return r;
  return r.catch((err: unknown) => failureReply(msg, err));
}
