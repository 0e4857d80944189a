/**
 * Who may attach and who may connect: namespace tokens and session rules, read from the running
 * configuration at each decision (so a SIGHUP reload applies to the next attach or connect; apps
 * already attached keep running: a token authorises an attach, not a connection's lifetime).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { canonicalHost, type FerryError, ferryError, formatUri, type SessionUri } from '@ferry/sdk/internal';
import type { Listener, ListenerTable } from '../app/listener-table.js';
import { tokenMatches } from '../config/tokens.js';
import { NAMESPACE_NAME } from '../config/validate.js';
import type { DaemonConfig } from '../config.js';
import { newPolicyCounters, type PolicyCounters } from './counters.js';
import { type ConnectContext, decide } from './rules.js';

export class Policy {
  readonly config: DaemonConfig;
  readonly counters: PolicyCounters = newPolicyCounters();
  /** Connects each rule decided, by index; reset when the rules change. */
  ruleHits: number[] = [];
  defaultHits = 0;
  #rules: DaemonConfig['rules'] | null = null;

  constructor(config: DaemonConfig) {
    this.config = config;
  }

  /** Null when the app may attach to `namespace` with `token`; else the EACCES to answer. */
  checkAttach(namespace: string, token: string, creds?: { uid: number; gid: number }): FerryError | null {
    const refuse = (why: string) => {
      this.counters.attachRefused++;
      return ferryError('EACCES', `namespace '${namespace}': ${why}`);
    };
    if (!NAMESPACE_NAME.test(namespace)) {
      this.counters.attachRefused++;
      return ferryError('EACCES', 'namespace names are letters, digits, . _ - (at most 64)');
    }
    const ns = this.config.namespaces[namespace];
    if (!ns) {
      if (this.config.unlistedNamespaces === 'refuse') return refuse('not served by this ferryd');
      return token === '' ? null : refuse('needs no token, but one was given');
    }
    // Credentials come from the kernel (SO_PEERCRED), never from the message.
    if (ns.uids || ns.gids) {
      const ok = (creds && ns.uids?.includes(creds.uid)) || (creds && ns.gids?.includes(creds.gid));
      if (!ok) return refuse(`uid ${creds?.uid ?? '?'} / gid ${creds?.gid ?? '?'} may not attach`);
    }
    if (ns.tokenHash === null) return null;
    // Hash then compare: constant time whatever the length or content of what was sent.
    if (!tokenMatches(ns.tokenHash, token)) return refuse(token === '' ? 'token required' : 'wrong token');
    return null;
  }

  /**
   * The listener a connect from `from` reaches, or null when it goes to the network (remote).
   * Throws ERR_FERRY_DENIED when a rule denies it, or when the only listener on that endpoint
   * belongs to a namespace the app may not reach (its kernel listener is not a way around that).
   */
  routeLocal(from: string, uri: SessionUri, listeners: ListenerTable): Listener | null {
    const own = listeners.lookup(from, uri);
    if (own) {
      this.#enforce({ from, to: from, uri, address: literalAddress(uri.host), via: 'local' }, false);
      return own;
    }
    const others = listeners.lookupAll(uri).filter((l) => l.namespace !== from);
    if (others.length === 0) return null;
    others.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
    for (const l of others) {
      const ctx: ConnectContext = {
        from,
        to: l.namespace,
        uri,
        address: literalAddress(uri.host),
        via: 'local',
      };
      // Another namespace is reached only through a rule with `to`, never by the default action.
      if (this.#verdict(ctx, true)) return l;
    }
    this.counters.deniedConnects++;
    throw ferryError(
      'ERR_FERRY_DENIED',
      `${formatUri(uri)} is served in another namespace; no rule lets '${from}' reach it`,
    );
  }

  /**
   * Checks a connect ferryd would make to the network and returns where to connect: the host
   * name resolved once here, when an address rule needs the address, so the rule and the
   * connection see the same one.
   */
  async routeRemote(from: string, uri: SessionUri): Promise<SessionUri> {
    // A topic name is not a host: rules see it as written, nothing is resolved.
    if (uri.scheme === 'topic') {
      this.#enforce({ from, to: null, uri, address: null, via: 'remote' }, false);
      return uri;
    }
    let address = literalAddress(uri.host);
    let target = uri;
    if (
      address === null &&
      this.config.rules.some((r) => r.address !== undefined || r.service !== undefined)
    ) {
      try {
        address = (await lookup(uri.host)).address;
      } catch {
        throw ferryError('EHOSTUNREACH', `${uri.host}: cannot resolve`);
      }
      target = { ...uri, host: address };
    }
    this.#enforce({ from, to: null, uri, address, via: 'remote' }, false);
    return target;
  }

  /**
   * A datagram ferryd's relay is about to send for an app of `from` (its destination is always a
   * numeric address): the same rules as a remote connect, and never to an endpoint of a namespace
   * the app may not reach. Denied datagrams are dropped and counted, as a firewall drops them.
   */
  allowsDatagram(
    from: string,
    address: string,
    port: number,
    listeners: ListenerTable,
    counted: 'deniedDatagrams' | 'deniedConnects' = 'deniedDatagrams',
  ): boolean {
    const uri: SessionUri = { scheme: 'udp', host: address, port };
    const c = this.config;
    const others = listeners.lookupAll(uri).filter((l) => l.namespace !== from);
    let ok: boolean;
    if (others.length > 0) {
      ok = others.some((l) => this.#verdict({ from, to: l.namespace, uri, address, via: 'local' }, true));
    } else if (c.rules.length === 0) {
      ok = c.defaultAction === 'allow';
    } else {
      ok = this.#verdict({ from, to: null, uri, address: literalAddress(address), via: 'remote' }, false);
    }
    if (!ok) this.counters[counted]++;
    return ok;
  }

  #enforce(ctx: ConnectContext, explicitOnly: boolean): void {
    if (this.#verdict(ctx, explicitOnly)) return;
    this.counters.deniedConnects++;
    throw ferryError('ERR_FERRY_DENIED', `${formatUri(ctx.uri)} from namespace '${ctx.from}'`);
  }

  /** True when allowed; counts which rule decided. */
  #verdict(ctx: ConnectContext, explicitOnly: boolean): boolean {
    const c = this.config;
    if (this.#rules !== c.rules) {
      this.#rules = c.rules;
      this.ruleHits = c.rules.map(() => 0);
      this.defaultHits = 0;
    }
    const v = decide(c.rules, c.defaultAction, ctx);
    if (v.rule >= 0) this.ruleHits[v.rule] = (this.ruleHits[v.rule] ?? 0) + 1;
    else if (!explicitOnly) this.defaultHits++;
    // Reaching another namespace takes an allow rule that names a destination (`to`).
    if (explicitOnly) return v.action === 'allow' && c.rules[v.rule]?.to !== undefined;
    return v.action === 'allow';
  }
}

function literalAddress(host: string): string | null {
  const h = canonicalHost(host);
  return isIP(h) ? h : null;
}
