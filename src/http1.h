/*
 * http1.h - strict, incremental HTTP/1.1 message parser (RFC 9110/9112).
 *
 * Pure functions over byte buffers: no I/O, no allocation, no global state,
 * no locale.  Everything a parse returns points into the caller's buffer,
 * which must stay unchanged while the result is used.
 *
 * The parser is deliberately stricter than the RFCs allow a recipient to be:
 * every ambiguity a request-smuggling attack relies on (bare LF, obs-fold,
 * whitespace before a colon, TE together with CL, duplicate CL, chunk sizes
 * with signs or spaces ...) is an error, never a guess.
 */
#ifndef PORTCULLIS_HTTP1_H
#define PORTCULLIS_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard upper bound of header fields a message may carry (array size). */
#define HTTP1_MAX_HEADERS 128

/* Return values.  Errors are negative; see http1_error_status(). */
enum http1_result {
	HTTP1_DONE = 1,		/* a complete head was parsed */
	HTTP1_INCOMPLETE = 0,	/* valid so far, feed more bytes */

	HTTP1_E_REQUEST_LINE = -1,	/* malformed request line */
	HTTP1_E_METHOD = -2,		/* method is not a token */
	HTTP1_E_TARGET = -3,		/* invalid request-target */
	HTTP1_E_VERSION = -4,		/* not HTTP/1.0 or HTTP/1.1 (505) */
	HTTP1_E_LINE_TOO_LONG = -5,	/* request line over the limit (414) */
	HTTP1_E_HEAD_TOO_LARGE = -6,	/* head over the limit (431) */
	HTTP1_E_TOO_MANY_HEADERS = -7,	/* more fields than the limit (431) */
	HTTP1_E_BARE_LF = -8,		/* LF not preceded by CR */
	HTTP1_E_BARE_CR = -9,		/* CR not followed by LF */
	HTTP1_E_HEADER_NAME = -10,	/* empty or non-token field name */
	HTTP1_E_SPACE_BEFORE_COLON = -11,
	HTTP1_E_OBS_FOLD = -12,		/* line folding */
	HTTP1_E_HEADER_VALUE = -13,	/* NUL, CTL or other invalid byte */
	HTTP1_E_HOST_MISSING = -14,	/* HTTP/1.1 request without Host */
	HTTP1_E_HOST_DUPLICATE = -15,
	HTTP1_E_HOST_INVALID = -16,	/* Host or authority not host[:port] */
	HTTP1_E_CL_INVALID = -17,	/* Content-Length not 1*DIGIT or overflows */
	HTTP1_E_CL_DUPLICATE = -18,	/* more than one Content-Length */
	HTTP1_E_TE_AND_CL = -19,	/* Transfer-Encoding together with CL */
	HTTP1_E_TE_UNSUPPORTED = -20,	/* anything but a single final chunked */
	HTTP1_E_TE_HTTP10 = -21,	/* Transfer-Encoding in an HTTP/1.0 message */
	HTTP1_E_EXPECT = -22,		/* Expect other than 100-continue (417) */
	HTTP1_E_STATUS_LINE = -23,	/* malformed response status line */
	HTTP1_E_CHUNK_SIZE = -24,	/* sign, space, 0x, non-hex, overflow */
	HTTP1_E_CHUNK_EXT = -25,	/* malformed or oversized chunk extension */
	HTTP1_E_CHUNK_FRAMING = -26,	/* missing CRLF after chunk data */
	HTTP1_E_TRAILER = -27,		/* malformed or oversized trailer section */
};

/* Limits a parse enforces; http1_limits_default() gives sane values. */
struct http1_limits {
	size_t max_request_line;	/* request or status line incl. CRLF: 414 */
	size_t max_head;		/* start line + all fields incl. final CRLF: 431 */
	size_t max_headers;		/* number of fields (<= HTTP1_MAX_HEADERS): 431 */
};

/* A span of the caller's buffer. */
struct http1_slice {
	const char *p;
	size_t len;
};

struct http1_header {
	struct http1_slice name;	/* as sent (token) */
	struct http1_slice value;	/* leading/trailing OWS removed */
};

enum http1_method {
	HTTP1_METHOD_OTHER = 0,	/* a valid token we do not know */
	HTTP1_METHOD_GET,
	HTTP1_METHOD_HEAD,
	HTTP1_METHOD_POST,
	HTTP1_METHOD_PUT,
	HTTP1_METHOD_DELETE,
	HTTP1_METHOD_CONNECT,
	HTTP1_METHOD_OPTIONS,
	HTTP1_METHOD_TRACE,
	HTTP1_METHOD_PATCH,
};

enum http1_target_form {
	HTTP1_TARGET_ORIGIN,	/* "/path?query" */
	HTTP1_TARGET_ABSOLUTE,	/* "http://host[:port]/path?query" */
	HTTP1_TARGET_AUTHORITY,	/* "host:port" (CONNECT only) */
	HTTP1_TARGET_ASTERISK,	/* "*" (OPTIONS only) */
};

/* How the message body is framed (RFC 9112 section 6.3). */
enum http1_body {
	HTTP1_BODY_NONE,	/* no body */
	HTTP1_BODY_LENGTH,	/* content_length bytes */
	HTTP1_BODY_CHUNKED,	/* Transfer-Encoding: chunked */
	HTTP1_BODY_CLOSE,	/* until the connection closes (responses only) */
};

struct http1_request {
	enum http1_method method;
	struct http1_slice method_str;
	enum http1_target_form target_form;
	struct http1_slice target;	/* the request-target as sent */
	/*
	 * Path and query: the target itself for origin-form, the part after
	 * the authority for absolute-form ("/" when that part is empty; then
	 * path.p points at a static "/"), empty for authority/asterisk form.
	 */
	struct http1_slice path;
	int minor_version;		/* 0 or 1 */
	struct http1_header headers[HTTP1_MAX_HEADERS];
	size_t nheaders;

	/*
	 * The host the request is for, "host[:port]" as sent: the authority of
	 * an absolute-form target when there is one (it wins over Host, RFC 9112
	 * 3.2.2), else the Host field.  Empty only for an HTTP/1.0 request that
	 * sent neither.  Validated: reg-name chars or an IP literal, optional
	 * port of 1-5 digits <= 65535.
	 */
	struct http1_slice host;
	enum http1_body body;		/* NONE, LENGTH or CHUNKED */
	uint64_t content_length;	/* for HTTP1_BODY_LENGTH */
	bool keep_alive;		/* version default adjusted by Connection */
	bool expect_continue;		/* Expect: 100-continue */
	bool upgrade_websocket;		/* Upgrade: websocket + Connection: upgrade */
	size_t head_len;		/* bytes of the head incl. final CRLF */
};

struct http1_response {
	int minor_version;		/* 0 or 1 */
	int status;			/* 100..599 */
	struct http1_slice reason;	/* may be empty */
	struct http1_header headers[HTTP1_MAX_HEADERS];
	size_t nheaders;
	enum http1_body body;		/* NONE, LENGTH, CHUNKED or CLOSE */
	uint64_t content_length;
	bool keep_alive;		/* the upstream connection may be reused */
	size_t head_len;
};

/*
 * Incremental scan state for one message head.  Zero it (or call
 * http1_parser_init) before the first byte of each message; the parser only
 * re-examines bytes it has not seen, so feeding a head one byte at a time
 * costs O(n) in total.
 */
struct http1_parser {
	size_t scanned;		/* bytes already checked for line endings */
	size_t line_start;	/* offset of the line being scanned */
	size_t skip;		/* leading empty lines skipped (requests) */
	size_t nfields;		/* field lines seen (max_headers, early) */
	bool first_line_done;
	bool method_done;	/* the request line's first SP was seen */
};

void http1_parser_init(struct http1_parser *p);
void http1_limits_default(struct http1_limits *lim);

/*
 * Parse a request head.  buf[0..len) holds every byte received so far for
 * this message, starting with its first byte (pass the whole accumulated
 * buffer on each call, with the same parser state).  Up to 2 empty lines
 * (CRLF) before the request line are skipped (RFC 9112 2.2).
 *
 * Returns HTTP1_INCOMPLETE, HTTP1_DONE (req filled, req->head_len bytes
 * consumed; bytes after that belong to the body or the next request) or a
 * negative http1_result.  Errors are reported as early as they can be seen:
 * an over-long request line fails as soon as the limit is passed without a
 * line end, a bare LF as soon as it arrives.
 */
int http1_parse_request(struct http1_parser *p, const char *buf, size_t len,
    const struct http1_limits *lim, struct http1_request *req);

/*
 * Parse a response head from an upstream.  request_method is the method of
 * the request it answers (HEAD responses, and 1xx/204/304, have no body).
 * Same calling convention as http1_parse_request; no leading empty lines.
 */
int http1_parse_response(struct http1_parser *p, const char *buf, size_t len,
    const struct http1_limits *lim, enum http1_method request_method,
    struct http1_response *resp);

/* Case-insensitive lookup of the first field called name; NULL if absent. */
const struct http1_header *http1_find_header(const struct http1_header *h,
    size_t n, const char *name);

/* A method name as parsed requests carry it (case-sensitive). */
enum http1_method http1_method_lookup(const char *s, size_t n);

/*
 * Whether a request may be sent again, unasked, after the connection it
 * went out on closed before any byte of an answer: only GET, HEAD and
 * OPTIONS (safe, RFC 9110 9.2.1), and only without a body (has_body: a
 * Content-Length, even 0, or Transfer-Encoding).  PUT and DELETE are
 * idempotent (9.2.2) but change state, and an upstream may not honour
 * that; POST, PATCH, CONNECT, TRACE and methods we do not know are never
 * sent twice (nginx stopped that in 1.9.13).
 */
bool http1_replayable(enum http1_method method, bool has_body);

/* A non-empty token (RFC 9110 5.6.2), as field names and methods are. */
bool http1_is_token(const char *s, size_t n);

/*
 * A field value the parser would pass through unchanged: field-content
 * octets (VCHAR, obs-text, SP, HTAB), no leading or trailing whitespace.
 */
bool http1_is_field_value(const char *s, size_t n);

/* host [":" port], as a Host field or an authority must be. */
bool http1_is_host(const char *s, size_t n);

/* Incremental decoder for a chunked body (RFC 9112 section 7.1). */
struct http1_chunked {
	int state;
	uint64_t remaining;	/* bytes left in the current chunk */
	size_t line_len;	/* bytes of the current size/ext line */
	size_t trailer_len;	/* bytes of the trailer section so far */
	size_t ndigits;
};

#define HTTP1_CHUNK_LINE_MAX	1024	/* size + extensions, incl. CRLF */
#define HTTP1_TRAILER_MAX	8192	/* whole trailer section */

enum http1_chunk_result {
	HTTP1_CHUNK_MORE = 0,	/* all input consumed, need more */
	HTTP1_CHUNK_DATA = 1,	/* (*data, *data_len) is body data */
	HTTP1_CHUNK_END = 2,	/* last chunk and trailers done */
	/* or a negative http1_result (HTTP1_E_CHUNK_*, HTTP1_E_TRAILER) */
};

void http1_chunked_init(struct http1_chunked *c);

/*
 * Decode from in[0..len).  *consumed is set to the bytes used.  On
 * HTTP1_CHUNK_DATA, (*data, *data_len) is a span inside in[] (the bytes up to
 * its end are counted in *consumed); call again with the rest of the input.
 * On HTTP1_CHUNK_END, bytes after *consumed belong to the next message.
 * Trailer fields are validated like header fields and then discarded.
 */
int http1_chunked_decode(struct http1_chunked *c, const char *in, size_t len,
    size_t *consumed, const char **data, size_t *data_len);

/* The status code to answer a request parse error with (400, 414, 417, 431, 505). */
int http1_error_status(int err);

/* A short, constant description of a result code, for logs. */
const char *http1_strerror(int err);

#endif /* PORTCULLIS_HTTP1_H */
