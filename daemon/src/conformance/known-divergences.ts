/**
 * Every known difference between node:net and Ferry, per scenario and target, exactly as the
 * comparison prints it. The suite asserts the difference equals this list: fixing a divergence
 * fails the suite until its entry is removed, and a new one fails it until it is fixed or listed
 * here (and in docs/node-net-conformance.md, with the reason).
 */
import type { TargetName } from './targets.js';

export const KNOWN_DIVERGENCES: Record<string, Partial<Record<TargetName, readonly string[]>>> = {
  // Ferry's error codes are stable: this one predates the suite and is kept (same meaning).
  'listen() on a server already listening throws': {
    'ferry-ct': ['common.threw: "ERR_SERVER_ALREADY_LISTEN" -> "ERR_FERRY_SERVER_LISTENING"'],
    'ferry-server-net-client': ['common.threw: "ERR_SERVER_ALREADY_LISTEN" -> "ERR_FERRY_SERVER_LISTENING"'],
    'ferry-handoff-server-net-client': [
      'common.threw: "ERR_SERVER_ALREADY_LISTEN" -> "ERR_FERRY_SERVER_LISTENING"',
    ],
  },
  // Kept on purpose: Server#address() also gives the listener's URI (what Ferry clients connect
  // to); the fields node:net has are the same.
  "listen(): 'listening' then the callback, asynchronously; address() before, during, after": {
    'ferry-ct': ['inet.keys: ["address","family","port"] -> ["address","family","port","uri"]'],
    'ferry-server-net-client': [
      'inet.keys: ["address","family","port"] -> ["address","family","port","uri"]',
    ],
    'ferry-handoff-server-net-client': [
      'inet.keys: ["address","family","port"] -> ["address","family","port","uri"]',
    ],
  },
};
