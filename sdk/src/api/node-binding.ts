/**
 * One of node's own bindings (`process.binding(name)`, for names on node's allow-list), for the
 * handles the SDK makes itself (tcp-handle.ts, stream-handle.ts); null where it cannot be used.
 *
 * Null under `--pending-deprecation` (in the arguments, NODE_OPTIONS or NODE_PENDING_DEPRECATION=1),
 * where process.binding would print a deprecation warning the application did not ask for, and
 * where the call throws (a node without it, or without that binding). Callers check the shape of
 * what they take from it and fall back to node's public paths.
 */
export function nodeBinding(name: string): Record<string, unknown> | null {
  const pending =
    process.execArgv.includes('--pending-deprecation') ||
    /(^|\s)--pending-deprecation(\s|$)/.test(process.env['NODE_OPTIONS'] ?? '') ||
    process.env['NODE_PENDING_DEPRECATION'] === '1';
  if (pending) return null;
  try {
    const b = (process as unknown as { binding(name: string): unknown }).binding(name);
    return typeof b === 'object' && b !== null ? (b as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
