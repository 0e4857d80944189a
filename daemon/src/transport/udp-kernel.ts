/** The kernel side of UDP: one node:dgram socket per bound datagram endpoint. */
import { createSocket, type Socket } from 'node:dgram';
import { formatUri, type SessionUri } from '@ferry/sdk/internal';
import { tcpError } from './tcp-errors.js';
import { bindHost } from './tcp-kernel.js';

/** A kernel address as a session URI; IPv4-mapped IPv6 addresses are shown as IPv4. */
export function udpUri(address: string | undefined, port: number | undefined): string {
  const host = (address ?? '0.0.0.0').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return formatUri({ scheme: 'udp', host, port: port ?? 0 });
}

/** Binds a kernel UDP socket on the endpoint's address; rejects with EADDRINUSE, EACCES, ... */
export function bindUdp(uri: SessionUri): Promise<Socket> {
  const host = bindHost(uri.host);
  const type = host.includes(':') ? 'udp6' : 'udp4';
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type, reuseAddr: false });
    const onError = (err: Error) => {
      socket.close();
      reject(tcpError(err, formatUri(uri)));
    };
    socket.once('error', onError);
    socket.bind({ address: host, port: uri.port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
