/**
 * The TCP tests (tcp-suite.ts) in handoff mode with `tcpHandoffListeners: "accept"`: ferryd accepts
 * each inbound connection and hands it over (and shows each), instead of lending the listener.
 */
import { tcpSuite } from './tcp-suite.js';

tcpSuite('handoff', { handoffListeners: 'accept' });
