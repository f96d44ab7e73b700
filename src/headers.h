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
 * What the configuration changes in a head (response-header,
 * hide-response-header, request-header of a site or a path block): the
 * fields add[0..nadd) are set, replacing any field of one of their names
 * the message had; the fields named in hide[0..nhide) (their values
 * unused) are removed.  Both lists empty (or no edit at all): the head
 * as without them.  Names and values are as headers_option_check()
 * accepts them.
 */
struct headers_edit {
	const struct http1_header *add;
	size_t			 nadd;
	const struct http1_header *hide;
	size_t			 nhide;
};

/* The most fields one list of an edit holds (config.c's limit). */
#define HEADERS_EDIT_MAX	32

/* Which option a configured field is for (headers_option_check). */
enum headers_option {
	HEADERS_OPT_RESPONSE,		/* response-header */
	HEADERS_OPT_HIDE,		/* hide-response-header (no value) */
	HEADERS_OPT_REQUEST,		/* request-header */
};

/*
 * Whether a configured field may be used by option opt: its name a token
 * of at most 128 bytes that the option may set or remove, its value (not
 * for HEADERS_OPT_HIDE) 1..2048 bytes of visible ASCII, spaces and tabs,
 * no leading or trailing blank.  NULL, or why not.
 * Refused everywhere: the framing and hop-by-hop fields (Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Upgrade) and names with an underscore; in responses also
 * Sec-WebSocket-* (a tunnel's handshake), and Set-Cookie for
 * response-header (one field per cookie: replacing them all would lose
 * the upstream's and a sticky-cookie's); in requests every field the
 * proxy sets or never forwards (Host, Expect, and what
 * headers_request_forwards() drops: X-Forwarded-*, X-Real-*,
 * Forwarded ...).  Pure: config.c and the image decoder ask it.
 */
const char *headers_option_check(enum headers_option opt, const char *name,
	    size_t nlen, const char *value, size_t vlen);

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
	/* request-header: its fields after the forwarded ones, before
	   X-Real-IP, the client's of those names dropped; NULL: none. */
	const struct headers_edit *edit;
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
	/* response-header and hide-response-header; NULL: none. */
	const struct headers_edit *edit;
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
 * Whether the upstream's response field h (one of fields[0..n), conn
 * from headers_first_connection()) goes to the client: not hop-by-hop,
 * not Content-Length unless keep_length (a HEAD or 304 answer), neither
 * hidden nor replaced by edit (NULL: none).  The fields of edit->add
 * follow those that pass.  Both renderers (headers_response_head() and
 * h2conn.c) decide by this, so HTTP/1.1 and HTTP/2 send the same fields.
 */
bool	 headers_response_passes(const struct http1_header *h,
	    const struct http1_header *fields, size_t n, size_t conn,
	    bool keep_length, const struct headers_edit *edit);

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

/*
 * Whether the client's field h goes upstream: forwarded by
 * headers_request_forwards(), and not replaced by a field of edit->add
 * (request-header; edit NULL: none): what headers_request_head() writes
 * of the client's fields.
 */
bool	 headers_request_keeps(const struct http1_header *h,
	    const struct http1_header *fields, size_t n,
	    const struct headers_edit *edit);

/* The three digits of a status in 0..999 (no printf on the hot path). */
void	 headers_status_digits(char out[3], int status);

/* The standard reason phrase of a status ("" if unknown). */
const char *headers_reason(int status);

#endif /* PORTCULLIS_HEADERS_H */
