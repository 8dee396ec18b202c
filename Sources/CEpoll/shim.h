/* epoll and eventfd for the HTTP engine's polling threads (Glibc's Swift module does not export them). */
#include <sys/epoll.h>
#include <sys/eventfd.h>
