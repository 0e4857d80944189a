/**
 * Test certificates made at test time with the openssl command (never committed keys): a CA, a
 * server certificate it signs for localhost and 127.0.0.1, and a self-signed one nobody trusts.
 * EC P-256 keys: quick to make, and small enough to ride inline in a control message.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** Files, for curl and for ferryd's --tls-cert/--tls-key. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /** PEM text. */
  ca: string;
  cert: string;
  key: string;
  /** A self-signed certificate for localhost/127.0.0.1 (no CA trusts it), and its key. */
  rogueCert: string;
  rogueKey: string;
  /** A certificate the CA signs for another name only (other.test). */
  otherCert: string;
  otherKey: string;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function signed(dir: string, name: string, cn: string, san: string): void {
  openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  writeFileSync(
    join(dir, `${name}.ext`),
    [
      `subjectAltName=${san}`,
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
    ].join('\n'),
  );
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '3650',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  ]);
}

/** Makes a fresh set in a temp dir; throws when openssl is missing or fails. */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-certs-'));
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '3650',
    '-subj',
    '/CN=Ferry Test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  signed(dir, 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  signed(dir, 'other', 'other.test', 'DNS:other.test');
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    'rogue.key',
    '-out',
    'rogue.pem',
    '-days',
    '3650',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    ca: read('ca.pem'),
    cert: read('server.pem'),
    key: read('server.key'),
    rogueCert: read('rogue.pem'),
    rogueKey: read('rogue.key'),
    otherCert: read('other.pem'),
    otherKey: read('other.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
