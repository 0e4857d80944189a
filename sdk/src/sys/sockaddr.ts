// struct sockaddr_un encoding: filesystem paths and '@name' abstract names of exact length.

import { ferryError } from '../errors.js';
import { AF_UNIX, LE, SOCKADDR_UN_SIZE, SUN_PATH_MAX, SUN_PATH_OFFSET } from './constants.js';

/**
 * Encodes path into out (SOCKADDR_UN_SIZE bytes) and returns the address length to pass to the
 * kernel. An abstract name ('@name') is sun_path[0] = 0 followed by exactly the name's bytes: the
 * length covers no trailing NULs, so '@a' and '@ab' are different sockets (as in ss/netstat, and
 * unlike tools that pad sun_path to 108 bytes). A path gets a terminating NUL.
 */
export function encodeSockaddrUn(path: string, out: Uint8Array): number {
  if (typeof path !== 'string' || path.length === 0) {
    throw ferryError('ERR_INVALID_ARG_VALUE', 'unix socket path must be a non-empty string');
  }
  out.fill(0, 0, SOCKADDR_UN_SIZE);
  new DataView(out.buffer, out.byteOffset, SOCKADDR_UN_SIZE).setUint16(0, AF_UNIX, LE);
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path, 'utf8');
  // Abstract: one leading NUL + name; path: name + terminating NUL. Either way name + 1 bytes.
  if (name.length + 1 > SUN_PATH_MAX) {
    throw ferryError(
      'ERR_INVALID_ARG_VALUE',
      `unix socket name is ${name.length} bytes; at most ${SUN_PATH_MAX - 1}`,
    );
  }
  if (!abstract && name.includes(0)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', 'unix socket path must not contain NUL');
  }
  out.set(name, SUN_PATH_OFFSET + (abstract ? 1 : 0));
  return SUN_PATH_OFFSET + 1 + name.length;
}

/** Decodes a sockaddr_un of `len` bytes back to 'path', '@name', or '' (unnamed). */
export function decodeSockaddrUn(buf: Uint8Array, len: number): string {
  const end = Math.min(len, SOCKADDR_UN_SIZE);
  if (end <= SUN_PATH_OFFSET) return '';
  const sunPath = buf.subarray(SUN_PATH_OFFSET, end);
  if (sunPath[0] === 0) return `@${Buffer.from(sunPath.subarray(1)).toString('utf8')}`;
  const nul = sunPath.indexOf(0);
  return Buffer.from(nul === -1 ? sunPath : sunPath.subarray(0, nul)).toString('utf8');
}
