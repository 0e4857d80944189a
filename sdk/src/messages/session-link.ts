/**
 * A message channel's session, without the stream: connect through ferryd, hand the AppSession
 * to its owner, end it. The control side (requests, notices, claiming the reply) is
 * app/session-control.ts's, as for sockets.
 */

import { getAttachment } from '../api/attachments.js';
import type { AttachmentOptions } from '../api/options.js';
import type { AppSession, SessionOwner } from '../app/app-session.js';
import type { Attachment } from '../app/attachment.js';
import {
  announceFin,
  claimConnected,
  endSession,
  openSession,
  requestConnect,
  type SessionEnd,
} from '../app/session-control.js';
import { ferryError } from '../errors.js';

/** A session bound to its attachment, with what the channel needs to tear it down. */
export interface SessionLink {
  att: Attachment;
  session: AppSession;
  localUri: string;
  remoteUri: string;
  transport: string;
}

export interface LinkConnectOptions extends AttachmentOptions {
  /** Fifo sizes in bytes (rounded up to a power of two by ferryd); 0 = ferryd's default. */
  rxFifoSize?: number;
  txFifoSize?: number;
  /** Connect timeout in ms (ETIMEDOUT). */
  timeoutMs: number;
}

/** Connects to `uri` and returns the session, not yet opened (see openLink). */
export async function connectLink(uri: string, opts: LinkConnectOptions): Promise<SessionLink> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(ferryError('ETIMEDOUT', `connect to ${uri} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
  });
  const attempt = (async () => {
    const att = await getAttachment(opts);
    const reply = await requestConnect(att, {
      uri,
      rxFifoSize: opts.rxFifoSize ?? 0,
      txFifoSize: opts.txFifoSize ?? 0,
    });
    // The segment was pinned when the reply arrived (see Attachment.claimSession).
    const { session, reset } = claimConnected(att, reply, (r) => timedOut || r !== null);
    if (!session) throw reset ?? ferryError('ETIMEDOUT', `connect to ${uri} timed out`);
    return { att, session, localUri: reply.localUri, remoteUri: reply.remoteUri, transport: reply.transport };
  })();
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    attempt.catch(() => {});
  }
}

/** Starts delivering the session's events to `owner` and routes ferryd's reset of it there. */
export function openLink(link: SessionLink, owner: SessionOwner): void {
  link.att.ref();
  openSession(link.att, link.session, owner);
}

/**
 * Ends the session: `clean` when both ends sent FIN and everything was read (ferryd only frees the
 * fifos), else a reset the peer sees as ECONNRESET (unless it was the peer that reset).
 */
export function closeLink(link: SessionLink, how: SessionEnd): void {
  link.att.unref();
  endSession(link.att, link.session, how);
}

/** Tells ferryd a cut-through session sent FIN (sessions it carries, it sees in the fifo). */
export function finLink(link: SessionLink): void {
  link.session.fin();
  announceFin(link.att, link.session, link.transport);
}
