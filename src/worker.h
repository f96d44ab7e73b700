/*
 * worker.h - a worker process: one libev loop serving the listeners it
 * inherited, with no privileges, configured only through the shared
 * segment and the control channel.
 */
#ifndef PORTCULLIS_WORKER_H
#define PORTCULLIS_WORKER_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "config.h"
#include "conns.h"
#include "listen.h"
#include "shm.h"

/* Set in the environment of an executed worker: its index. */
#define WORKER_ENV	"PORTCULLIS_WORKER"

/* Descriptors kept free for work on accepted connections. */
#define WORKER_FD_RESERVE	32

struct gen;
struct proxy_ctx;
struct worker;

/* The current generation (gen.h); no reference taken. */
struct gen	*worker_gen(const struct worker *wk);
/* The per-client connection table (connlimit.h), this worker's row. */
struct connlimit *worker_connlimit(struct worker *wk);

/*
 * What takes over a socket accepted on a listener.  The worker core knows
 * nothing of the protocols it serves: whoever starts it gives one handler
 * per kind of listener (as nginx's ls->handler), and each listener is
 * dispatched through its own.
 */
typedef void	 worker_accept_fn(struct worker *wk, int fd,
		    const struct listen_sock *ls);
struct worker_handlers {
	worker_accept_fn *accept[LISTEN_KINDS];	/* by enum listen_kind */
};

/* Entry point of an executed worker; returns the exit status. */
int	 worker_main(const struct worker_handlers *h);

struct ev_loop	*worker_loop(const struct worker *wk);
/* What the exchanges of this worker's connections run with (proxy.h). */
struct proxy_ctx *worker_proxy_ctx(struct worker *wk);
/* The worker's connections (conns.h). */
struct conns	*worker_conns(struct worker *wk);
struct shm_counters *worker_counters(const struct worker *wk);
/* Its statistics for /metrics (shm.h struct shm_stats). */
struct shm_stats *worker_stats(const struct worker *wk);
struct ratelimit *worker_ratelimit(const struct worker *wk);
/* The body of GET /metrics (metrics.h), malloc'd; NULL if out of memory. */
char	*worker_metrics(struct worker *wk, size_t *len);
bool	 worker_draining(const struct worker *wk);

/* conns_add() and conns_del() on worker_conns(wk). */
void	 worker_conn_add(struct worker *wk, struct worker_conn *c);
void	 worker_conn_del(struct worker *wk, struct worker_conn *c);

/* Descriptors opened and closed outside a connection's own (tunnels'
   upstreams; an exchange's own are counted in its proxy_ctx). */
void	 worker_fd_add(struct worker *wk, unsigned n);
void	 worker_fd_del(struct worker *wk, unsigned n);


#endif /* PORTCULLIS_WORKER_H */
