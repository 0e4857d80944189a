// Linux constants for sys/: the one place numbers from kernel and glibc headers live.
//
// Values are from the Linux UAPI and glibc headers for x86_64 and aarch64 (asm-generic), which
// agree on every constant below; where the two ABIs differ (struct epoll_event) both are given
// and chosen by process.arch. Header names are in the comments so each value can be checked.

import { ferryError } from '../errors.js';

if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
  throw ferryError(
    'ERR_FERRY_NOT_SUPPORTED',
    `sys/ needs Linux on x64 or arm64, not ${process.platform}/${process.arch}`,
  );
}

// <asm-generic/fcntl.h>
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_DUPFD_CLOEXEC = 1030;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
// <linux/fcntl.h>: F_LINUX_SPECIFIC_BASE (1024) + 9 / + 10
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

// <linux/memfd.h>
export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;

// <sys/eventfd.h>: EFD_CLOEXEC = O_CLOEXEC, EFD_NONBLOCK = O_NONBLOCK
export const EFD_SEMAPHORE = 0x1;
export const EFD_CLOEXEC = O_CLOEXEC;
export const EFD_NONBLOCK = O_NONBLOCK;
/** An eventfd counter is read and written as one native u64. */
export const EVENTFD_VALUE_SIZE = 8;

// <asm-generic/mman-common.h>, <asm-generic/mman.h>
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** mmap returns MAP_FAILED ((void *) -1), which koffi hands back as this bigint. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

// <bits/socket.h>, <linux/net.h>
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = O_NONBLOCK;
export const SOCK_CLOEXEC = O_CLOEXEC;
export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
export const SCM_RIGHTS = 1;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const MSG_PEEK = 0x2;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** <linux/socket.h> SOMAXCONN (4096 since Linux 5.4; the kernel clamps to net.core.somaxconn). */
export const SOMAXCONN = 4096;
/** <net/scm.h> SCM_MAX_FD: the most descriptors one SCM_RIGHTS message may carry. */
export const SCM_MAX_FD = 253;

// TCP sockets (handoff): <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h>, <linux/tcp.h>.
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SO_TYPE = 3;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const IPPROTO_TCP = 6;
export const TCP_INFO = 11;
export const TCP_NODELAY = 1;
/** sizeof(struct sockaddr_in) and sizeof(struct sockaddr_in6). */
export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
/** struct sockaddr_storage: large enough for sockaddr_in and sockaddr_in6. */
export const SOCKADDR_STORAGE_SIZE = 128;
/** struct tcp_info offsets (stable ABI: fields are only ever appended; older kernels fill less). */
export const TCPI_STATE = 0;
export const TCPI_UNACKED = 24;
export const TCPI_LAST_DATA_SENT = 44;
export const TCPI_LAST_DATA_RECV = 52;
export const TCPI_RTT = 68;
export const TCPI_BYTES_ACKED = 120;
export const TCPI_BYTES_RECEIVED = 128;
export const TCPI_NOTSENT_BYTES = 144;
/** Enough of struct tcp_info for every field above (Linux 4.6+ fills at least this much). */
export const TCP_INFO_SIZE = 232;
export const TCPI_MIN_SIZE = 152;

// <linux/un.h>: struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
export const SOCKADDR_UN_SIZE = 110;
export const SUN_PATH_OFFSET = 2;
export const SUN_PATH_MAX = 108;

// struct ucred { pid_t pid; uid_t uid; gid_t gid; } (<bits/socket.h>)
export const UCRED_SIZE = 12;
export const UCRED_PID = 0;
export const UCRED_UID = 4;
export const UCRED_GID = 8;

// 64-bit layouts of struct msghdr, struct iovec and struct cmsghdr (<bits/socket.h>, <sys/uio.h>):
// pointers and size_t are 8 bytes; CMSG_ALIGN rounds to sizeof(size_t).
export const MSGHDR_SIZE = 56;
export const MSGHDR_NAME = 0;
export const MSGHDR_NAMELEN = 8;
export const MSGHDR_IOV = 16;
export const MSGHDR_IOVLEN = 24;
export const MSGHDR_CONTROL = 32;
export const MSGHDR_CONTROLLEN = 40;
export const MSGHDR_FLAGS = 48;
export const IOVEC_SIZE = 16;
export const IOVEC_BASE = 0;
export const IOVEC_LEN = 8;
export const CMSGHDR_SIZE = 16;
export const CMSGHDR_LEN = 0;
export const CMSGHDR_LEVEL = 8;
export const CMSGHDR_TYPE = 12;
export const CMSG_ALIGN_BYTES = 8;
export const FD_SIZE = 4;

// <sys/epoll.h>, <linux/eventpoll.h>
export const EPOLL_CLOEXEC = O_CLOEXEC;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
export const EPOLLET = 0x8000_0000;
// struct epoll_event { uint32_t events; epoll_data_t data; } is __attribute__((packed)) on x86_64
// only (12 bytes, data at 4); aarch64 uses natural alignment (16 bytes, data at 8).
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
export const EPOLL_EVENT_EVENTS = 0;
export const EPOLL_EVENT_DATA = process.arch === 'x64' ? 4 : 8;

// <bits/struct_stat.h>: st_size is at byte 48 in both the x86_64 and the asm-generic (aarch64)
// struct stat; the buffer is sized for the larger one (x86_64, 144 bytes).
export const STAT_SIZE = 144;
export const STAT_ST_SIZE = 48;

/** Page size for mmap offsets; x86_64 and most aarch64 kernels use 4 KiB, checked at load via sysconf. */
export const SC_PAGESIZE = 30;

/** x86_64 and aarch64 Linux are little-endian: every DataView access in sys/ passes this. */
export const LE = true;
