/**
 * The TCP tests of connections ferryd accepts (tcp-suite.ts, relay mode) with accepted sockets on
 * the copying path (FERRY_DIRECT_ACCEPT=off): what ferryd runs on a node line whose net.Socket
 * internals were not verified for DirectRead (transport/direct-read.ts).
 */
import { tcpSuite } from './tcp-suite.js';

tcpSuite('relay', { copyingAccept: true });
