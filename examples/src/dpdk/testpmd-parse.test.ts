// The testpmd output parsers, on output captured from dpdk-testpmd 22.11.11.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseForwardStats, parsePortInfo, parsePortStats } from './testpmd-parse.js';

const PORT_STATS = `
  ######################## NIC statistics for port 0  ########################
  RX-packets: 1591040    RX-missed: 0          RX-bytes:  101826560
  RX-errors: 0
  RX-nombuf:  0         
  TX-packets: 12         TX-errors: 0          TX-bytes:  768

  Throughput (since last show)
  Rx-pps:     20827962          Rx-bps:  10663916544
  Tx-pps:            0          Tx-bps:            0
  ############################################################################
`;

const STOP = `Telling cores to stop...
Waiting for lcores to finish...

  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 0              RX-dropped: 0             RX-total: 0
  TX-packets: 20480          TX-dropped: 1024          TX-total: 21504
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 7              RX-dropped: 7             RX-total: 7
  TX-packets: 7              TX-dropped: 7             TX-total: 7
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++

Done.
`;

describe('testpmd output parsers', () => {
  it('reads show port stats', () => {
    assert.deepEqual(parsePortStats(PORT_STATS), {
      rxPackets: 1591040,
      rxBytes: 101826560,
      rxMissed: 0,
      rxErrors: 0,
      rxNombuf: 0,
      txPackets: 12,
      txBytes: 768,
      txErrors: 0,
      rxPps: 20827962,
      txPps: 0,
    });
  });

  it("reads port 0's forward statistics from stop, not the accumulated block", () => {
    assert.deepEqual(parseForwardStats(STOP), {
      rxPackets: 0,
      rxDropped: 0,
      rxTotal: 0,
      txPackets: 20480,
      txDropped: 1024,
      txTotal: 21504,
    });
    assert.equal(parseForwardStats('Packet forwarding not started\n'), undefined);
  });

  it('reads link status and queues from show port info', () => {
    const info = parsePortInfo(
      '\nMAC address: B6:88:55:18:A5:7E\nDevice name: net_memif0\nLink status: up\nCurrent number of RX queues: 2\nCurrent number of TX queues: 1\n',
    );
    assert.deepEqual(info, { linkUp: true, mac: 'B6:88:55:18:A5:7E', rxQueues: 2, txQueues: 1 });
    assert.equal(parsePortInfo('Link status: down\n').linkUp, false);
  });

  it('throws with the output when a block is missing', () => {
    assert.throws(() => parsePortStats('Invalid port 3\n'), /no statistics block/);
    assert.throws(() => parsePortInfo('Invalid port 3\n'), /no link status/);
  });
});
