/** One function per app request: call the session layer, turn the outcome into a reply. */
import { type AppRequest, type DaemonMessage, ferryError } from '@ferry/sdk/internal';
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
      case 'pool-release':
        layer.poolRelease(app, msg.pool);
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

function later(
  msg: AppRequest,
  r: DaemonMessage | Promise<DaemonMessage>,
): DaemonMessage | Promise<DaemonMessage> {
  if (!(r instanceof Promise)) return r;
  return r.catch((err: unknown) => failureReply(msg, err));
}
