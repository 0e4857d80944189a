/**
 * `@ferry/daemon/testing`: what a test suite of an app using @ferry/sdk needs from ferryd. A real
 * ferryd on a private socket (startDaemon), and a throwaway CA with certificates for localhost
 * (makeTestCerts, for tls:// tests; it runs the openssl command). Supported API, as the package's
 * main entry.
 */
export { type DaemonHandle, type StartDaemonOptions, startDaemon } from './start-daemon.js';
export { makeTestCerts, type TestCerts } from './test-certs.js';
