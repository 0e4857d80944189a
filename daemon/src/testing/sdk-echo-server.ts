/**
 * An SDK echo server in the test's own process (client and server in one app): it writes back
 * what it reads and ends when its peer ends. For integration tests of connects and notices.
 * `accepted` holds its sockets, for a test to destroy what its clients left open.
 */
import { createServer, type Server, type Socket } from '@ferry/sdk';

export async function listenEcho(
  uri = 'tcp://127.0.0.1:0',
): Promise<{ server: Server; uri: string; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.on('data', (b: Buffer) => s.write(b));
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => server.listen(uri, resolve));
  return { server, uri: server.address()?.uri ?? '', accepted };
}
