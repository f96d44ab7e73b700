/*
 * balance.h - which upstream of a backend a request goes to.
 *
 *   round-robin        each in turn, one counter per backend shared by all
 *                      workers (upstate.h)
 *   least-connections  the fewest requests in flight, counted across all
 *                      workers; ties go round-robin
 *   ip-hash            consistent hashing of the client key
 *                      (util_client_key: an IPv4 address, an IPv6 /64): BALANCE_VNODES points per upstream
 *                      on a ring, by a hash of the upstream's name, so
 *                      adding or removing one moves about 1/N of clients,
 *                      and a client whose upstream is down goes to the
 *                      next one on the ring
 *   sticky-cookie      the upstream the request's cookie names, else
 *                      round-robin, and the response sets the cookie
 *                      (BALANCE_COOKIE).  Its value is opaque: the first
 *                      CONFIG_COOKIE_HEX hex digits of HMAC-SHA256, under
 *                      a key the master draws at start (shm.h), of the
 *                      listener, site, path block and upstream name.  So
 *                      it names an upstream of this backend or none: a
 *                      forged or stale value (the upstream left the list,
 *                      the master restarted) is balanced as if absent,
 *                      never sent anywhere else; a reload that keeps the
 *                      upstream keeps its value.
 *
 * Skipped: upstreams tried already for this request (the retry mask) and
 * those upstate_usable() says are down.  A backend of one upstream and no
 * active check never skips it for its passive health (as nginx does with
 * a single server): it gets the request, and the failure is its answer.
 */
#ifndef PORTCULLIS_BALANCE_H
#define PORTCULLIS_BALANCE_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct upstate;

#define BALANCE_VNODES		160	/* ring points per upstream */
/* The cookie of sticky-cookie. */
#define BALANCE_COOKIE		"portcullis_upstream"

/* What the choice may depend on. */
struct balance_req {
	const struct sockaddr	*peer;		/* ip-hash's client */
	int			 sticky;	/* sticky-cookie's upstream, or
						   -1 */
	uint64_t		 tried;		/* bit i: upstream i tried */
	/* A retry: the upstream that just failed it, or -1.  Round-robin
	   goes on from the next one, without taking a turn of the shared
	   counter (or the one that failed would be first for every other
	   request). */
	int			 after;
};

/* Why no upstream could be chosen. */
enum balance_none {
	BALANCE_ALL_DOWN = -1,	/* every untried one is down: a 503 */
	BALANCE_ALL_TRIED = -2,	/* every one was tried */
};

/*
 * The index of the upstream for rq, or a balance_none.  u NULL: no
 * shared state (tests): every upstream is up and round-robin starts
 * at 0.
 */
int	 balance_pick(const struct config_backend *be, struct upstate *u,
	    const struct balance_req *rq, uint64_t now);

/* The ring of an ip-hash backend (config_backend.ring). 0 or -1 (ENOMEM).*/
int	 balance_ring(struct config_backend *be);

/*
 * What a worker's generation needs: the ring of every ip-hash backend,
 * the cookie value of every upstream of a sticky-cookie one (under key).
 * 0 or -1.
 */
int	 balance_prepare(struct config *cfg, const unsigned char *key,
	    size_t keylen);

/*
 * sticky-cookie: the upstream of be that a Cookie field value names (the
 * last BALANCE_COOKIE in it that names one), or -1.  Pure: any bytes.
 */
int	 balance_cookie_pick(const struct config_backend *be,
	    const char *value, size_t len);

/* The Set-Cookie value for upstream i of be (in buf), or NULL if buf is
   too small.  path: the path block's prefix, NULL for "/". */
const char *balance_set_cookie(const struct config_backend *be, size_t i,
	    const char *path, char *buf, size_t len);

/* The point of the ring a client key hash falls on (exposed for tests). */
size_t	 balance_ring_find(const struct config_backend *be, uint64_t hash);

/* The 64-bit hash of the ring (fixed: every worker, every reload alike). */
uint64_t balance_hash(const void *data, size_t len);

#endif /* PORTCULLIS_BALANCE_H */
