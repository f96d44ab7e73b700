/*
 * headers.h - the heads portcullis writes: the request it sends upstream
 * and the response it sends the client.
 *
 * Pure functions from parsed fields to bytes in a buffer.  The proxy frames
 * every message itself: Content-Length and Transfer-Encoding are never
 * copied, hop-by-hop fields (and every field the Connection header names)
 * are dropped, and the forwarding fields are set from what the proxy
 * knows, never from what the client claimed.
 */
#ifndef PORTCULLIS_HEADERS_H
#define PORTCULLIS_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http1.h"

enum headers_framing {
	HEADERS_FRAME_NONE,	/* no body, and no Content-Length sent */
	HEADERS_FRAME_LENGTH,	/* Content-Length: content_length */
	HEADERS_FRAME_CHUNKED,	/* Transfer-Encoding: chunked */
	HEADERS_FRAME_CLOSE,	/* (responses) until the connection closes */
	HEADERS_FRAME_PASS,	/* (responses to HEAD, 304) no body, but the
				   upstream's Content-Length passes unchanged */
};

/*
 * A TLS client certificate, as the proxy tells the upstream of a site
 * with client-auth (issue 18): X-Client-Verify is verify ("SUCCESS",
 * "FAILED:reason" or "NONE"); X-Client-Subject, X-Client-Issuer,
 * X-Client-Serial and X-Client-Cert-Fingerprint follow only with
 * "SUCCESS" (an unverified certificate says nothing about the client).
 * Every value is printable ASCII (DNs escaped: headers_escape_value).
 */
#define HEADERS_CERT_VALUE_MAX	4096	/* an escaped DN, NUL included */
struct headers_client_cert {
	char			 verify[64];
	char			 subject[HEADERS_CERT_VALUE_MAX];
	char			 issuer[HEADERS_CERT_VALUE_MAX];
	char			 serial[64];		/* hex, upper case */
	char			 fingerprint[65];	/* SHA-256, lower hex */
};

/*
 * A request as the proxy forwards it: what the frontend parsed (HTTP/1.1)
 * or translated (HTTP/2, h2req.c), and the three facts only the proxy
 * knows (the client's address, TLS, the listener's port).
 */
struct headers_request {
	enum http1_method	 method_id;	/* not written: method is */
	struct http1_slice	 method;
	struct http1_slice	 path;		/* origin-form path and query */
	struct http1_slice	 host;		/* host[:port]: becomes Host */
	const struct http1_header *fields;
	size_t			 nfields;
	enum headers_framing	 framing;	/* NONE, LENGTH or CHUNKED */
	uint64_t		 content_length;
	bool			 websocket;	/* keep Upgrade: websocket */
	const char		*client_ip;	/* X-Real-IP, X-Forwarded-For */
	bool			 tls;		/* X-Forwarded-Proto https/http */
	uint16_t		 port;		/* X-Forwarded-Port: the
						   listener's */
	/* A site with client-auth: what its connection's handshake
	   verified (X-Client-*); NULL: none of those fields. */
	const struct headers_client_cert *client_cert;
};

struct headers_response {
	int			 status;
	struct http1_slice	 reason;	/* empty: the standard phrase */
	const struct http1_header *fields;
	size_t			 nfields;
	enum headers_framing	 framing;
	uint64_t		 content_length;
	bool			 close;		/* send Connection: close */
	bool			 websocket;	/* 101 Switching Protocols */
};

/* The upstream request head; 0, or -1 if it does not fit in out. */
int	 headers_request_head(struct buf *out, const struct headers_request *r);

/* The client response head; 0, or -1 if it does not fit in out. */
int	 headers_response_head(struct buf *out, const struct headers_response *r);

/*
 * Whether field `name` must not be forwarded: hop-by-hop (Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade),
 * named by a Connection field among fields[0..n), or a name with an
 * underscore (some servers read "X_Forwarded_For" as X-Forwarded-For).
 */
bool	 headers_hop_by_hop(const char *name, size_t len,
	    const struct http1_header *fields, size_t n);
/*
 * The index of the first Connection field among fields[0..n), n if none.
 * Only Connection fields matter to the above: with k from here, asking
 * about fields + k, n - k gives the same answers without a scan for them
 * each time.
 */
size_t	 headers_first_connection(const struct http1_header *fields,
	    size_t n);

/*
 * Whether request field h goes upstream as it is: not hop-by-hop, not one
 * the proxy sets itself (Host, framing, X-Real-IP, X-Forwarded-For,
 * -Proto, -Host and -Port, in that order after the forwarded fields), and
 * not one an upstream would take for a proxy's word (every X-Forwarded-*,
 * X-Original-*, X-Real-*, X-SSL-* field, Forwarded, True-Client-IP,
 * Client-IP, the X-Client-* of client certificates ...: the list is in
 * headers.c and doc/portcullis.8).
 */
bool	 headers_request_forwards(const struct http1_header *h,
	    const struct http1_header *fields, size_t n);

/*
 * Escape len bytes of in (a DN in RFC 4514 form, which may hold any
 * byte) into out (outsz bytes, NUL included) as a safe field value:
 * printable ASCII stays, every other byte (controls, DEL, bytes of
 * UTF-8 sequences) becomes RFC 4514's hex escape, a backslash and two
 * upper-case hex digits, so the value is still a DN in RFC 4514 syntax
 * and means the same.  Leading and trailing spaces are escaped too (a
 * field value's are not kept).  The length written, or -1 when it does
 * not fit (out is then "").
 */
int	 headers_escape_value(const unsigned char *in, size_t len, char *out,
	    size_t outsz);

/* The three digits of a status in 0..999 (no printf on the hot path). */
void	 headers_status_digits(char out[3], int status);

/* The standard reason phrase of a status ("" if unknown). */
const char *headers_reason(int status);

#endif /* PORTCULLIS_HEADERS_H */
