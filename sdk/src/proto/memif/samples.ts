// The message each golden fixture (fixtures/<name>.hex) holds; fixtures were written from the spec's
// offsets independently of the encoder, and codec.test.ts checks both directions.
import type { MemifMessage } from './messages.js';

export const MEMIF_SAMPLES: Readonly<Record<string, MemifMessage>> = {
  ack: { type: 'ack' },
  hello: {
    type: 'hello',
    name: 'DPDK 22.11.11',
    minVersion: 0x0200,
    maxVersion: 0x0200,
    maxRegion: 255,
    maxS2cRing: 255,
    maxC2sRing: 255,
    maxLog2RingSize: 14,
  },
  init: { type: 'init', version: 0x0200, id: 7, mode: 'ethernet', secret: 's3cret', name: 'ferry-test' },
  'add-region': { type: 'add-region', index: 0, size: 4_227_328 },
  'add-ring': { type: 'add-ring', direction: 's2c', index: 0, region: 0, offset: 16_512, log2RingSize: 10 },
  'add-ring-c2s': {
    type: 'add-ring',
    direction: 'c2s',
    index: 1,
    region: 0,
    offset: 33_024,
    log2RingSize: 10,
  },
  connect: { type: 'connect', ifName: 'net_memif0' },
  connected: { type: 'connected', ifName: 'memif0' },
  disconnect: { type: 'disconnect', code: 0, reason: 'Incorrect secret' },
};
