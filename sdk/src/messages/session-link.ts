/**
 * Opening and closing a session for a message channel, as api/connect.ts and Socket do for a
 * socket, without the stream: connect through ferryd, then hand the AppSession to its owner.
 * (Attachment.openSession, when the app layer has one, replaces this.)
 */

import { getAttachment } from '../api/attachments.js';
import type { AttachmentOptions } from '../api/options.js';
import { AppSession, type SessionOwner } from '../app/app-session.js';
import type { Attachment } from '../app/attachment.js';
import { ferryError } from '../errors.js';
import type { ConnectReply } from '../proto/ctrl/messages.js';

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
    const reply = (await att.request({
      t: 'connect',
      id: 0,
      uri,
      rxFifoSize: opts.rxFifoSize ?? 0,
      txFifoSize: opts.txFifoSize ?? 0,
    })) as ConnectReply;
    // The segment was pinned when the reply arrived (see Attachment.claimSession).
    const { seg, reset } = att.claimSession(reply.session);
    if (!reply.fifos || !seg) {
      att.notify({ t: 'reset', id: 0, session: reply.session });
      if (seg) att.releaseSegmentIfUnused(seg);
      throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'connect reply names no usable segment');
    }
    if (timedOut || reset) {
      if (!seg.orphaned) att.notify({ t: 'reset', id: 0, session: reply.session });
      att.releaseSegmentIfUnused(seg);
      throw reset ?? ferryError('ETIMEDOUT', `connect to ${uri} timed out`);
    }
    const session = new AppSession(reply.session, seg, reply.fifos, reply.transport);
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
  link.att.onSessionReset(link.session, (err) => owner.onFailure(err));
  link.session.open(owner);
}

/**
 * Ends the session: `clean` when both ends sent FIN and everything was read (ferryd only frees the
 * fifos), else a reset the peer sees as ECONNRESET (unless it was the peer that reset).
 */
export function closeLink(link: SessionLink, how: 'clean' | 'peer-reset' | 'reset'): void {
  const { att, session: s } = link;
  if (how === 'clean') {
    s.stopReading();
    att.notifySession(s, { t: 'close', id: 0, session: s.id }, 'lazy');
  } else if (how === 'peer-reset') {
    att.notifySession(s, { t: 'close', id: 0, session: s.id }, 'lazy');
  } else {
    s.reset();
    att.notifySession(s, { t: 'reset', id: 0, session: s.id });
  }
  s.detach();
  att.offSessionReset(s);
  att.unref();
  att.releaseSegmentIfUnused(s.segment);
}

/** Tells ferryd a cut-through session sent FIN (sessions it carries, it sees in the fifo). */
export function finLink(link: SessionLink): void {
  link.session.fin();
  if (link.transport === 'ct') {
    link.att.notifySession(link.session, { t: 'shutdown', id: 0, session: link.session.id });
  }
}
