/*
 * upstream.h - connections to upstream servers: non-blocking connect, and
 * a per-worker pool of idle keep-alive connections per upstream address
 * and tag (0: plain HTTP; over TLS, what the connection was made and
 * verified with: uptls_tag; for a backend with upstream-proxy-protocol, a
 * hash of the PROXY header the connection began with folded in: proxy.c).
 *
 * An idle connection is watched: if it becomes readable it was closed by
 * the upstream (or sent bytes nobody asked for) and is dropped at once;
 * over TLS its records are read first, and only those without application
 * data (a TLS 1.3 session ticket) let it stay.  The same is checked again
 * when it is taken (it may be given back and taken within one loop
 * iteration), so a connection taken from the pool holds no byte it was
 * sent before, in the socket or inside its TLS session.  A connection
 * goes back into the pool only after a complete, well-formed exchange.
 */
#ifndef PORTCULLIS_UPSTREAM_H
#define PORTCULLIS_UPSTREAM_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "config.h"

/* Idle connections a worker keeps in all, whatever the backends allow
   (they count against its descriptor budget); also the largest
   upstream-keepalive. */
#define UPSTREAM_IDLE_MAX	CONFIG_KEEPALIVE_MAX

struct upstream_pool;
struct uptls_conn;

struct upstream_pool *upstream_pool_new(struct ev_loop *loop);
void	 upstream_pool_free(struct upstream_pool *p);

/* Idle connections held (they count against the descriptor budget). */
size_t	 upstream_pool_size(const struct upstream_pool *p);

/* An idle connection to addr with tag, or -1 if there is none (those
   idle past their time, or holding any byte or an EOF, are closed first);
   *tls is its TLS session (NULL: plain).  keep is the asking backend's
   limit, and 0 closes what is idle. */
int	 upstream_take(struct upstream_pool *p, const struct sockaddr *addr,
	    socklen_t len, uint64_t tag, unsigned keep,
	    struct uptls_conn **tls);

/*
 * Give back a connection (fd, and tls its TLS session or NULL) that
 * finished a clean exchange, to be kept idle for at most timeout seconds
 * among at most keep for addr and tag (the longest idle goes first); keep
 * 0 closes it.  Backends sharing an address and tag share its
 * connections; each gives back under its own limits (a connection is
 * kept for the timeout of the backend that gave it back).
 */
void	 upstream_put(struct upstream_pool *p, const struct sockaddr *addr,
	    socklen_t len, uint64_t tag, int fd, struct uptls_conn *tls,
	    unsigned keep, unsigned timeout);

/* Close every idle connection (a drain). */
void	 upstream_pool_flush(struct upstream_pool *p);

/*
 * Start a non-blocking connection to addr.  Returns the socket (the
 * connect may still be in progress: wait for writability, then
 * upstream_connect_result) or -1 with errno set.
 */
int	 upstream_connect(const struct sockaddr *addr, socklen_t len);

/* 0 if the connection on fd completed, else the error (SO_ERROR). */
int	 upstream_connect_result(int fd);

/* "127.0.0.1:8080" or "[::1]:8080". */
void	 upstream_describe(const struct sockaddr *addr, char *buf, size_t len);

#endif /* PORTCULLIS_UPSTREAM_H */
