/*
 * conns.h - the connections a worker holds, as one set: each registers
 * with the descriptors it holds, so that accepting can be capped on their
 * number and on descriptors, and a drain can reach every one of them.
 *
 * Knows nothing of what a connection speaks: the worker reads the counts
 * and is told when a connection goes; the protocol modules (h1, h2,
 * health) add and remove theirs.
 */
#ifndef PORTCULLIS_CONNS_H
#define PORTCULLIS_CONNS_H

#include <sys/queue.h>
#include <stdint.h>

struct worker_conn {
	TAILQ_ENTRY(worker_conn) entry;
	unsigned	 nfds;		/* descriptors it holds */
	/* Close now if idle, else once the exchange in progress ends. */
	void		(*drain)(struct worker_conn *);
	/* Close now, whatever it is doing (the drain deadline passed). */
	void		(*abort)(struct worker_conn *);
};

struct conns {
	TAILQ_HEAD(, worker_conn) list;
	unsigned	 n;
	/* Descriptors held: those of the connections, and those opened
	   and closed outside a connection's own (tunnels' upstreams). */
	unsigned	 nfds;
	_Atomic uint64_t *active;	/* the shared counter, or NULL */
	/* After a connection went (the worker may end its drain, or accept
	   again). */
	void		(*released)(struct conns *, void *);
	void		*arg;
};

void	 conns_init(struct conns *s, _Atomic uint64_t *active,
	    void (*released)(struct conns *, void *), void *arg);
void	 conns_add(struct conns *s, struct worker_conn *c);
/* Calls released() last: c may be freed before. */
void	 conns_del(struct conns *s, struct worker_conn *c);
/* drain() every connection (each may remove itself). */
void	 conns_drain(struct conns *s);
/* abort() every connection until none is left. */
void	 conns_abort(struct conns *s);

#endif /* PORTCULLIS_CONNS_H */
