/**
 * TLS on top of the TCP transport: ferryd wraps the kernel socket in node:tls, so the app's fifos
 * carry plaintext and the wire carries TLS. The pump then reads and writes the TLS socket and
 * resets the raw one (node cannot send an RST through a TLS socket).
 */

import { X509Certificate } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import {
  createSecureContext,
  rootCertificates,
  type SecureContext,
  TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import {
  type FerryError,
  ferryError,
  formatUri,
  type SessionUri,
  type TlsOptions,
} from '@ferry/sdk/internal';
import { tcpError } from './tcp-errors.js';

/** A certificate and key to serve, as PEM. */
export interface CertKey {
  cert: string;
  key: string;
}

/** What a `tls://` listener serves, and what a local client needs to judge it without a handshake. */
export interface ServerTls {
  context: SecureContext;
  /** The certificate chain served, leaf first. */
  chain: X509Certificate[];
  /** Local apps may reach the listener by cut-through (no TLS: the bytes never leave the host). */
  cutThrough: boolean;
}

/** Node's and OpenSSL's codes (`err.code`) that mean "the certificate was refused". */
const CERT_CODE = /CERT|UNABLE_TO_|SELF_SIGNED|HOSTNAME|INVALID_CA|CHAIN|PATH_LENGTH|INVALID_PURPOSE/;

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}

function reasonOf(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  // OpenSSL's "<thread>:error:0A00010B:SSL routines:<function>:<reason>:<file>:<line>:": the reason.
  const ossl = /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)/.exec(m);
  return (ossl?.[1] ?? m).trim();
}

/** A TLS failure as a FerryError that keeps node's code: ERR_FERRY_TLS_CERT or _HANDSHAKE. */
export function tlsError(err: unknown, where: string): FerryError {
  const code = codeOf(err);
  // The connection itself failed (reset, refused, timed out): those keep their POSIX codes.
  if (/^E[A-Z]+$/.test(code)) return tcpError(err as Error, where);
  const kind = CERT_CODE.test(code) ? 'ERR_FERRY_TLS_CERT' : 'ERR_FERRY_TLS_HANDSHAKE';
  return ferryError(kind, `${where}: (${code}) ${reasonOf(err)}`, { cause: err });
}

function configError(err: unknown, what: string): FerryError {
  return ferryError('ERR_FERRY_TLS_CONFIG', `${what}: (${codeOf(err)}) ${reasonOf(err)}`, { cause: err });
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parseChain(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw ferryError('ERR_FERRY_TLS_CONFIG', `${what}: no PEM certificate`);
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw configError(err, what);
  }
}

/**
 * A listener's TLS from its listen options, else ferryd's configured certificate. Fails with
 * ERR_FERRY_TLS_CONFIG when there is neither, or the certificate and key are unusable.
 */
export function serverTls(opts: TlsOptions | undefined, fallback: CertKey | null): ServerTls {
  const given = opts?.cert !== undefined || opts?.key !== undefined;
  if (given && (opts?.cert === undefined || opts.key === undefined)) {
    throw ferryError('ERR_FERRY_TLS_CONFIG', 'a tls:// listen needs both cert and key');
  }
  const ck = given ? { cert: opts?.cert ?? '', key: opts?.key ?? '' } : fallback;
  if (!ck) {
    throw ferryError(
      'ERR_FERRY_TLS_CONFIG',
      'no certificate: give cert and key in the listen, or start ferryd with --tls-cert and --tls-key',
    );
  }
  const chain = parseChain(ck.cert, 'certificate');
  let context: SecureContext;
  try {
    // Also checks that the key matches the certificate (ERR_OSSL_X509_KEY_VALUES_MISMATCH).
    context = createSecureContext({ cert: ck.cert, key: ck.key });
  } catch (err) {
    throw configError(err, 'certificate and key');
  }
  return { context, chain, cutThrough: opts?.cutThrough ?? true };
}

/** Server side of a handshake on an accepted kernel socket; resolves once it is secure. */
export function acceptTls(raw: Socket, st: ServerTls, timeoutMs: number): Promise<TLSSocket> {
  raw.setNoDelay(true);
  const t = new TLSSocket(raw, { isServer: true, secureContext: st.context });
  return handshake(t, raw, 'secure', timeoutMs, 'tls accept');
}

/** Client side of a handshake on a connected kernel socket, verifying the server by default. */
export function connectTls(
  raw: Socket,
  uri: SessionUri,
  opts: TlsOptions | undefined,
  timeoutMs: number,
): Promise<TLSSocket> {
  raw.setNoDelay(true);
  const name = opts?.servername ?? (isIP(uri.host) ? '' : uri.host);
  let t: TLSSocket;
  try {
    t = tlsConnect({
      socket: raw,
      // Verification checks `servername`, else `host` (which node would take as 'localhost').
      host: uri.host,
      ...(name ? { servername: name } : {}),
      ...(opts?.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts?.cert !== undefined ? { cert: opts.cert } : {}),
      ...(opts?.key !== undefined ? { key: opts.key } : {}),
      rejectUnauthorized: opts?.rejectUnauthorized ?? true,
    });
  } catch (err) {
    raw.resetAndDestroy();
    return Promise.reject(configError(err, 'tls connect options'));
  }
  // 'secureConnect', not 'secure': a client's 'secure' comes before the certificate is verified.
  return handshake(t, raw, 'secureConnect', timeoutMs, formatUri(uri));
}

function handshake(
  t: TLSSocket,
  raw: Socket,
  secureEvent: 'secure' | 'secureConnect',
  timeoutMs: number,
  where: string,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done(ferryError('ERR_FERRY_TLS_HANDSHAKE', `${where}: (ETIMEDOUT) no handshake in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: FerryError | null) => {
      clearTimeout(timer);
      t.off(secureEvent, onSecure);
      t.off('error', onError);
      t.off('close', onClose);
      if (!err) {
        t.pause();
        // Until the pump takes the socket over, an error must not go unhandled (it would kill ferryd).
        t.on('error', () => {});
        resolve(t);
        return;
      }
      t.on('error', () => {});
      t.destroy();
      if (!raw.destroyed) raw.resetAndDestroy();
      reject(err);
    };
    const onSecure = () => done(null);
    const onError = (err: Error) => done(tlsError(err, where));
    const onClose = () => done(ferryError('ECONNRESET', `${where}: closed during the TLS handshake`));
    t.once(secureEvent, onSecure);
    t.once('error', onError);
    t.once('close', onClose);
  });
}

let roots: X509Certificate[] | null = null;

/** CAs clients gave, parsed: apps pass the same PEM on every connect. Bounded, oldest out. */
const caCache = new Map<string, X509Certificate[]>();
const CA_CACHE_ENTRIES = 64;

function parsedCa(pem: string): X509Certificate[] {
  let certs = caCache.get(pem);
  if (!certs) {
    certs = parseChain(pem, 'ca');
    if (caCache.size >= CA_CACHE_ENTRIES) {
      const oldest = caCache.keys().next();
      if (!oldest.done) caCache.delete(oldest.value);
    }
    caCache.set(pem, certs);
  }
  return certs;
}

function systemRoots(): X509Certificate[] {
  if (!roots) {
    roots = [];
    for (const pem of rootCertificates) {
      try {
        roots.push(new X509Certificate(pem));
      } catch {
        // A root node bundles but cannot parse here: it could not verify anything either.
      }
    }
  }
  return roots;
}

/**
 * Would a client with these options accept this listener's certificate? Decides whether a local
 * `tls://` connect may take cut-through: the checks a handshake makes on the server's chain (name,
 * validity, signatures up to a trusted CA), made by ferryd on the certificate the listener gave.
 * When this says no, the connect goes through real TLS, and the client gets the handshake's error.
 */
export function clientWouldAccept(
  chain: readonly X509Certificate[],
  uri: SessionUri,
  opts?: TlsOptions,
): boolean {
  if (opts?.rejectUnauthorized === false) return true;
  const [leaf] = chain;
  if (!leaf) return false;
  const name = opts?.servername ?? uri.host;
  const nameOk = isIP(name) ? leaf.checkIP(name) !== undefined : leaf.checkHost(name) !== undefined;
  if (!nameOk) return false;
  let anchors: X509Certificate[];
  try {
    anchors = opts?.ca !== undefined ? parsedCa(opts.ca) : systemRoots();
  } catch {
    return false;
  }
  const now = Date.now();
  const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
  const signs = (issuer: X509Certificate, c: X509Certificate) =>
    c.checkIssued(issuer) && c.verify(issuer.publicKey);
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    if (!valid(current)) return false;
    const anchor = anchors.find((a) => signs(a, current));
    if (anchor) return valid(anchor);
    const next = chain.find((c) => c !== current && signs(c, current));
    if (!next) return false;
    current = next;
  }
  return false;
}
