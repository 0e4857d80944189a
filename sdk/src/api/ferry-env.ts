/**
 * The FERRY_* variables the connect path reads, each read at most once per event-loop turn. A read
 * of process.env goes to libc's environment under node's lock and makes a new string: 0.4-1.5 µs
 * each on a busy 2-vCPU VM, and every connect read four of them (socket, mode, namespace, TCP
 * mode), as much as a tenth of a warm client's CPU per connection (BENCHMARKS.md, conn9). A change
 * to process.env is seen from the next turn of the loop on: a program that sets a variable and
 * connects in the same synchronous run as an earlier connect gets the earlier value.
 */

const UNREAD = Symbol('unread');
type Slot = string | undefined | typeof UNREAD;

/** This turn's reads; UNREAD until asked. */
class EnvTurn {
  #socket: Slot = UNREAD;
  #runtimeDir: Slot = UNREAD;
  #mode: Slot = UNREAD;
  #namespace: Slot = UNREAD;
  #tcpMode: Slot = UNREAD;

  get socket(): string | undefined {
    if (this.#socket === UNREAD) this.#socket = process.env['FERRY_SOCKET'];
    return this.#socket;
  }

  get runtimeDir(): string | undefined {
    if (this.#runtimeDir === UNREAD) this.#runtimeDir = process.env['XDG_RUNTIME_DIR'];
    return this.#runtimeDir;
  }

  get mode(): string | undefined {
    if (this.#mode === UNREAD) this.#mode = process.env['FERRY_MODE'];
    return this.#mode;
  }

  get namespace(): string | undefined {
    if (this.#namespace === UNREAD) this.#namespace = process.env['FERRY_NAMESPACE'];
    return this.#namespace;
  }

  get tcpMode(): string | undefined {
    if (this.#tcpMode === UNREAD) this.#tcpMode = process.env['FERRY_TCP_MODE'];
    return this.#tcpMode;
  }
}

let current: EnvTurn | null = null;

function forget(): void {
  current = null;
}

/** The variables as this turn first read them. */
export function ferryEnv(): EnvTurn {
  if (current !== null) return current;
  current = new EnvTurn();
  // Forgotten in this turn's check phase; an unref'd immediate does not keep the process alive.
  setImmediate(forget).unref();
  return current;
}
