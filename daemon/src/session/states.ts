/**
 * The session state machine as data: the single source for the code (session.ts checks every
 * transition against it) and for docs/session-lifecycle.md (a test compares them).
 *
 * A session here is one app's end of a connection. A cut-through connection is two sessions
 * joined through a fifo pair; each side's FIN and close move its own session and, through the
 * pairing, tell the other.
 *
 * A session enters the table established: a connect that is still pending (a kernel connect, a TLS
 * handshake) or that failed is not a session yet, so there is no `connecting` state.
 */

export const SESSION_STATES = ['established', 'local-fin', 'remote-fin', 'closed', 'reset'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export const SESSION_EVENTS = ['shutdown', 'peer-fin', 'close', 'peer-close', 'reset', 'peer-reset'] as const;
export type SessionEvent = (typeof SESSION_EVENTS)[number];

/** state -> event -> next state; a missing entry is a refused transition. */
export const SESSION_TRANSITIONS: Readonly<
  Record<SessionState, Readonly<Partial<Record<SessionEvent, SessionState>>>>
> = {
  established: {
    shutdown: 'local-fin',
    'peer-fin': 'remote-fin',
    close: 'closed',
    'peer-close': 'remote-fin',
    reset: 'reset',
    'peer-reset': 'reset',
  },
  'local-fin': {
    'peer-fin': 'closed',
    'peer-close': 'closed',
    close: 'closed',
    reset: 'reset',
    'peer-reset': 'reset',
  },
  'remote-fin': {
    shutdown: 'closed',
    close: 'closed',
    reset: 'reset',
    'peer-reset': 'reset',
  },
  closed: {},
  reset: { close: 'reset' },
};

export function nextState(state: SessionState, event: SessionEvent): SessionState | undefined {
  return SESSION_TRANSITIONS[state][event];
}
