/** A configuration as JSON for people: tokens as fingerprints, modes in octal. */
import { builtInSocketPath, type DaemonConfig } from '../config.js';
import { defaultOptionValues } from './options.js';
import { tokenFingerprint } from './tokens.js';

export function describeConfig(c: DaemonConfig): Record<string, unknown> {
  const namespaces = Object.fromEntries(
    Object.entries(c.namespaces).map(([name, ns]) => [
      name,
      {
        ...(ns.tokenHash
          ? { token: `sha256:${tokenFingerprint(ns.tokenHash)}`, tokenSource: ns.tokenSource }
          : { token: null }),
        ...(ns.uids ? { uids: ns.uids } : {}),
        ...(ns.gids ? { gids: ns.gids } : {}),
      },
    ]),
  );
  return { ...c, socketMode: `0${c.socketMode.toString(8)}`, namespaces };
}

/** The built-in configuration as a file would spell it. */
export function defaultsDocument(): Record<string, unknown> {
  const d = defaultOptionValues();
  return {
    socket: builtInSocketPath(),
    ...d,
    socketMode: `0${d.socketMode.toString(8)}`,
    namespaces: {},
    rules: [],
    metrics: { listen: null },
  };
}
