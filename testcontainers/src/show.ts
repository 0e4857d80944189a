/** The shapes of `ferry show <topic> --json` that tests look at most (fields ferryd may add are left out). */

export interface ShowSession {
  id: number;
  app: number;
  transport: string;
  state: string;
  local: string;
  remote: string;
  peer: number | null;
  daemonBytes: number;
}

export interface ShowApp {
  id: number;
  name: string;
  uid: number;
  gid: number;
  sessions: number;
  segments: number;
}

export interface ShowListener {
  uri: string;
}

export interface ShowStats {
  apps: number;
  sessions: number;
  segments: number;
  segmentBytes: number;
  listeners: number;
  daemonSegments: number;
}
