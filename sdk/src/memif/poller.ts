// One FdPoller per process for every memif interface (control sockets, listeners, eventfds): each
// poller holds a libuv threadpool thread while it watches anything (sys/README.md).
import { FdPoller } from '../sys/index.js';

let shared: FdPoller | null = null;

export function memifPoller(): FdPoller {
  if (shared === null) shared = new FdPoller();
  return shared;
}
