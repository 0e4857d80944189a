/** Test-side view of udp-app.ts: where it is, and what it reports as received. */
import { fileURLToPath } from 'node:url';
import { type AppHandle, eventually } from './harness.js';

/** The compiled udp-app, for startApp(socket, env, UDP_APP). */
export const UDP_APP = fileURLToPath(new URL('./udp-app.js', import.meta.url));

/** One datagram as udp-app reports it. */
export interface UdpGot {
  size: number;
  sha256: string;
  address: string;
  port: number;
  text: string;
}

/** Every datagram `app` has received so far. */
export async function received(app: AppHandle): Promise<UdpGot[]> {
  return (await app.ok({ op: 'received' }))['received'] as UdpGot[];
}

/** Waits (bounded) until `app` has received at least `n` datagrams; returns them all. */
export async function waitReceived(app: AppHandle, n: number, what: string): Promise<UdpGot[]> {
  let got: UdpGot[] = [];
  await eventually(
    async () => {
      got = await received(app);
      return got.length >= n;
    },
    15_000,
    `${what} (have ${got.length} of ${n})`,
  );
  return got;
}
