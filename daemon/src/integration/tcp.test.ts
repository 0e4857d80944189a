/** The TCP tests (tcp-suite.ts) in relay mode: ferryd moves the bytes between fifos and the kernel. */
import { tcpSuite } from './tcp-suite.js';

tcpSuite('relay');
