// Wake-policy switches read from the environment once per process, so that a benchmark can compare
// variants of the adaptive policy without a rebuild (BENCHMARKS.md, wake11). 0 turns one off, 1 on;
// unset, each has its default; a malformed value is an error that names the variable.
//
// Defaults, from session 9's quiet A/B (HTTP 16 B, 6 alternations): the yield on (adaptive 0.94x ->
// 1.05x unix, lower in 5 of 6, client sleeps 104 -> 88 per 1,000 requests, RTT CPU per round trip
// halved); the peer gate off (0.98x in 3 runs, and with the yield 0.89x against the yield alone).

import { ferryError } from '../errors.js';

export interface WakeSwitches {
  /**
   * FERRY_ADAPTIVE_PEER_GATE=1 (default 0): an adaptive idle stretch stops polling (arms and sleeps) as soon
   * as every peer it could hear from is asleep itself: a sleeping peer posts nothing until it is
   * rung, and nobody rings it while this side polls.
   */
  peerGate: boolean;
  /**
   * FERRY_ADAPTIVE_YIELD (default 1): after a turn that found work, adaptive ends the turn before it polls
   * a window, so that what the dispatched work queued for later in the loop (undici writes its
   * next request from setImmediate) goes out first: a window polled before it can only find
   * answers to what the peer already had.
   */
  yieldBeforeWindow: boolean;
}

function flag(env: NodeJS.ProcessEnv, name: string, unset: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return unset;
  if (v === '0') return false;
  if (v === '1') return true;
  throw ferryError('ERR_INVALID_ARG_VALUE', `${name} must be 0 or 1, got ${JSON.stringify(v)}`);
}

/** The switches as `env` sets them; throws ERR_INVALID_ARG_VALUE for a malformed one. */
export function parseWakeSwitches(env: NodeJS.ProcessEnv): WakeSwitches {
  return {
    peerGate: flag(env, 'FERRY_ADAPTIVE_PEER_GATE', false),
    yieldBeforeWindow: flag(env, 'FERRY_ADAPTIVE_YIELD', true),
  };
}

let cached: WakeSwitches | null = null;

/** This process's switches, read at its first attach. */
export function wakeSwitches(): WakeSwitches {
  cached ??= parseWakeSwitches(process.env);
  return cached;
}
