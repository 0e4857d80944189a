/** One attachment per daemon socket per process, made on first use and again after a loss. */
import { basename } from 'node:path';
import { Attachment } from '../app/attachment.js';
import { type AttachmentOptions, resolveMode, resolveSocketPath } from './options.js';

const live = new Map<string, Promise<Attachment>>();

export function getAttachment(opts: AttachmentOptions): Promise<Attachment> {
  const socket = resolveSocketPath(opts.socket);
  const mode = resolveMode(opts.mode);
  const key = `${socket}|${mode}|${opts.namespace ?? 'default'}`;
  const existing = live.get(key);
  if (existing) return existing;
  const p = Attachment.attach({
    socket,
    mode,
    name: opts.name ?? (basename(process.argv[1] ?? 'node') || 'node'),
    namespace: opts.namespace ?? 'default',
    token: opts.token ?? '',
    requestTimeoutMs: 10_000,
  });
  live.set(key, p);
  p.then(
    (att) => att.once('lost', () => live.get(key) === p && live.delete(key)),
    () => live.get(key) === p && live.delete(key),
  );
  return p;
}
