/** A conformance scenario: written once, run on every target, its observations compared. */
import type { Scope } from './scope.js';

/**
 * What one run observed. `common` must agree on every target; `inet` holds what only TCP-like
 * targets have (addresses and ports: a unix socket has paths instead), compared among them only.
 */
export interface Observation {
  common: Record<string, unknown>;
  inet?: Record<string, unknown>;
}

export interface Scenario {
  name: string;
  /** Runs only where addresses are host and port (a node:net-only signature like connect(port, host)). */
  inetOnly?: boolean;
  run(sc: Scope): Promise<Observation>;
  /**
   * Checks on node:net's own observation that the scenario exercises what it claims (for example
   * that the never-read socket does get 'end'), so that a scenario cannot silently degrade into
   * comparing two empty traces.
   */
  check?(ref: Observation): void;
}
