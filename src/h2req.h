/*
 * h2req.h - an HTTP/2 request's header block, turned into the request
 * the proxy forwards over HTTP/1.1.
 *
 * Pure: fields go in one at a time as nghttp2 decodes them (nghttp2's own
 * HTTP messaging checks stay on; these are ours, on top), and the result
 * is a headers_request pointing into the h2req's own storage.  The rules are
 * those of our HTTP/1.1 parser, so that nothing an HTTP/1.1 client could
 * not send gets through HTTP/2: lower-case token names, values without
 * CR, LF, NUL or other controls and without surrounding whitespace, no
 * connection-specific fields, pseudo-fields first and once each,
 * :authority (or else host) a valid host[:port], :path origin-form (or
 * "*" for OPTIONS), :scheme https.  Cookie crumbs are joined with "; ".
 *
 * h2req_check() proves the point at run time: the HTTP/1.1 head built from
 * the request re-parses with http1_parse_request() as exactly one request
 * carrying the same method, target, host, framing and fields.
 */
#ifndef PORTCULLIS_H2REQ_H
#define PORTCULLIS_H2REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "headers.h"
#include "http1.h"

/* Fields the proxy adds to a forwarded request (Host, X-Real-IP,
   X-Forwarded-For, -Proto, -Host, -Port, framing or WebSocket's two, and
   the five X-Client-* of a client-auth site): kept free of the limit. */
#define H2REQ_ADDED_FIELDS	13
#define H2REQ_MAX_FIELDS	(HTTP1_MAX_HEADERS - H2REQ_ADDED_FIELDS)

struct h2req_span {
	uint32_t	 off;
	uint32_t	 len;
};

struct h2req_field {
	struct h2req_span name;
	struct h2req_span value;
	bool		 cookie;
};

struct h2req {
	size_t			 max_bytes;	/* names + values: 431 */
	size_t			 max_fields;	/* regular fields: 431 */
	int			 status;	/* the first error, else 0 */

	char			*store;		/* every name and value */
	size_t			 used, cap;
	size_t			 bytes;		/* counted against max_bytes */
	size_t			 nf;
	size_t			 ncookies;

	bool			 regular;	/* a regular field was seen */
	bool			 has_method, has_scheme, has_path, has_authority;
	bool			 has_host, has_cl, has_protocol;
	char			 ws_key[25];	/* Sec-WebSocket-Key to send */
	struct h2req_span	 method, path, authority, host;
	uint64_t		 content_length;

	/* Last: the arrays are written before they are read, and
	   h2req_init() clears only what comes before them. */
	struct h2req_field	 f[H2REQ_MAX_FIELDS + 1];
	/* The result, after h2req_finish(). */
	struct http1_header	 out[H2REQ_MAX_FIELDS + 1];
};

/* max_bytes, max_fields: the HTTP/1.1 limits (max-header-size ...). */
void	 h2req_init(struct h2req *r, size_t max_bytes, size_t max_fields);
void	 h2req_free(struct h2req *r);
/* Like h2req_init() on a used one, keeping its storage for the next. */
void	 h2req_reuse(struct h2req *r, size_t max_bytes, size_t max_fields);

/*
 * One decoded field.  Returns 0, or the status to answer the request with
 * (400 malformed, 431 too large, 500 out of memory); after an error the
 * rest of the block is ignored and every call returns that status.
 */
int	 h2req_field(struct h2req *r, const char *name, size_t nlen,
	    const char *value, size_t vlen);

/*
 * Extended CONNECT (RFC 8441, :protocol websocket) becomes a GET with
 * Upgrade: websocket; HTTP/1.1 needs a Sec-WebSocket-Key the HTTP/2
 * client does not send: key24 is one (24 base64 characters of 16 random
 * bytes), to be given before h2req_finish().
 */
bool	 h2req_wants_key(const struct h2req *r);
void	 h2req_set_key(struct h2req *r, const char *key24);

/*
 * The block is complete; end_stream: no DATA follows.  Returns 0 with pr
 * filled (pointing into r; client_ip and tls are the caller's to set), or
 * an error status as h2req_field().  A CONNECT request comes back with
 * method_id HTTP1_METHOD_CONNECT and an empty path, for the caller to
 * refuse.
 */
int	 h2req_finish(struct h2req *r, bool end_stream,
	    struct headers_request *pr);

/*
 * Build the upstream head of pr into scratch (emptied first) and parse it
 * back.  0 if it is one request identical to pr, else -1.
 */
int	 h2req_check(const struct headers_request *pr, struct buf *scratch);

#endif /* PORTCULLIS_H2REQ_H */
