/*
 * conns.c - the set of a worker's connections (see conns.h).
 */
#include "autoconf.h"

#include <stdatomic.h>
#include <stddef.h>

#include "conns.h"

void
conns_init(struct conns *s, _Atomic uint64_t *active,
    void (*released)(struct conns *, void *), void *arg)
{
	TAILQ_INIT(&s->list);
	s->n = 0;
	s->nfds = 0;
	s->active = active;
	s->released = released;
	s->arg = arg;
}

void
conns_add(struct conns *s, struct worker_conn *c)
{
	TAILQ_INSERT_TAIL(&s->list, c, entry);
	s->n++;
	s->nfds += c->nfds;
	if (s->active != NULL)
		atomic_fetch_add(s->active, 1);
}

void
conns_del(struct conns *s, struct worker_conn *c)
{
	TAILQ_REMOVE(&s->list, c, entry);
	s->n--;
	s->nfds -= c->nfds;
	if (s->active != NULL)
		atomic_fetch_sub(s->active, 1);
	if (s->released != NULL)
		s->released(s, s->arg);
}

void
conns_drain(struct conns *s)
{
	struct worker_conn *c, *next;

	for (c = TAILQ_FIRST(&s->list); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		c->drain(c);
	}
}

void
conns_abort(struct conns *s)
{
	struct worker_conn *c;

	while ((c = TAILQ_FIRST(&s->list)) != NULL)
		c->abort(c);
}
