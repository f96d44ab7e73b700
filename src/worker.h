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
#include "shm.h"

/* Set in the environment of an executed worker: its index. */
#define WORKER_ENV	"PORTCULLIS_WORKER"

/* Descriptors kept free for work on accepted connections. */
#define WORKER_FD_RESERVE	32

struct gen;
struct worker;
struct upstream_pool;

/* The current generation (gen.h); no reference taken. */
struct gen	*worker_gen(const struct worker *wk);

/*
 * Every connection a worker holds registers here, so that accepting can be
 * capped and a drain can reach idle connections.
 */
struct worker_conn {
	TAILQ_ENTRY(worker_conn) entry;
	unsigned	 nfds;		/* descriptors it holds */
	/* Close now if idle, else once the exchange in progress ends. */
	void		(*drain)(struct worker_conn *);
	/* Close now, whatever it is doing (the drain deadline passed). */
	void		(*abort)(struct worker_conn *);
};

/* Entry point of an executed worker; returns the exit status. */
int	 worker_main(void);

struct ev_loop	*worker_loop(const struct worker *wk);
struct upstream_pool *worker_pool(const struct worker *wk);
struct shm_counters *worker_counters(const struct worker *wk);
struct ratelimit *worker_ratelimit(const struct worker *wk);
bool	 worker_draining(const struct worker *wk);

void	 worker_conn_add(struct worker *wk, struct worker_conn *c);
/* May end the process's drain or resume accepting. */
void	 worker_conn_del(struct worker *wk, struct worker_conn *c);

/* Descriptors opened and closed outside a connection's own (upstreams). */
void	 worker_fd_add(struct worker *wk, unsigned n);
void	 worker_fd_del(struct worker *wk, unsigned n);

/* The client address of an accepted socket as text ("-" if unknown). */
void	 worker_peer_name(int fd, char *buf, size_t len);

#endif /* PORTCULLIS_WORKER_H */
