#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/epoll.h>   /* the front door's own poll set (Glibc does not export it) */
#include <sys/eventfd.h>
#include <microhttpd.h>

/* MHD_get_connection_info is variadic, which Swift does not import: the one call zramd
 * needs, the connection's socket (to answer a request libmicrohttpd cannot queue a reply
 * for, then close), as a plain function. */
static inline int zramd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/* The per-connection pointer zramd stores from the connection-notify callback. */
static inline void *zramd_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}
