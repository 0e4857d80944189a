/**
 * The TCP tests (tcp-suite.ts) in handoff mode: ferryd hands the kernel socket to the app; inbound,
 * the app accepts on the listening socket ferryd lent it (the default; tcp-handoff-accept.test.ts
 * runs the suite with ferryd accepting each connection).
 */
import { tcpSuite } from './tcp-suite.js';

tcpSuite('handoff');
