// sched_yield(2): this thread gives its CPU to another runnable task on it, if any, and runs again
// after it. Used by adaptive polling (shm/notifier.ts, yieldCpu) so that a peer woken onto our CPU
// is not left waiting behind our spin. Returns at once when nothing else waits; it cannot fail on
// Linux (the call always returns 0), so the result is not looked at.

import { libc } from './libc.js';

export function schedYield(): void {
  libc.schedYield();
}
