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

struct worker;

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
const struct config *worker_config(const struct worker *wk);
struct shm_counters *worker_counters(const struct worker *wk);
bool	 worker_draining(const struct worker *wk);

void	 worker_conn_add(struct worker *wk, struct worker_conn *c);
/* May end the process's drain or resume accepting. */
void	 worker_conn_del(struct worker *wk, struct worker_conn *c);

#endif /* PORTCULLIS_WORKER_H */
