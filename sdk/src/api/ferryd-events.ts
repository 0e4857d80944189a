/**
 * ferrydEvents: what happens to this process's attachments to ferryd, for apps that want to know
 * (log it, mark themselves unready). Sockets and servers handle a restart themselves.
 *
 * - 'lost' ({ socket, error }): the control channel to ferryd closed. Cut-through sessions keep
 *   moving data; sessions ferryd carried (TCP) fail with ECONNRESET; connects fail at once with
 *   ERR_FERRY_DAEMON_UNREACHABLE until reattached.
 * - 'reattached' ({ socket, appId, awayMs }): attached to ferryd again; servers re-register their
 *   listeners (each Server also emits 'reattached').
 * - 'closed' ({ socket, error }): the attachment gave up reattaching (reattachTimeoutMs) or reattach
 *   is off; the next connect or listen attaches afresh.
 */
import { EventEmitter } from 'node:events';
import type { FerryError } from '../errors.js';

export interface FerrydLostEvent {
  socket: string;
  error: FerryError;
}

export interface FerrydReattachedEvent {
  socket: string;
  appId: number;
  awayMs: number;
}

export const ferrydEvents = new EventEmitter();
