/** What ferryd does with an uncaught exception: report it, stop, exit (never hang). */

/** Exit status of a ferryd that stopped on an uncaught exception (EX_SOFTWARE). */
export const FATAL_EXIT_CODE = 70;

/**
 * Installs the handler. Without it an uncaught exception hangs ferryd instead of killing it: at exit
 * Node joins the libuv threadpool, and the control socket poller keeps an epoll_wait in flight on
 * one of its threads; only `stop()` (which wakes that wait) lets the exit finish.
 */
export function exitOnFatal(stop: () => void, write: (line: string) => void): void {
  process.on('uncaughtException', (err: Error) => {
    write(`ferryd: fatal: ${err.stack ?? String(err)}\n`);
    try {
      stop();
    } catch {}
    process.exit(FATAL_EXIT_CODE);
  });
}
