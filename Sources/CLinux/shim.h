/* Linux calls Glibc's Swift module does not export: epoll and eventfd for the HTTP engine's
 * polling threads, sched_getcpu for per-CPU counters (declared here: <sched.h> hides it
 * without _GNU_SOURCE). */
#include <sys/epoll.h>
#include <sys/eventfd.h>

extern int sched_getcpu(void);
