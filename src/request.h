/*
 * request.h - admission: what happens to a request between "its head
 * arrived" and "it goes upstream", the same for HTTP/1.1 and HTTP/2.
 *
 * The protocols only parse and render.  Each turns what the client sent
 * into a proxy_request (h1conn.c from the HTTP/1.1 parser's result, h2req.c
 * from an HTTP/2 header block) and asks request_admit(), which decides in
 * this order:
 *
 *   the host, normalised (400)
 *   plain port: an HTTP-01 challenge (200 with its key authorization,
 *     or 404 under /.well-known/acme-challenge/), a site of ours (404),
 *     a Location that fits (414), 301
 *   the route: the site of the listener serving the host
 *   the rate limit, known hosts or not (429 + Retry-After)
 *   no such site (404)
 *   a host the connection's certificate is not for (421)
 *   a site with client-auth whose certificate the connection's handshake
 *     did not verify for that very site (421)
 *   CONNECT, which we do not proxy (405 + Allow)
 *   a body over the limit (413)
 *   the path, normalised (path.h): one that does not normalise, or that
 *     reaches a path block with replace-path only through a decoded %2F
 *     or a dropped ;parameter (400); the longest path block it is under
 *     names the backend, else the site's; replace-path rewrites the target
 *
 *   allow and deny, the path block's (else the site's), on the client's
 *     address (403: nothing upstream is touched)
 *
 * and either fills in the rest of the upstream request (with request-header's
 * fields, and response-header's and hide-response-header's for the
 * response) and names the site,
 * or says what to answer: a status, one extra field, a body (HTTP-01
 * only), and whether an HTTP/1.1 connection must close after it.
 * request_start() then starts the exchange (503 if it cannot).  Every
 * policy between a parsed request and its upstream belongs here, once.
 */
#ifndef PORTCULLIS_REQUEST_H
#define PORTCULLIS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "config.h"
#include "http1.h"
#include "proxy.h"

struct gen;
struct ratelimit;
struct tls_conn;

/* What a connection knows, the same for each of its requests. */
struct request_conn {
	size_t			 li;		/* its listener */
	bool			 tls;		/* false: the plain port */
	const struct gen	*gen;		/* its TLS session's generation */
	uint64_t		 cert_id;	/* the certificate it was given */
	/* The client-auth site its handshake verified a certificate for
	   (tls_conn_auth_id; 0: none), and what it verified. */
	uint64_t		 auth_id;
	const struct headers_client_cert *client_cert;
	const struct sockaddr	*peer;		/* the rate limit's key */
	const char		*client_ip;
	struct ratelimit	*rl;		/* NULL: no rate limit */
	/* For upstream-proxy-protocol only: the socket (the address the
	   client reached) and its TLS session (NULL on the plain port). */
	int			 fd;
	struct tls_conn		*session;
};

/* Room for the value of the one extra field of an answer (a Location). */
#define REQUEST_VALUE_MAX	(CONFIG_HOST_MAX + 2048)

/* Room for why an access rule refused a request ("deny RANGE"). */
#define REQUEST_WHY_MAX		(CIDR_TEXT_MAX + 16)

/* A response of our own. */
struct request_answer {
	int		 status;
	bool		 close;		/* HTTP/1.1: the connection ends */
	const char	*name;		/* "Retry-After", "Allow", "Location"
					   or NULL */
	char		 value[REQUEST_VALUE_MAX];
	/* The body (text/plain), or NULL: a short one of the status.  Only
	   an HTTP-01 answer has one, on the plain port (HTTP/1.1); it
	   points into the generation the request was routed by. */
	const char	*body;
	size_t		 body_len;
	/* A 403 of allow/deny: which rule ("deny 10.0.0.0/8", "not in
	   allow"), for the access log; else "". */
	char		 why[REQUEST_WHY_MAX];
	/* The site's row of the statistics (config_site.metrics_slot), or
	   SHM_SITE_UNKNOWN (0) when no site matched; whatever the answer,
	   set by request_admit(). */
	unsigned	 site_slot;
};

/*
 * Decide about the request pr (its method, host, path, framing, length
 * and websocket filled in by the protocol) on connection conn, routed by
 * generation g.  target is the request target as sent (the rate limit's
 * log line says it); body_seen the body bytes already received (HTTP/2
 * may have some before the request is complete).
 *
 * Returns the site, with the rest of pr filled in (the backend and the
 * site's name, the target replace-path made, the client's address, the
 * listener's port, the PROXY header of a backend that sends one); or NULL, with ans saying what to answer.  Either way
 * the caller calls request_release(pr) once it is done with pr (after
 * request_start(), or the answer).
 */
const struct config_site *request_admit(const struct request_conn *conn,
	    const struct gen *g, struct proxy_request *pr,
	    struct http1_slice target, uint64_t body_seen,
	    struct request_answer *ans);

/*
 * Start the exchange for an admitted request: NULL (and ans says 503) if
 * it cannot.  The caller keeps the generation it was routed by alive
 * until ops->done().
 */
struct exchange *request_start(struct proxy_ctx *ctx,
	    const struct proxy_request *pr, const struct proxy_ops *ops,
	    void *fe, struct request_answer *ans);

/* Free what request_admit() allocated for pr (the target it made, the
   PROXY header). */
void	 request_release(struct proxy_request *pr);

/*
 * Whether a request body of seen bytes so far is over generation g's
 * limit (logged once it is).  The caller answers 413 if nothing went back
 * yet, else cuts the request short.
 */
bool	 request_body_over(const struct gen *g, uint64_t seen,
	    const char *client_ip);

#endif /* PORTCULLIS_REQUEST_H */
