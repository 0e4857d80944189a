/*
 * The wake-up floor of a round trip through a chain of processes, without Node or Ferry: each hop
 * is a 1-byte pipe write that the next process, asleep in epoll_wait, wakes up for (as libuv does).
 * A round trip through k processes there and back costs 2(k-1) wake-ups: k = 2 is node:net's
 * client/server ping-pong, k = 4 is Ferry's remote path (app A, ferryd A, ferryd B, app B).
 *
 *   gcc -O2 -o wake-chain wake-chain.c && ./wake-chain [round trips per chain, default 5000]
 *
 * Prints the median and p99 round trip for k = 2, 3 and 4, measured in turns (interleaved rounds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXK 4

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Sleeps in epoll_wait until fd is readable, then takes the byte. */
static void wait_byte(int ep, int fd) {
  struct epoll_event e;
  char c;
  while (epoll_wait(ep, &e, 1, -1) != 1) {
  }
  if (read(fd, &c, 1) != 1) _exit(3);
}

static void put_byte(int fd) {
  char c = 1;
  if (write(fd, &c, 1) != 1) _exit(4);
}

static int watch(int fd) {
  int ep = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  return ep;
}

/* One round: n round trips through k processes; fills rt[] with each trip's time in us. */
static void chain(int k, int n, double *rt) {
  int fwd[MAXK][2], back[MAXK][2]; /* fwd[i]: i -> i+1, back[i]: i+1 -> i */
  for (int i = 0; i < k - 1; i++)
    if (pipe(fwd[i]) || pipe(back[i])) exit(1);
  for (int p = 1; p < k; p++) {
    if (fork() == 0) {
      int in_f = fwd[p - 1][0], out_b = back[p - 1][1];
      int last = p == k - 1;
      int epf = watch(in_f), epb = last ? -1 : watch(back[p][0]);
      for (int i = 0; i < n; i++) {
        wait_byte(epf, in_f);
        if (!last) {
          put_byte(fwd[p][1]);
          wait_byte(epb, back[p][0]);
        }
        put_byte(out_b);
      }
      _exit(0);
    }
  }
  int ep = watch(back[0][0]);
  for (int i = 0; i < n; i++) {
    double t = now_us();
    put_byte(fwd[0][1]);
    wait_byte(ep, back[0][0]);
    rt[i] = now_us() - t;
  }
  while (wait(NULL) > 0) {
  }
  for (int i = 0; i < k - 1; i++) {
    close(fwd[i][0]);
    close(fwd[i][1]);
    close(back[i][0]);
    close(back[i][1]);
  }
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 5000;
  if (n < 10 || n > 1000000) n = 5000;
  const int rounds = 5;
  double *rt = malloc(sizeof(double) * n);
  double p50[MAXK + 1][rounds], p99[MAXK + 1][rounds];
  for (int r = 0; r < rounds; r++) {
    for (int k = 2; k <= MAXK; k++) {
      chain(k, n, rt);
      qsort(rt, n, sizeof(double), cmp);
      p50[k][r] = rt[n / 2];
      p99[k][r] = rt[n * 99 / 100];
    }
  }
  for (int k = 2; k <= MAXK; k++) {
    qsort(p50[k], rounds, sizeof(double), cmp);
    qsort(p99[k], rounds, sizeof(double), cmp);
    printf("%d processes (%d wake-ups per round trip): p50 %.1f us, p99 %.1f us, p50 x 2-process %.2f\n",
           k, 2 * (k - 1), p50[k][rounds / 2], p99[k][rounds / 2], p50[k][rounds / 2] / p50[2][rounds / 2]);
  }
  free(rt);
  return 0;
}
