/** `ferry show rules` and `ferry show namespaces`: the trust policy as it runs, secrets as fingerprints. */
import type { App } from '../app/app.js';
import { tokenFingerprint } from '../config/tokens.js';
import type { Policy } from '../policy/policy.js';

export function rulesView(policy: Policy): Record<string, unknown>[] {
  const c = policy.config;
  const rows: Record<string, unknown>[] = c.rules.map((r, i) => ({
    rule: i,
    action: r.action,
    from: r.from ?? '*',
    to: r.to ?? '*',
    via: r.via ?? '*',
    service: r.service ?? '*',
    address: r.address ?? '*',
    port:
      r.port === undefined ? '*' : typeof r.port === 'number' ? String(r.port) : `${r.port[0]}-${r.port[1]}`,
    hits: policy.ruleHits[i] ?? 0,
  }));
  rows.push({
    rule: 'default',
    action: c.defaultAction,
    from: '*',
    to: '(own namespace)',
    via: '*',
    service: '*',
    address: '*',
    port: '*',
    hits: policy.defaultHits,
  });
  return rows;
}

export function namespacesView(policy: Policy, apps: Iterable<App>): Record<string, unknown>[] {
  const c = policy.config;
  const count = new Map<string, number>();
  for (const a of apps) count.set(a.namespace, (count.get(a.namespace) ?? 0) + 1);
  const names = new Set([...Object.keys(c.namespaces), ...count.keys()]);
  return [...names].sort().map((name) => {
    const ns = c.namespaces[name];
    return {
      namespace: name,
      listed: ns !== undefined,
      token: ns?.tokenHash ? `sha256:${tokenFingerprint(ns.tokenHash)}` : null,
      tokenSource: ns?.tokenSource ?? null,
      uids: ns?.uids ?? null,
      gids: ns?.gids ?? null,
      apps: count.get(name) ?? 0,
    };
  });
}
