/*
 * health.h - the health endpoint: GET /health on 127.0.0.1:health-check-port
 * answers 200 with an empty body, served by the workers; GET /metrics
 * there answers the text its metrics callback makes (metrics.h).
 */
#ifndef PORTCULLIS_HEALTH_H
#define PORTCULLIS_HEALTH_H

#include <stddef.h>

struct conns;
struct ev_loop;

#define HEALTH_TIMEOUT	10.0	/* seconds for a request to arrive */
#define HEALTH_BUF	4096	/* a request head larger than this is 431 */

/* The body of GET /metrics, malloc'd (its length in *len), NULL if out of
   memory (the answer is then 503). */
typedef char	*health_metrics_fn(void *arg, size_t *len);

/*
 * Take over an accepted connection, served on loop, registered in conns;
 * metrics(metrics_arg) makes the body of each GET /metrics.
 */
void	 health_accept(struct ev_loop *loop, struct conns *conns, int fd,
	    health_metrics_fn *metrics, void *metrics_arg);

#endif /* PORTCULLIS_HEALTH_H */
