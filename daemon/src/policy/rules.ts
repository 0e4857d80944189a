/** Session rules: which rule, if any, matches a connect. Pure: no I/O, no state. */
import { canonicalHost, type SessionUri } from '@ferry/sdk/internal';
import {
  type AddressBlock,
  inBlock,
  ipBytes,
  parseAddress,
  parseServicePattern,
  type ServicePattern,
} from '../config/patterns.js';
import type { Rule, RuleAction } from '../config.js';

export interface ConnectContext {
  /** Namespace of the connecting app. */
  from: string;
  /** Namespace of the listener reached; null for a remote connect. */
  to: string | null;
  uri: SessionUri;
  /** The IP ferryd would connect to (a remote host name resolved), else null (a host name). */
  address: string | null;
  via: 'local' | 'remote';
}

interface Compiled {
  service: ServicePattern | null;
  block: AddressBlock | null;
}

const compiled = new WeakMap<Rule, Compiled>();

function compile(rule: Rule): Compiled {
  let c = compiled.get(rule);
  if (!c) {
    c = {
      service: rule.service ? parseServicePattern(rule.service) : null,
      block: rule.address ? parseAddress(rule.address) : null,
    };
    compiled.set(rule, c);
  }
  return c;
}

export function ruleMatches(rule: Rule, ctx: ConnectContext): boolean {
  if (rule.via !== undefined && rule.via !== ctx.via) return false;
  if (rule.from !== undefined && rule.from !== '*' && rule.from !== ctx.from) return false;
  if (rule.to !== undefined && (ctx.to === null || (rule.to !== '*' && rule.to !== ctx.to))) return false;
  if (rule.port !== undefined) {
    const [lo, hi] = typeof rule.port === 'number' ? [rule.port, rule.port] : rule.port;
    if (ctx.uri.port < lo || ctx.uri.port > hi) return false;
  }
  const c = compile(rule);
  if (rule.service !== undefined) {
    const s = c.service;
    if (!s) return false;
    if (s.scheme !== null && s.scheme !== ctx.uri.scheme) return false;
    if (s.port !== null && s.port !== ctx.uri.port) return false;
    if (s.host !== null && s.host !== canonicalHost(ctx.uri.host) && s.host !== ctx.address) return false;
  }
  if (rule.address !== undefined) {
    const addr = ctx.address === null ? null : ipBytes(ctx.address);
    if (!c.block || !addr || !inBlock(c.block, addr)) return false;
  }
  return true;
}

/** Index of the first rule that matches, or -1. */
export function firstMatch(rules: readonly Rule[], ctx: ConnectContext): number {
  return rules.findIndex((r) => ruleMatches(r, ctx));
}

export interface Verdict {
  action: RuleAction;
  /** Index of the rule that decided, or -1 for the default action. */
  rule: number;
}

export function decide(rules: readonly Rule[], defaultAction: RuleAction, ctx: ConnectContext): Verdict {
  const i = firstMatch(rules, ctx);
  return { action: i >= 0 ? (rules[i]?.action ?? defaultAction) : defaultAction, rule: i };
}
