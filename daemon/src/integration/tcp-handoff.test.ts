/** The TCP tests (tcp-suite.ts) in handoff mode: ferryd hands the kernel socket to the app. */
import { tcpSuite } from './tcp-suite.js';

tcpSuite('handoff');
