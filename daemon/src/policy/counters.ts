/** What the trust and limit policy counts, for `ferry show stats`. */
export interface PolicyCounters {
  /** Attaches refused: wrong or missing token, or a namespace ferryd does not serve. */
  attachRefused: number;
  /** Connects a rule (or the default action) denied. */
  deniedConnects: number;
  /** Datagrams a relay dropped because the rules deny their destination. */
  deniedDatagrams: number;
  /** Requests refused because a configured limit was reached, by limit. */
  limitHits: {
    maxApps: number;
    maxSessionsPerApp: number;
    maxSegmentBytesPerApp: number;
    maxSegmentBytesTotal: number;
  };
  /** Apps seen not reading what ferryd sends them (control messages or event queues). */
  stalledApps: number;
  /** Of those, apps ferryd disconnected. */
  stalledDisconnected: number;
  reloads: number;
  reloadFailures: number;
}

export function newPolicyCounters(): PolicyCounters {
  return {
    attachRefused: 0,
    deniedConnects: 0,
    deniedDatagrams: 0,
    limitHits: { maxApps: 0, maxSessionsPerApp: 0, maxSegmentBytesPerApp: 0, maxSegmentBytesTotal: 0 },
    stalledApps: 0,
    stalledDisconnected: 0,
    reloads: 0,
    reloadFailures: 0,
  };
}
