/*
 * proxy.h - one exchange with an upstream: a request forwarded over
 * HTTP/1.1 and its response read back, both streamed with backpressure.
 *
 * The client side (h1conn.c or h2conn.c, through request.c) is the
 * "frontend": it starts the exchange with a parsed, admitted request,
 * pushes the request body (decoded) with proxy_body(), and receives the
 * response through its proxy_ops callbacks.  The exchange parses the upstream's response as
 * strictly as a request and never hands the frontend anything malformed.
 *
 * Callbacks are the only way back into the frontend.  A callback must not
 * call proxy_*() on the exchange that called it; it signals through its
 * return value instead.  After done() the exchange no longer exists.
 */
#ifndef PORTCULLIS_PROXY_H
#define PORTCULLIS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "headers.h"
#include "http1.h"

#define PROXY_BUF	16384	/* each direction; also the response head limit */
/* Room for any request head headers_request_head() builds: the largest
   max-header-size (64 KiB) and the fields the proxy adds. */
#define PROXY_HEAD_MAX	(128 * 1024)

struct ev_loop;
struct exchange;
struct upstate;
struct upstream_pool;
struct uptls_backend;
struct uptls_cache;
struct uptls_conn;

/*
 * What exchanges run with: the event loop, the pool of idle upstream
 * connections, the TLS sessions to resume (NULL: none kept), and the
 * count of upstream sockets they hold open (the worker holds its
 * descriptor reserve against it).  The worker owns one for all its
 * connections; a test makes its own.
 */
struct proxy_ctx {
	struct ev_loop		*loop;
	struct upstream_pool	*pool;
	struct uptls_cache	*tls_cache;
	unsigned		 nfds;
	/* The shared upstream table (health, in flight, round-robin), or
	   NULL: every upstream up, nothing counted (tests). */
	struct upstate		*ups;
};

/* What the frontend knows about the request (valid during proxy_start). */
struct proxy_request {
	struct headers_request	 h;
	/* The head headers_request_head() makes of h, when the caller has
	   it already (h2 checks it), or NULL. */
	const struct buf	*head;
	/* Where it goes, chosen by admission (request.c), all in the
	   generation the request was routed by: the backend (address,
	   timeouts, keep-alive), its TLS (uptls.h; NULL: plain HTTP, and
	   required for upstream-scheme "https") and the site's name, for
	   log lines. */
	const struct config_backend *be;
	const struct uptls_backend *tls;
	const char		*site;
	const char		*prefix;	/* its path block's, or NULL */
	/* The client (ip-hash; the exchange keeps a copy), and the
	   upstream its sticky cookie names (an index into be->ups), or -1. */
	const struct sockaddr	*peer;
	int			 sticky;
	/* Where peer and h.client_ip point when real-ip-header named the
	   client (request.c); else they point at the connection's. */
	struct sockaddr_storage	 real_peer;
	char			 real_ip[INET6_ADDRSTRLEN];
	/* What h.path points into when admission made the target itself
	   (replace-path), or NULL: request_release() frees it. */
	char			*target;
};

/* The response head, valid only during the head() callback. */
struct proxy_response {
	int			 status;
	struct http1_slice	 reason;
	const struct http1_header *fields;
	size_t			 nfields;
	enum http1_body		 body;		/* the upstream's framing */
	uint64_t		 content_length;
	bool			 websocket;	/* 101 for a WebSocket upgrade */
};

/* How an exchange ended, for done(). */
enum proxy_result {
	PROXY_OK = 0,		/* the whole response was delivered */
	PROXY_BAD_GATEWAY,	/* 502, before any head: send an error */
	PROXY_TIMEOUT,		/* 504, before any head: send an error */
	PROXY_UNAVAILABLE,	/* 503: every upstream is down */
	PROXY_BROKEN,		/* after the head: the response is cut */
	PROXY_UPGRADED,		/* the upstream socket went to upgrade() */
};

struct proxy_ops {
	/* The response head.  Return -1 to refuse it (done() follows). */
	int	(*head)(void *fe, const struct proxy_response *r);
	/* Body bytes; return how many were taken.  Fewer: call proxy_resume()
	   once more fit. */
	size_t	(*body)(void *fe, const char *data, size_t len);
	void	(*done)(void *fe, enum proxy_result result);
	/* More request body fits now (after proxy_body() took less). */
	void	(*want_body)(void *fe);
	/* 101: the upstream socket, its TLS session (NULL: plain; it may
	   hold more bytes), and bytes it sent after the head. */
	void	(*upgrade)(void *fe, int fd, struct uptls_conn *tls,
		    const char *extra, size_t len);
};

/*
 * Start an exchange with an upstream of req->be (whose generation the
 * frontend keeps alive until done()), chosen by its load-balance
 * (balance.h).  NULL if out of memory.  Failures arrive later, through
 * done(); before that, the request goes to the next upstream (at most
 * once to each) when one could not be reached: a connect error or
 * timeout, which sent nothing; a pooled connection closed before any
 * byte of an answer, or a new one reset before the response head, only
 * for a request that can be sent again (http1_replayable).  Never once
 * a byte of the response came.  Connect errors and timeouts, a reset
 * before the head, a malformed head and no answer within request-timeout
 * count against the upstream's passive health (upstate.h).
 */
struct exchange *proxy_start(struct proxy_ctx *ctx,
	    const struct proxy_request *req, const struct proxy_ops *ops,
	    void *fe);

/* Request body bytes, decoded; returns how many were taken. */
size_t	 proxy_body(struct exchange *ex, const char *data, size_t len);
/* The request body is complete. */
void	 proxy_body_end(struct exchange *ex);
/* The frontend can take response body again. */
void	 proxy_resume(struct exchange *ex);
/* The frontend is gone: end now, no callbacks; the upstream is closed. */
void	 proxy_abort(struct exchange *ex);

/* The status a frontend answers for a result before any head: 502, 504,
   503; 0 for the others. */
int	 proxy_error_status(enum proxy_result res);

/* For the access log: "127.0.0.1:8080" (the last tried), "" if none. */
const char *proxy_upstream_name(const struct exchange *ex);
/* For the access log: what failed, "" if nothing did ("127.0.0.1:8080
   connect: Connection refused", "all upstreams down"). */
const char *proxy_upstream_error(const struct exchange *ex);
/* Whether the request was fully sent (else the client must not go on). */
bool	 proxy_request_sent(const struct exchange *ex);

#endif /* PORTCULLIS_PROXY_H */
