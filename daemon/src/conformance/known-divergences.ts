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
  // HandedSocket (handoff lane) passes each write to the kernel socket it was handed and completes
  // the outer write only when that socket's own callback runs, a tick later: writableLength stays
  // non-zero after a write that went out at once, and callbacks lose their place among ticks.
  'small writes: callbacks on later ticks, one tick per run of the same callback, state after each write': {
    'net-server-ferry-handoff-client': [
      'common.client: ["connect","returned","ready","cb:f:null","cb:f:null","tick:1","cb:g:null","tick:2","cb:f:null","cb:g:null","cb:end","finish","end","close(false)"] -> ["connect","returned","ready","cb:f:null","tick:1","tick:2","cb:f:null","cb:g:null","cb:f:null","cb:g:null","cb:end","finish","end","close(false)"]',
      'common.marks: ["ret=true len=0 needDrain=false written=16","ret=true len=0 needDrain=false written=19","ret=true len=0 needDrain=false written=22","ret=true len=0 needDrain=false written=23","ret=true len=0 needDrain=false written=24","ret=true len=0 needDrain=false written=25","ret=true len=0 needDrain=false written=26"] -> ["ret=true len=16 needDrain=false written=16","ret=true len=19 needDrain=false written=19","ret=true len=22 needDrain=false written=22","ret=true len=23 needDrain=false written=23","ret=true len=24 needDrain=false written=24","ret=true len=25 needDrain=false written=25","ret=true len=26 needDrain=false written=26"]',
    ],
  },
  'small and large writes interleaved: callbacks keep write order across the ticks they share': {
    'net-server-ferry-handoff-client': [
      'common.client: ["connect","ready","cb:f:null","cb:g:null","cb:f:null","cb:f:null","cb:g:null","cb:g:null","tick","cb:f:null","finish","end","close(false)"] -> ["connect","ready","cb:f:null","tick","cb:g:null","cb:f:null","cb:f:null","cb:g:null","cb:g:null","cb:f:null","finish","end","close(false)"]',
      'common.marks: ["ret=true len=0 needDrain=false written=64","ret=true len=0 needDrain=false written=4160","ret=true len=0 needDrain=false written=4224","ret=true len=0 needDrain=false written=8320","ret=true len=0 needDrain=false written=8384","ret=true len=0 needDrain=false written=8384","ret=true len=0 needDrain=false written=8448"] -> ["ret=true len=64 needDrain=false written=64","ret=true len=4160 needDrain=false written=4160","ret=true len=4224 needDrain=false written=4224","ret=true len=8320 needDrain=false written=8320","ret=true len=8384 needDrain=false written=8384","ret=true len=8384 needDrain=false written=8384","ret=true len=8448 needDrain=false written=8448"]',
    ],
  },
  "writes from a write's callback and after setDefaultEncoding: bytes in order, callbacks a tick later": {
    'net-server-ferry-handoff-client': [
      'common.marks: ["ret=true len=0 needDrain=false written=2"] -> ["ret=true len=1 needDrain=false written=2"]',
    ],
  },
};
