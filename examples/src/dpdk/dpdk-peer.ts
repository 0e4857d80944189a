// Test helpers for the DPDK interop tests: a Ferry memif interface and a dpdk-testpmd peer in the
// opposite role, brought up in the order DPDK needs, and torn down in the order it survives
// (testpmd stops forwarding before Ferry disconnects: dpdk-memif-peer.md §8.1).

import { createMemif, type Memif, type MemifDownReason, type MemifOptions } from '@ferry/sdk/memif';
import { Testpmd, type TestpmdOptions } from './testpmd.js';

export type Role = 'client' | 'server';

export interface Pair {
  m: Memif;
  tp: Testpmd;
  downs: MemifDownReason[];
  ups: number;
}

export interface PairOptions {
  /** Ferry's role; testpmd takes the other one. */
  role: Role;
  socket: string;
  rxMode: 'interrupt' | 'poll' | 'adaptive';
  memif?: Partial<MemifOptions>;
  testpmd?: Partial<TestpmdOptions>;
}

const opposite = (r: Role): Role => (r === 'client' ? 'server' : 'client');

/** Starts testpmd in the opposite role, so that the server listens before the client connects. */
export async function startTestpmd(o: PairOptions): Promise<Testpmd> {
  return await Testpmd.start({ role: opposite(o.role), socket: o.socket, ...o.testpmd });
}

export async function startPair(o: PairOptions): Promise<Pair> {
  let tp: Testpmd | undefined;
  if (o.role === 'client') tp = await startTestpmd(o);
  const m = createMemif({
    role: o.role,
    socket: o.socket,
    id: 0,
    mode: 'ethernet',
    rxMode: o.rxMode,
    bufferSize: 2048,
    ...o.memif,
  } as MemifOptions);
  const pair: Pair = { m, tp: tp as Testpmd, downs: [], ups: 0 };
  m.on('up', () => pair.ups++);
  m.on('down', (r: MemifDownReason) => pair.downs.push(r));
  try {
    const up = m.waitUp(15_000);
    if (o.role === 'server') pair.tp = await startTestpmd(o);
    await up;
    await pair.tp.waitLinkUp();
  } catch (e) {
    await stopPair(pair);
    throw e;
  }
  return pair;
}

/** testpmd stops forwarding, then Ferry closes, then testpmd quits; kills whatever is left. */
export async function stopPair(p: Pair): Promise<void> {
  const tp = p.tp as Testpmd | undefined;
  try {
    if (tp?.running && tp.forwarding) await tp.stopFwd();
  } finally {
    await p.m.close();
    await tp?.close();
  }
}

/** Resolves when fn() is true; polls every 5 ms; rejects with `what` after timeoutMs. */
export async function until(fn: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends all packets on queue 0, retrying while the ring is full (bounded by timeoutMs). Between
 * attempts it yields so receive handlers and the control socket run.
 */
export async function sendAll(m: Memif, packets: Uint8Array[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let at = 0;
  while (at < packets.length) {
    at += m.send(0, packets, at, Math.min(256, packets.length - at));
    if (at < packets.length) {
      if (Date.now() > deadline)
        throw new Error(`sent only ${at} of ${packets.length} within ${timeoutMs} ms`);
      await new Promise((r) => setImmediate(r));
    }
  }
}
