/** The difference between two observations, as lines a person can read and a table can hold. */
import type { Observation } from './scenario.js';

/**
 * Each leaf (an array counts as one leaf: a trace differs as a whole) whose JSON differs gives
 * `path: expected -> actual`. `inet` is compared only when both sides have it.
 */
export function diffObservations(ref: Observation, got: Observation): string[] {
  const out: string[] = [];
  walk('common', ref.common, got.common, out);
  if (ref.inet && got.inet) walk('inet', ref.inet, got.inet, out);
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function walk(path: string, a: unknown, b: unknown, out: string[]): void {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) walk(`${path}.${k}`, a[k], b[k], out);
    return;
  }
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja !== jb) out.push(`${path}: ${ja} -> ${jb}`);
}
