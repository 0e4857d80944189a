/**
 * One attachment per daemon socket per process, made on first use. It survives ferryd restarts
 * (it reattaches); a fresh one is made only after it gave up.
 */
import { basename } from 'node:path';
import { Attachment } from '../app/attachment.js';
import type { FerryError } from '../errors.js';
import { ferryEnv } from './ferry-env.js';
import { ferrydEvents } from './ferryd-events.js';
import { type AttachmentOptions, resolveMode, resolveReattachTimeout, resolveSocketPath } from './options.js';

const live = new Map<string, Promise<Attachment>>();
/** The attachments of `live` that are attached (or reattaching), by the same key. */
const ready = new Map<string, Attachment>();

/** The last key readyAttachment made, and what it was made of (every fast connect asks). */
let lastKey = { socket: '', mode: '', namespace: '', key: '' };

/** The attachment `getAttachment(opts)` would give, when it is there already; else null. */
export function readyAttachment(opts: AttachmentOptions): Attachment | null {
  const socket = resolveSocketPath(opts.socket);
  const mode = resolveMode(opts.mode);
  const namespace = opts.namespace ?? ferryEnv().namespace ?? 'default';
  const k = lastKey;
  // A key string built per connect was a concatenation and a hash of a fresh string each time.
  if (k.socket !== socket || k.mode !== mode || k.namespace !== namespace) {
    lastKey = { socket, mode, namespace, key: `${socket}|${mode}|${namespace}` };
  }
  return ready.get(lastKey.key) ?? null;
}

export function getAttachment(opts: AttachmentOptions): Promise<Attachment> {
  const socket = resolveSocketPath(opts.socket);
  const mode = resolveMode(opts.mode);
  // A token alone (no namespace) applies to 'default'; env values fill in what options leave out.
  const namespace = opts.namespace ?? ferryEnv().namespace ?? 'default';
  const token = opts.token ?? process.env['FERRY_TOKEN'] ?? '';
  const key = `${socket}|${mode}|${namespace}`;
  const existing = live.get(key);
  if (existing) return existing;
  const p = Attachment.attach({
    socket,
    mode,
    name: opts.name ?? (basename(process.argv[1] ?? 'node') || 'node'),
    namespace,
    token,
    requestTimeoutMs: 10_000,
    reattachTimeoutMs: resolveReattachTimeout(opts.reattachTimeoutMs),
  });
  live.set(key, p);
  p.then(
    (att) => {
      if (live.get(key) === p) ready.set(key, att);
      att.on('lost', (error: FerryError) => ferrydEvents.emit('lost', { socket, error }));
      att.on('reattached', (info: { appId: number; awayMs: number }) =>
        ferrydEvents.emit('reattached', { socket, ...info }),
      );
      att.once('closed', (error: FerryError) => {
        if (ready.get(key) === att) ready.delete(key);
        if (live.get(key) === p) live.delete(key);
        ferrydEvents.emit('closed', { socket, error });
      });
    },
    () => live.get(key) === p && live.delete(key),
  );
  return p;
}

/** What each of this process's attachments holds (tests and diagnostics; not a stable API). */
export async function attachmentStats(): Promise<
  {
    socket: string;
    state: string;
    appId: number;
    reattaches: number;
    segments: number;
    orphanSegments: number;
    /** Fast connects this process made from pools, and fast connects it accepted as a server. */
    fastTaken: number;
    fastAccepted: number;
  }[]
> {
  const out = [];
  for (const p of live.values()) {
    const att = await p.catch(() => null);
    if (!att) continue;
    out.push({
      socket: att.options.socket,
      state: att.state,
      appId: att.appId,
      reattaches: att.reattaches,
      segments: att.segments.size,
      orphanSegments: att.orphanSegments,
      fastTaken: att.pools.taken,
      fastAccepted: att.pools.acceptedCount,
    });
  }
  return out;
}
