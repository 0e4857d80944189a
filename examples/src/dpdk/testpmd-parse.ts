// Parsers for dpdk-testpmd's interactive output (DPDK 22.11 text format). Pure; tested with captured
// output in testpmd-parse.test.ts.

/** `show port stats N`: counters since the port started (zeroed by the memif PMD on disconnect). */
export interface PortStats {
  rxPackets: number;
  rxBytes: number;
  rxMissed: number;
  rxErrors: number;
  rxNombuf: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  /** Rates since the previous `show port stats`. */
  rxPps: number;
  txPps: number;
}

/** One port's block of the "Forward statistics" printed by `stop`: deltas since `start`. */
export interface ForwardStats {
  rxPackets: number;
  rxDropped: number;
  rxTotal: number;
  txPackets: number;
  /** Packets the engine could not enqueue because the memif ring was full (the peer drained slowly). */
  txDropped: number;
  txTotal: number;
}

/** `show port info N`: the fields the tests look at. */
export interface PortInfo {
  linkUp: boolean;
  mac: string;
  rxQueues: number;
  txQueues: number;
}

function field(text: string, name: string): number | undefined {
  // Names are followed by ':' and optional spaces; values are decimal (they can exceed 2^53 when a
  // forward counter underflowed after a disconnect, which Number() approximates - still "huge").
  const re = new RegExp(`(?:^|\\s)${name.replace(/[-]/g, '\\-')}:\\s*(\\d+)`, 'm');
  const m = re.exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

function required(text: string, name: string, what: string): number {
  const v = field(text, name);
  if (v === undefined) throw new Error(`testpmd ${what}: no '${name}' in output:\n${text}`);
  return v;
}

export function parsePortStats(text: string): PortStats {
  const start = text.indexOf('NIC statistics for port');
  if (start < 0) throw new Error(`testpmd port stats: no statistics block in output:\n${text}`);
  const block = text.slice(start);
  return {
    rxPackets: required(block, 'RX-packets', 'port stats'),
    rxBytes: required(block, 'RX-bytes', 'port stats'),
    rxMissed: field(block, 'RX-missed') ?? 0,
    rxErrors: field(block, 'RX-errors') ?? 0,
    rxNombuf: field(block, 'RX-nombuf') ?? 0,
    txPackets: required(block, 'TX-packets', 'port stats'),
    txBytes: required(block, 'TX-bytes', 'port stats'),
    txErrors: field(block, 'TX-errors') ?? 0,
    rxPps: field(block, 'Rx-pps') ?? 0,
    txPps: field(block, 'Tx-pps') ?? 0,
  };
}

/** The block for `port` in `stop`'s output; undefined when forwarding was not running. */
export function parseForwardStats(text: string, port = 0): ForwardStats | undefined {
  const start = text.indexOf(`Forward statistics for port ${port} `);
  if (start < 0) return undefined;
  const rest = text.slice(start);
  const end = rest.indexOf('----\n', rest.indexOf('\n'));
  const block = end < 0 ? rest : rest.slice(0, end);
  return {
    rxPackets: required(block, 'RX-packets', 'forward stats'),
    rxDropped: required(block, 'RX-dropped', 'forward stats'),
    rxTotal: required(block, 'RX-total', 'forward stats'),
    txPackets: required(block, 'TX-packets', 'forward stats'),
    txDropped: required(block, 'TX-dropped', 'forward stats'),
    txTotal: required(block, 'TX-total', 'forward stats'),
  };
}

export function parsePortInfo(text: string): PortInfo {
  const link = /Link status:\s*(up|down)/.exec(text);
  if (!link) throw new Error(`testpmd port info: no link status in output:\n${text}`);
  return {
    linkUp: link[1] === 'up',
    mac: /MAC address:\s*([0-9A-Fa-f:]{17})/.exec(text)?.[1] ?? '',
    rxQueues: field(text, 'Current number of RX queues') ?? 0,
    txQueues: field(text, 'Current number of TX queues') ?? 0,
  };
}
