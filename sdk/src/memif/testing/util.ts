// Test helpers shared by the memif tests.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Memif } from '../memif.js';

let counter = 0;

/** A fresh abstract socket name (unique per process and call). */
export function abstractName(tag: string): string {
  return `@ferry-test-${tag}-${process.pid}-${++counter}`;
}

/** A fresh filesystem socket path in a new temp dir. */
export function socketPath(tag: string): string {
  return join(mkdtempSync(join(tmpdir(), `ferry-memif-${tag}-`)), 'memif.sock');
}

/** Resolves with the next event of `name` (args array), or rejects after timeoutMs. */
export function nextEvent<T extends unknown[]>(m: Memif, name: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      (m as unknown as { off(n: string, f: unknown): void }).off(name, on);
      reject(new Error(`no '${name}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    (m as unknown as { once(n: string, f: unknown): void }).once(name, on);
  });
}

/** Polls `cond` until true or the deadline. */
export async function eventually(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A deterministic packet: length len, bytes derived from seed. */
export function packet(seed: number, len: number): Uint8Array {
  const p = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    p[i] = x >>> 24;
  }
  return p;
}

/** A golden control message from sdk/src/proto/memif/fixtures (tests run from sdk/dist/memif/testing). */
export function memifFixture(name: string): Uint8Array {
  const url = new URL(`../../../src/proto/memif/fixtures/${name}.hex`, import.meta.url);
  return new Uint8Array(Buffer.from(readFileSync(url, 'utf8').replace(/\s+/g, ''), 'hex'));
}
