/*
 * health.h - the health endpoint: GET /health on 127.0.0.1:health-check-port
 * answers 200 with an empty body, served by the workers.
 */
#ifndef PORTCULLIS_HEALTH_H
#define PORTCULLIS_HEALTH_H

struct conns;
struct ev_loop;

#define HEALTH_TIMEOUT	10.0	/* seconds for a request to arrive */
#define HEALTH_BUF	4096	/* a request head larger than this is 431 */

/* Take over an accepted connection, served on loop, registered in conns. */
void	 health_accept(struct ev_loop *loop, struct conns *conns, int fd);

#endif /* PORTCULLIS_HEALTH_H */
