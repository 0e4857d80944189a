// The libc functions sys/ calls, bound once through koffi; the only koffi.load in Ferry.

import koffi from 'koffi';

const lib = koffi.load('libc.so.6');

// Buffers are declared `void *`: a Uint8Array passes a pointer to its bytes for the duration of a
// synchronous call, and a bigint passes a raw native address (memory from koffi.alloc or mmap).
export const libc = {
  close: lib.func('int close(int fd)'),
  read: lib.func('intptr_t read(int fd, void *buf, size_t count)'),
  write: lib.func('intptr_t write(int fd, const void *buf, size_t count)'),
  pipe2: lib.func('int pipe2(void *fds, int flags)'),
  eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
  // fcntl is variadic: callers pass the optional third argument as ('int', value).
  fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
  memfdCreate: lib.func('int memfd_create(const char *name, unsigned int flags)'),
  ftruncate: lib.func('int ftruncate(int fd, int64_t length)'),
  fstat: lib.func('int fstat(int fd, void *statbuf)'),
  mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
  munmap: lib.func('int munmap(void *addr, size_t length)'),
  sysconf: lib.func('long sysconf(int name)'),
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  socketpair: lib.func('int socketpair(int domain, int type, int protocol, void *sv)'),
  bind: lib.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
  listen: lib.func('int listen(int fd, int backlog)'),
  accept4: lib.func('int accept4(int fd, void *addr, void *addrlen, int flags)'),
  connect: lib.func('int connect(int fd, const void *addr, uint32_t addrlen)'),
  shutdown: lib.func('int shutdown(int fd, int how)'),
  getsockopt: lib.func('int getsockopt(int fd, int level, int optname, void *optval, void *optlen)'),
  setsockopt: lib.func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)'),
  getsockname: lib.func('int getsockname(int fd, void *addr, void *addrlen)'),
  getpeername: lib.func('int getpeername(int fd, void *addr, void *addrlen)'),
  sendmsg: lib.func('intptr_t sendmsg(int fd, const void *msg, int flags)'),
  recvmsg: lib.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
  recv: lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
  epollCreate1: lib.func('int epoll_create1(int flags)'),
  epollCtl: lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
  epollWait: lib.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
  mallopt: lib.func('int mallopt(int param, int value)'),
} as const;

/** errno of the last call made through koffi on this thread; read it before any other call. */
export function lastErrno(): number {
  return koffi.errno();
}

/** A block of native memory with a stable address, for structures the kernel reads or fills. */
export class NativeBuffer {
  #ptr: bigint;
  #size: number;
  #view: DataView;
  #bytes: Uint8Array;

  constructor(size: number) {
    this.#size = size;
    this.#ptr = koffi.alloc('uint8_t', size) as bigint;
    const ab = koffi.view(this.#ptr, size);
    this.#view = new DataView(ab);
    this.#bytes = new Uint8Array(ab);
  }

  get ptr(): bigint {
    return this.#ptr;
  }
  get size(): number {
    return this.#size;
  }
  get view(): DataView {
    return this.#view;
  }
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Grows (never shrinks) to at least `size` bytes; the address changes when it grows. */
  ensure(size: number): void {
    if (size <= this.#size) return;
    const next = Math.max(size, this.#size * 2);
    koffi.free(this.#ptr);
    this.#size = next;
    this.#ptr = koffi.alloc('uint8_t', next) as bigint;
    const ab = koffi.view(this.#ptr, next);
    this.#view = new DataView(ab);
    this.#bytes = new Uint8Array(ab);
  }

  free(): void {
    koffi.free(this.#ptr);
    this.#ptr = 0n;
    this.#size = 0;
  }
}

/** An ArrayBuffer over native memory that sys/ does not own (an mmap range). */
export function viewMemory(address: bigint, size: number): ArrayBuffer {
  return koffi.view(address, size);
}
