/*
 * front.h - what the HTTP/1.1 and HTTP/2 frontends share after a request:
 * its access log line and the worker's counters.  (Before it: request.h.)
 */
#ifndef PORTCULLIS_FRONT_H
#define PORTCULLIS_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "http1.h"

struct shm_counters;
struct shm_stats;

/* What the access log says of a request. */
struct front_log {
	char		 method[32];
	char		 host[256];
	char		 path[2048];
	const char	*proto;
	int		 status;
	bool		 cut;		/* a field was shortened */
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	double		 start;
	/* A tunnel's (WebSocket) upgrade, when its head went out; 0: no
	   tunnel.  The request's duration ends there, not with the tunnel
	   (the duration histogram). */
	double		 upgraded;
	char		 upstream[64];
	char		 upstream_error[128];
	/* The request's client when admission took it from real-ip-header
	   (front_log_client), else "": the connection's. */
	char		 client_ip[INET6_ADDRSTRLEN];
	/* Which access rule refused it ("deny 10.0.0.0/8"), or "". */
	char		 denied[80];
	/* Its site's row of the statistics (shm.h SHM_SITE_*):
	   SHM_SITE_UNKNOWN until a site matched (request_answer's). */
	unsigned	 site;
};

/* Empty fields ("-"), the clock started at now. */
void	 front_log_begin(struct front_log *l, double now);
/*
 * A log held only while a request is in flight (an idle HTTP/1.1
 * connection holds none: 2.4 KiB less each), begun at now; NULL when out
 * of memory.  Freed logs are kept for the next request.
 */
struct front_log *front_log_new(double now);
void	 front_log_free(struct front_log *l);
/* The request's method, host and target, shortened if need be. */
void	 front_log_request(struct front_log *l, struct http1_slice method,
	    struct http1_slice host, struct http1_slice target);
/* The upstream that answered, shortened if need be. */
/* The upstream (name "": none was chosen) and what failed ("": nothing). */
void	 front_log_upstream(struct front_log *l, const char *name,
	    const char *error);
/* The request's client, as admission made it (proxy_request's
   h.client_ip). */
void	 front_log_client(struct front_log *l, const char *client_ip);
/* The access rule that refused the request (request_answer's why). */
void	 front_log_denied(struct front_log *l, const char *why);
/* The ACCESS line (status 0 is logged as 499: the client left first);
   client_ip is the connection's, used unless front_log_client() said
   otherwise. */
void	 front_log_emit(struct front_log *l, const char *client_ip,
	    double now);
/*
 * A worker's shared counters (k) and statistics (st: by site, protocol
 * (h2 or HTTP/1.x) and status class, and the duration from l->start to
 * now), for one finished request: the one place both protocols count.
 */
void	 front_count(struct shm_counters *k, struct shm_stats *st,
	    const struct front_log *l, bool broken, bool h2, double now);

#endif /* PORTCULLIS_FRONT_H */
