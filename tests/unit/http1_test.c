/*
 * http1_test.c - golden cases for the HTTP/1.1 parser: the valid, the
 * boundary and the hostile.
 *
 * Every input goes through req_parse()/resp_parse()/chunk_parse(), which
 * parse it at once and again one byte at a time (from an exact-size heap
 * copy, so that ASan sees any read past the bytes received) and fail the
 * test when the two disagree.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

/* A string literal with its length, NULs included. */
#define S(lit)		(lit), (sizeof(lit) - 1)

#define GET11		"GET / HTTP/1.1\r\nHost: example.com\r\n"
#define POST11		"POST /up HTTP/1.1\r\nHost: example.com\r\n"
#define RESP11		"HTTP/1.1 200 OK\r\n"

struct test_case {
	const char	*name;
	const char	*in;
	size_t		 len;
	int		 want;
};

#define CASE(name, lit, want)	{ (name), (lit), sizeof(lit) - 1, (want) }

/*
 * Small builders (no sprintf: banned project-wide).
 */

struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void
sb_init(struct sbuf *b, size_t cap)
{
	b->p = malloc(cap);
	assert_non_null(b->p);
	b->len = 0;
	b->cap = cap;
}

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	assert_true(b->len + n <= b->cap);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_fill(struct sbuf *b, char c, size_t n)
{
	assert_true(b->len + n <= b->cap);
	memset(b->p + b->len, c, n);
	b->len += n;
}

static void
sb_num(struct sbuf *b, size_t v)
{
	char	tmp[24];
	size_t	i = sizeof(tmp);

	do {
		tmp[--i] = '0' + v % 10;
		v /= 10;
	} while (v > 0);
	sb_add(b, tmp + i, sizeof(tmp) - i);
}

/*
 * Comparing results of two parses of the same bytes in different buffers.
 */

/* Slices must sit at the same offset, or be the same static string. */
static void
same_slice(struct http1_slice a, const char *abase, struct http1_slice b,
    const char *bbase, size_t n)
{
	assert_int_equal(a.len, b.len);
	if (a.p >= abase && a.p <= abase + n)
		assert_int_equal(a.p - abase, b.p - bbase);
	else
		assert_ptr_equal(a.p, b.p);
}

static void
same_headers(const struct http1_header *a, const char *abase,
    const struct http1_header *b, const char *bbase, size_t nh, size_t n)
{
	size_t	i;

	for (i = 0; i < nh; i++) {
		same_slice(a[i].name, abase, b[i].name, bbase, n);
		same_slice(a[i].value, abase, b[i].value, bbase, n);
	}
}

static void
same_req(const struct http1_request *a, const char *abase,
    const struct http1_request *b, const char *bbase, size_t n)
{
	assert_int_equal(a->method, b->method);
	same_slice(a->method_str, abase, b->method_str, bbase, n);
	assert_int_equal(a->target_form, b->target_form);
	same_slice(a->target, abase, b->target, bbase, n);
	same_slice(a->path, abase, b->path, bbase, n);
	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->nheaders, b->nheaders);
	same_headers(a->headers, abase, b->headers, bbase, a->nheaders, n);
	same_slice(a->host, abase, b->host, bbase, n);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->upgrade_websocket, b->upgrade_websocket);
	assert_int_equal(a->head_len, b->head_len);
}

static void
same_resp(const struct http1_response *a, const char *abase,
    const struct http1_response *b, const char *bbase, size_t n)
{
	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->status, b->status);
	same_slice(a->reason, abase, b->reason, bbase, n);
	assert_int_equal(a->nheaders, b->nheaders);
	same_headers(a->headers, abase, b->headers, bbase, a->nheaders, n);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->head_len, b->head_len);
}

static char *
heap_copy(const char *s, size_t n)
{
	char	*p = malloc(n > 0 ? n : 1);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

/*
 * Parse s[0..n) at once; the result points into s.  Then check that the
 * same bytes fed one at a time give the same answer as early, and that a
 * further call after the answer repeats it.
 */
static int
req_parse_lim(const char *s, size_t n, const struct http1_limits *lim,
    struct http1_request *req)
{
	static struct http1_request	 r2;
	struct http1_parser		 p;
	char				*h = heap_copy(s, n);
	size_t				 i;
	int				 rv, rv2 = HTTP1_INCOMPLETE;

	http1_parser_init(&p);
	rv = http1_parse_request(&p, s, n, lim, req);

	http1_parser_init(&p);
	for (i = 0; i <= n; i++) {
		rv2 = http1_parse_request(&p, h, i, lim, &r2);
		if (rv2 != HTTP1_INCOMPLETE)
			break;
	}
	if (rv2 != rv)
		fail_msg("one-shot %d (%s), byte by byte %d (%s) at %zu",
		    rv, http1_strerror(rv), rv2, http1_strerror(rv2), i);
	if (rv == HTTP1_DONE)
		same_req(req, s, &r2, h, n);
	assert_int_equal(http1_parse_request(&p, h, n, lim, &r2), rv);
	if (rv == HTTP1_DONE)
		same_req(req, s, &r2, h, n);
	free(h);
	return rv;
}

static int
req_parse(const char *s, size_t n, struct http1_request *req)
{
	struct http1_limits	lim;

	http1_limits_default(&lim);
	return req_parse_lim(s, n, &lim, req);
}

static int
resp_parse(const char *s, size_t n, enum http1_method m,
    struct http1_response *resp)
{
	static struct http1_response	 r2;
	struct http1_limits		 lim;
	struct http1_parser		 p;
	char				*h = heap_copy(s, n);
	size_t				 i;
	int				 rv, rv2 = HTTP1_INCOMPLETE;

	http1_limits_default(&lim);
	http1_parser_init(&p);
	rv = http1_parse_response(&p, s, n, &lim, m, resp);
	http1_parser_init(&p);
	for (i = 0; i <= n; i++) {
		rv2 = http1_parse_response(&p, h, i, &lim, m, &r2);
		if (rv2 != HTTP1_INCOMPLETE)
			break;
	}
	if (rv2 != rv)
		fail_msg("one-shot %d (%s), byte by byte %d (%s) at %zu",
		    rv, http1_strerror(rv), rv2, http1_strerror(rv2), i);
	if (rv == HTTP1_DONE)
		same_resp(resp, s, &r2, h, n);
	free(h);
	return rv;
}

/*
 * Chunked bodies: decode fed in pieces of at most step bytes, each piece
 * in its own exact-size heap buffer.
 */
struct chunk_out {
	int	 rv;		/* END, MORE or an error */
	char	*data;		/* all data spans, concatenated */
	size_t	 dlen;
	size_t	 used;		/* input consumed up to END */
};

static void
chunk_run(const char *s, size_t n, size_t step, struct chunk_out *o)
{
	struct http1_chunked	 c;
	const char		*d;
	char			*piece;
	size_t			 off = 0, plen, pos, used, dl;
	int			 rv = HTTP1_CHUNK_MORE;

	o->data = malloc(n + 1);
	assert_non_null(o->data);
	o->dlen = 0;
	http1_chunked_init(&c);
	while (off < n && rv == HTTP1_CHUNK_MORE) {
		plen = n - off < step ? n - off : step;
		piece = heap_copy(s + off, plen);
		pos = 0;
		do {
			rv = http1_chunked_decode(&c, piece + pos, plen - pos,
			    &used, &d, &dl);
			assert_true(used <= plen - pos);
			if (rv == HTTP1_CHUNK_DATA) {
				assert_true(dl > 0 && d >= piece + pos &&
				    d + dl == piece + pos + used);
				memcpy(o->data + o->dlen, d, dl);
				o->dlen += dl;
			}
			pos += used;
		} while (rv == HTTP1_CHUNK_DATA);
		free(piece);
		off += pos;
		if (rv == HTTP1_CHUNK_MORE)
			assert_int_equal(pos, plen);
	}
	o->rv = rv == HTTP1_CHUNK_DATA ? HTTP1_CHUNK_MORE : rv;
	o->used = off;
}

/* Decode at once and byte by byte; both must agree.  Caller frees data. */
static int
chunk_parse(const char *s, size_t n, struct chunk_out *o)
{
	struct chunk_out	o1, o3;

	chunk_run(s, n, n > 0 ? n : 1, o);
	chunk_run(s, n, 1, &o1);
	chunk_run(s, n, 3, &o3);
	if (o1.rv != o->rv || o3.rv != o->rv)
		fail_msg("one-shot %d, byte by byte %d, by 3 %d",
		    o->rv, o1.rv, o3.rv);
	assert_int_equal(o1.dlen, o->dlen);
	assert_int_equal(o3.dlen, o->dlen);
	assert_memory_equal(o1.data, o->data, o->dlen);
	assert_memory_equal(o3.data, o->data, o->dlen);
	if (o->rv == HTTP1_CHUNK_END) {
		assert_int_equal(o1.used, o->used);
		assert_int_equal(o3.used, o->used);
	}
	free(o1.data);
	free(o3.data);
	return o->rv;
}

static int
chunk_rv(const char *s, size_t n)
{
	struct chunk_out	o;

	chunk_parse(s, n, &o);
	free(o.data);
	return o.rv;
}

static void
assert_slice(struct http1_slice sl, const char *want)
{
	if (sl.len != strlen(want) || memcmp(sl.p, want, sl.len) != 0)
		fail_msg("slice \"%.*s\", want \"%s\"", (int)sl.len, sl.p,
		    want);
}

static void
run_req_cases(const struct test_case *tc, size_t n)
{
	static struct http1_request	req;
	size_t				i;
	int				rv;

	for (i = 0; i < n; i++) {
		rv = req_parse(tc[i].in, tc[i].len, &req);
		if (rv != tc[i].want)
			fail_msg("%s: got %d (%s), want %d (%s)", tc[i].name,
			    rv, http1_strerror(rv), tc[i].want,
			    http1_strerror(tc[i].want));
	}
}

static void
run_chunk_cases(const struct test_case *tc, size_t n)
{
	size_t	i;
	int	rv;

	for (i = 0; i < n; i++) {
		rv = chunk_rv(tc[i].in, tc[i].len);
		if (rv != tc[i].want)
			fail_msg("%s: got %d (%s), want %d (%s)", tc[i].name,
			    rv, http1_strerror(rv), tc[i].want,
			    http1_strerror(tc[i].want));
	}
}

#define NCASES(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * Valid requests.
 */

static void
test_simple_get(void **state)
{
	static struct http1_request	req;
	const char			in[] = "GET /index.html?x=1 HTTP/1.1\r\n"
					    "Host: example.com\r\n"
					    "User-Agent:  curl/8.0 \t\r\n"
					    "Accept: */*\r\n\r\n";

	(void)state;
	assert_int_equal(req_parse(S(in), &req), HTTP1_DONE);
	assert_int_equal(req.method, HTTP1_METHOD_GET);
	assert_slice(req.method_str, "GET");
	assert_int_equal(req.target_form, HTTP1_TARGET_ORIGIN);
	assert_slice(req.target, "/index.html?x=1");
	assert_slice(req.path, "/index.html?x=1");
	assert_int_equal(req.minor_version, 1);
	assert_int_equal(req.nheaders, 3);
	assert_slice(req.headers[1].name, "User-Agent");
	assert_slice(req.headers[1].value, "curl/8.0");
	assert_slice(req.headers[2].value, "*/*");
	assert_slice(req.host, "example.com");
	assert_int_equal(req.body, HTTP1_BODY_NONE);
	assert_int_equal(req.content_length, 0);
	assert_true(req.keep_alive);
	assert_false(req.expect_continue);
	assert_false(req.upgrade_websocket);
	assert_int_equal(req.head_len, sizeof(in) - 1);

	/* Incomplete heads: every proper prefix. */
	assert_int_equal(req_parse(in, sizeof(in) - 2, &req),
	    HTTP1_INCOMPLETE);
	assert_int_equal(req_parse(in, 0, &req), HTTP1_INCOMPLETE);
}

static void
test_http10(void **state)
{
	static struct http1_request	req;

	(void)state;
	assert_int_equal(req_parse(S("GET / HTTP/1.0\r\n\r\n"), &req),
	    HTTP1_DONE);
	assert_int_equal(req.minor_version, 0);
	assert_int_equal(req.host.len, 0);
	assert_non_null(req.host.p);
	assert_false(req.keep_alive);

	assert_int_equal(req_parse(S("GET / HTTP/1.0\r\nHost:\r\n"
	    "Connection: Keep-Alive\r\n\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.host.len, 0);
	assert_true(req.keep_alive);

	assert_int_equal(req_parse(S("GET / HTTP/1.0\r\nHost: a.example\r\n"
	    "Connection: keep-alive, close\r\n\r\n"), &req), HTTP1_DONE);
	assert_slice(req.host, "a.example");
	assert_false(req.keep_alive);

	/* HTTP/1.0 may send Host, but not two, and not a bad one. */
	assert_int_equal(req_parse(S("GET / HTTP/1.0\r\nHost: a\r\n"
	    "Host: a\r\n\r\n"), &req), HTTP1_E_HOST_DUPLICATE);
	assert_int_equal(req_parse(S("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"),
	    &req), HTTP1_E_HOST_INVALID);
}

static void
test_absolute_form(void **state)
{
	static struct http1_request	req;

	(void)state;
	assert_int_equal(req_parse(S("GET http://Example.COM:8080/a/b?c=d "
	    "HTTP/1.1\r\nHost: other.example\r\n\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.target_form, HTTP1_TARGET_ABSOLUTE);
	assert_slice(req.target, "http://Example.COM:8080/a/b?c=d");
	assert_slice(req.host, "Example.COM:8080");
	assert_slice(req.path, "/a/b?c=d");

	/* Empty path: "/", pointing at a static string. */
	assert_int_equal(req_parse(S("GET HTTPS://h.example HTTP/1.1\r\n"
	    "Host: h.example\r\n\r\n"), &req), HTTP1_DONE);
	assert_slice(req.host, "h.example");
	assert_slice(req.path, "/");

	/* HTTP/1.0: the authority is the host even without Host. */
	assert_int_equal(req_parse(S("GET http://[::1]:81/ HTTP/1.0\r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_slice(req.host, "[::1]:81");

	/* HTTP/1.1 still needs exactly one valid Host. */
	assert_int_equal(req_parse(S("GET http://h/ HTTP/1.1\r\n\r\n"), &req),
	    HTTP1_E_HOST_MISSING);
	assert_int_equal(req_parse(S("GET http://h/ HTTP/1.1\r\nHost: x y\r\n"
	    "\r\n"), &req), HTTP1_E_HOST_INVALID);
}

static void
test_absolute_form_bad(void **state)
{
	static const struct test_case	tc[] = {
		CASE("userinfo", "GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("userinfo no path", "GET http://evil@h HTTP/1.1\r\n"
		    "Host: h\r\n\r\n", HTTP1_E_TARGET),
		CASE("empty authority", "GET http:///x HTTP/1.1\r\nHost: h\r\n"
		    "\r\n", HTTP1_E_TARGET),
		CASE("nothing after scheme", "GET http:// HTTP/1.1\r\n"
		    "Host: h\r\n\r\n", HTTP1_E_TARGET),
		CASE("query without path", "GET http://h?x HTTP/1.1\r\n"
		    "Host: h\r\n\r\n", HTTP1_E_TARGET),
		CASE("other scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("fragment", "GET http://h/#x HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("bad port", "GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n"
		    "\r\n", HTTP1_E_HOST_INVALID),
		CASE("bad host char", "GET http://h%2f/ HTTP/1.1\r\nHost: h\r\n"
		    "\r\n", HTTP1_E_HOST_INVALID),
	};

	(void)state;
	run_req_cases(tc, NCASES(tc));
}

static void
test_connect_options(void **state)
{
	static struct http1_request	req;
	static const struct test_case	tc[] = {
		CASE("CONNECT no port", "CONNECT h.example HTTP/1.1\r\n"
		    "Host: h.example\r\n\r\n", HTTP1_E_TARGET),
		CASE("CONNECT empty port", "CONNECT h.example: HTTP/1.1\r\n"
		    "Host: h.example\r\n\r\n", HTTP1_E_TARGET),
		CASE("CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: h\r\n"
		    "\r\n", HTTP1_E_TARGET),
		CASE("CONNECT absolute", "CONNECT http://h:1/ HTTP/1.1\r\n"
		    "Host: h\r\n\r\n", HTTP1_E_TARGET),
		CASE("authority-form GET", "GET h.example:443 HTTP/1.1\r\n"
		    "Host: h\r\n\r\n", HTTP1_E_TARGET),
		CASE("asterisk GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("OPTIONS **", "OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
	};

	(void)state;
	assert_int_equal(req_parse(S("CONNECT h.example:443 HTTP/1.1\r\n"
	    "Host: h.example:443\r\n\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.method, HTTP1_METHOD_CONNECT);
	assert_int_equal(req.target_form, HTTP1_TARGET_AUTHORITY);
	assert_slice(req.host, "h.example:443");
	assert_int_equal(req.path.len, 0);

	assert_int_equal(req_parse(S("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n"
	    "Host: [2001:db8::1]:8443\r\n\r\n"), &req), HTTP1_DONE);
	assert_slice(req.host, "[2001:db8::1]:8443");

	assert_int_equal(req_parse(S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_int_equal(req.method, HTTP1_METHOD_OPTIONS);
	assert_int_equal(req.target_form, HTTP1_TARGET_ASTERISK);
	assert_slice(req.target, "*");
	assert_int_equal(req.path.len, 0);
	assert_slice(req.host, "h");

	run_req_cases(tc, NCASES(tc));
}

static void
test_methods(void **state)
{
	static const struct {
		const char		*line;
		enum http1_method	 m;
	} tc[] = {
		{ "GET / HTTP/1.1\r\n",		HTTP1_METHOD_GET },
		{ "HEAD / HTTP/1.1\r\n",	HTTP1_METHOD_HEAD },
		{ "POST / HTTP/1.1\r\n",	HTTP1_METHOD_POST },
		{ "PUT / HTTP/1.1\r\n",		HTTP1_METHOD_PUT },
		{ "DELETE / HTTP/1.1\r\n",	HTTP1_METHOD_DELETE },
		{ "OPTIONS / HTTP/1.1\r\n",	HTTP1_METHOD_OPTIONS },
		{ "TRACE / HTTP/1.1\r\n",	HTTP1_METHOD_TRACE },
		{ "PATCH / HTTP/1.1\r\n",	HTTP1_METHOD_PATCH },
		{ "PROPFIND / HTTP/1.1\r\n",	HTTP1_METHOD_OTHER },
		{ "get / HTTP/1.1\r\n",		HTTP1_METHOD_OTHER },
		{ "GETS / HTTP/1.1\r\n",	HTTP1_METHOD_OTHER },
		{ "!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n", HTTP1_METHOD_OTHER },
	};
	static struct http1_request	req;
	struct sbuf			b;
	size_t				i;

	(void)state;
	for (i = 0; i < NCASES(tc); i++) {
		sb_init(&b, 256);
		sb_str(&b, tc[i].line);
		sb_str(&b, "Host: h\r\n\r\n");
		assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_DONE);
		assert_int_equal(req.method, tc[i].m);
		assert_int_equal(req.method_str.len,
		    strchr(tc[i].line, ' ') - tc[i].line);
		free(b.p);
	}
}

/*
 * What may be sent again after a reused upstream connection closed
 * unanswered: GET, HEAD and OPTIONS without a body, nothing else.  Each
 * head is parsed, so "a body" is what the parser says of Content-Length
 * (0 too) and Transfer-Encoding, as the proxy sees it.
 */
static void
test_replayable(void **state)
{
	static const struct {
		const char	*head;
		bool		 replay;
	} tc[] = {
		{ "GET / HTTP/1.1\r\n",				true },
		{ "HEAD / HTTP/1.1\r\n",				true },
		{ "OPTIONS / HTTP/1.1\r\n",				true },
		{ "OPTIONS * HTTP/1.1\r\n",				true },
		{ "GET / HTTP/1.0\r\n",				true },
		{ "POST / HTTP/1.1\r\n",				false },
		{ "PATCH / HTTP/1.1\r\n",				false },
		{ "PUT / HTTP/1.1\r\n",				false },
		{ "DELETE / HTTP/1.1\r\n",				false },
		{ "TRACE / HTTP/1.1\r\n",				false },
		{ "CONNECT h:443 HTTP/1.1\r\n",			false },
		{ "PROPFIND / HTTP/1.1\r\n",			false },
		{ "LOCK / HTTP/1.1\r\n",				false },
		{ "get / HTTP/1.1\r\n",				false },
		{ "GET / HTTP/1.1\r\nContent-Length: 0\r\n",		false },
		{ "GET / HTTP/1.1\r\nContent-Length: 5\r\n",		false },
		{ "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",	false },
		{ "HEAD / HTTP/1.1\r\nContent-Length: 0\r\n",		false },
		{ "OPTIONS / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",
									false },
		{ "POST / HTTP/1.1\r\nContent-Length: 0\r\n",		false },
		{ "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",	false },
		{ "DELETE / HTTP/1.1\r\nContent-Length: 0\r\n",		false },
	};
	static struct http1_request	req;
	struct sbuf			b;
	enum http1_method		m;
	size_t				i;

	(void)state;
	for (i = 0; i < NCASES(tc); i++) {
		sb_init(&b, 256);
		sb_str(&b, tc[i].head);
		sb_str(&b, "Host: h\r\n\r\n");
		assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_DONE);
		if (http1_replayable(req.method, req.body != HTTP1_BODY_NONE) !=
		    tc[i].replay)
			fail_msg("%s: replayable should be %d", tc[i].head,
			    tc[i].replay);
		free(b.p);
	}
	/* Every method, with and without a body, against the list. */
	for (m = HTTP1_METHOD_OTHER; m <= HTTP1_METHOD_PATCH; m++) {
		assert_false(http1_replayable(m, true));
		assert_int_equal(http1_replayable(m, false),
		    m == HTTP1_METHOD_GET || m == HTTP1_METHOD_HEAD ||
		    m == HTTP1_METHOD_OPTIONS);
	}
}

/* n fields named X-0 .. X-(n-1) after a Host field, i.e. n + 1 fields. */
static void
build_fields(struct sbuf *b, size_t n)
{
	size_t	i;

	sb_init(b, 64 + n * 16);
	sb_str(b, GET11);
	for (i = 0; i < n; i++) {
		sb_str(b, "X-");
		sb_num(b, i);
		sb_str(b, ": v\r\n");
	}
	sb_str(b, "\r\n");
}

static void
test_many_headers(void **state)
{
	static struct http1_request	 req;
	struct http1_limits		 lim;
	const struct http1_header	*h;
	struct sbuf			 b;

	(void)state;
	/* The default limit is 100 fields: Host + 99 is fine, + 100 not. */
	build_fields(&b, 99);
	assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_DONE);
	assert_int_equal(req.nheaders, 100);
	h = http1_find_header(req.headers, req.nheaders, "x-98");
	assert_non_null(h);
	assert_ptr_equal(h, &req.headers[99]);
	free(b.p);
	build_fields(&b, 100);
	assert_int_equal(req_parse(b.p, b.len, &req),
	    HTTP1_E_TOO_MANY_HEADERS);
	assert_int_equal(http1_error_status(HTTP1_E_TOO_MANY_HEADERS), 431);
	free(b.p);

	/* A limit above the array size is clamped to HTTP1_MAX_HEADERS. */
	http1_limits_default(&lim);
	lim.max_headers = 1000;
	build_fields(&b, HTTP1_MAX_HEADERS - 1);
	assert_int_equal(req_parse_lim(b.p, b.len, &lim, &req), HTTP1_DONE);
	assert_int_equal(req.nheaders, HTTP1_MAX_HEADERS);
	free(b.p);
	build_fields(&b, HTTP1_MAX_HEADERS);
	assert_int_equal(req_parse_lim(b.p, b.len, &lim, &req),
	    HTTP1_E_TOO_MANY_HEADERS);
	free(b.p);
}

static void
test_pipelined(void **state)
{
	static struct http1_request	req;
	struct http1_parser		p;
	const char			in[] =
	    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
	    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
	    "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	size_t				off;

	(void)state;
	assert_int_equal(req_parse(S(in), &req), HTTP1_DONE);
	assert_slice(req.path, "/a");
	assert_int_equal(req.body, HTTP1_BODY_LENGTH);
	assert_int_equal(req.content_length, 5);
	assert_memory_equal(in + req.head_len, "hello", 5);
	off = req.head_len + 5;

	/* The same parser keeps answering DONE for the head it found. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, in, off, NULL, &req),
	    HTTP1_DONE);
	assert_int_equal(http1_parse_request(&p, in, sizeof(in) - 1, NULL,
	    &req), HTTP1_DONE);
	assert_int_equal(req.head_len, off - 5);

	assert_int_equal(req_parse(in + off, sizeof(in) - 1 - off, &req),
	    HTTP1_DONE);
	assert_slice(req.path, "/b");
	assert_true(req.keep_alive);
	off += req.head_len;
	assert_int_equal(req_parse(in + off, sizeof(in) - 1 - off, &req),
	    HTTP1_DONE);
	assert_slice(req.path, "/c");
	assert_false(req.keep_alive);
	assert_int_equal(off + req.head_len, sizeof(in) - 1);
}

static void
test_leading_crlf(void **state)
{
	static struct http1_request	req;

	(void)state;
	assert_int_equal(req_parse(S("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_int_equal(req.head_len, 29);
	assert_slice(req.method_str, "GET");
	assert_int_equal(req_parse(S("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n"
	    "\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.head_len, 31);
	assert_int_equal(req_parse(S("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n"
	    "\r\n"), &req), HTTP1_E_REQUEST_LINE);
	assert_int_equal(req_parse(S("\r\n\r\n"), &req), HTTP1_INCOMPLETE);
	assert_int_equal(req_parse(S("\r\n\r\n\r\n"), &req),
	    HTTP1_E_REQUEST_LINE);
	assert_int_equal(req_parse(S("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	    &req), HTTP1_E_BARE_LF);
	assert_int_equal(req_parse(S(" \r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	    &req), HTTP1_E_REQUEST_LINE);
}

/*
 * Limits, exactly at and one over, and how early they fire.
 */

/* A request line of exactly n bytes, CRLF included. */
static void
build_line(struct sbuf *b, size_t n, bool crlf_only)
{
	sb_init(b, n + 64);
	sb_str(b, "GET /");
	sb_fill(b, 'a', n - strlen("GET / HTTP/1.1\r\n"));
	sb_str(b, " HTTP/1.1\r\n");
	if (!crlf_only)
		sb_str(b, "Host: h\r\n\r\n");
}

static void
test_request_line_limit(void **state)
{
	static struct http1_request	req;
	struct http1_limits		lim;
	struct http1_parser		p;
	struct sbuf			b;

	(void)state;
	http1_limits_default(&lim);
	assert_int_equal(lim.max_request_line, 8192);
	build_line(&b, 8192, false);
	assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_DONE);
	assert_int_equal(req.target.len, 8192 - 16 + 1);
	free(b.p);
	build_line(&b, 8193, false);
	assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_E_LINE_TOO_LONG);
	assert_int_equal(http1_error_status(HTTP1_E_LINE_TOO_LONG), 414);

	/*
	 * As soon as the line cannot fit, before any CRLF: 8190 bytes leave
	 * room for the CRLF, 8191 do not.
	 */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, b.p, 8190, &lim, &req),
	    HTTP1_INCOMPLETE);
	assert_int_equal(http1_parse_request(&p, b.p, 8191, &lim, &req),
	    HTTP1_E_LINE_TOO_LONG);
	/* A CR at 8192 - 1 still fits; anything else there does not. */
	b.p[8190] = '\r';
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, b.p, 8191, &lim, &req),
	    HTTP1_INCOMPLETE);
	free(b.p);

	/* Skipped empty lines do not count towards the line. */
	lim.max_request_line = 16;
	assert_int_equal(req_parse_lim(S("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n"
	    "\r\n"), &lim, &req), HTTP1_DONE);
	assert_int_equal(req_parse_lim(S("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
	    &lim, &req), HTTP1_E_LINE_TOO_LONG);
	/* Field lines are bounded by max_head only. */
	assert_int_equal(req_parse_lim(S("GET / HTTP/1.1\r\nHost: h\r\n"
	    "X-Long-Field: aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"), &lim, &req),
	    HTTP1_DONE);
}

/* A head of exactly n bytes. */
static void
build_head(struct sbuf *b, size_t n)
{
	const char	pre[] = GET11 "X: ";

	sb_init(b, n + 64);
	sb_str(b, pre);
	sb_fill(b, 'v', n - (sizeof(pre) - 1) - 4);
	sb_str(b, "\r\n\r\n");
}

static void
test_head_limit(void **state)
{
	static struct http1_request	req;
	struct http1_limits		lim;
	struct http1_parser		p;
	struct sbuf			b;

	(void)state;
	http1_limits_default(&lim);
	assert_int_equal(lim.max_head, 32768);
	assert_int_equal(lim.max_headers, 100);
	build_head(&b, 32768);
	assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_DONE);
	assert_int_equal(req.head_len, 32768);
	free(b.p);
	build_head(&b, 32769);
	assert_int_equal(req_parse(b.p, b.len, &req), HTTP1_E_HEAD_TOO_LARGE);
	assert_int_equal(http1_error_status(HTTP1_E_HEAD_TOO_LARGE), 431);
	/* Before the end of the head arrives. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, b.p, 32768, &lim, &req),
	    HTTP1_INCOMPLETE);
	assert_int_equal(http1_parse_request(&p, b.p, 32769, &lim, &req),
	    HTTP1_E_HEAD_TOO_LARGE);
	free(b.p);

	/* Leading empty lines count: they are part of what was consumed. */
	lim.max_head = 29;
	assert_int_equal(req_parse_lim(S("\r\nGET / HTTP/1.1\r\nHost: h\r\n"
	    "\r\n"), &lim, &req), HTTP1_DONE);
	lim.max_head = 28;
	assert_int_equal(req_parse_lim(S("\r\nGET / HTTP/1.1\r\nHost: h\r\n"
	    "\r\n"), &lim, &req), HTTP1_E_HEAD_TOO_LARGE);
}

static void
test_early_errors(void **state)
{
	static struct http1_request	req;
	struct http1_limits		lim;
	struct http1_parser		p;
	const char			many[] = GET11 "A: 1\r\nB: 2\r\n";
	const char			ver[] = "GET / HTTP/1.2\r\n";

	(void)state;
	http1_limits_default(&lim);
	/* A bad version is a 505 before any field arrives. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, S(ver), &lim, &req),
	    HTTP1_E_VERSION);
	assert_int_equal(http1_error_status(HTTP1_E_VERSION), 505);
	/* Too many fields, before the head ends. */
	lim.max_headers = 2;
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, S(many), &lim, &req),
	    HTTP1_E_TOO_MANY_HEADERS);
	lim.max_headers = 0;
	assert_int_equal(req_parse_lim(S("GET / HTTP/1.0\r\n\r\n"), &lim,
	    &req), HTTP1_DONE);
	assert_int_equal(req_parse_lim(S(GET11 "\r\n"), &lim, &req),
	    HTTP1_E_TOO_MANY_HEADERS);
	/* Not HTTP at all (a TLS ClientHello): refused from the first byte. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, "\x16\x03\x01", 3, NULL,
	    &req), HTTP1_E_METHOD);
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, "GE", 2, NULL, &req),
	    HTTP1_INCOMPLETE);
	assert_int_equal(http1_parse_request(&p, "GE\x7f", 3, NULL, &req),
	    HTTP1_E_METHOD);
	/* A bare LF is an error the moment it arrives. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, S("GET / HTTP/1.1\r\nA: b\n"),
	    NULL, &req), HTTP1_E_BARE_LF);
	/* A CR at the end of the input is fine until the next byte. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, S("GET / HTTP/1.1\r"), NULL,
	    &req), HTTP1_INCOMPLETE);
	assert_int_equal(http1_parse_request(&p, S("GET / HTTP/1.1\rX"), NULL,
	    &req), HTTP1_E_BARE_CR);
	/* A broken field line fails before the head ends. */
	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, S(GET11 "A : b\r\n"), NULL,
	    &req), HTTP1_E_SPACE_BEFORE_COLON);
	/* NULL limits are the defaults. */
	assert_int_equal(req_parse_lim(S(GET11 "\r\n"), NULL, &req),
	    HTTP1_DONE);
}

/*
 * Hostile requests.
 */

static void
test_request_line_errors(void **state)
{
	static const struct test_case	tc[] = {
		CASE("double SP", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("SP before version", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("trailing SP", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("leading SP", " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("empty target", "GET  HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("empty version", "GET / \r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("HTAB separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_METHOD),
		CASE("no version", "GET /\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("HTTP/0.9 style", "GET /\r\n\r\n", HTTP1_E_REQUEST_LINE),
		CASE("method only", "GET\r\n\r\n", HTTP1_E_REQUEST_LINE),
		CASE("lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("version 1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("version 2", "GET / HTTP/2\r\nHost: h\r\n\r\n",
		    HTTP1_E_REQUEST_LINE),
		CASE("version 1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n",
		    HTTP1_E_VERSION),
		CASE("version 2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
		    HTTP1_E_VERSION),
		CASE("version 0.9", "GET / HTTP/0.9\r\n\r\n", HTTP1_E_VERSION),
		CASE("method char", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_METHOD),
		CASE("method NUL", "GE\0T / HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_METHOD),
		CASE("method 8bit", "G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_METHOD),
		CASE("NUL in target", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("HTAB in target", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("8bit in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("relative", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("query only", "GET ?a HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_TARGET),
		CASE("TLS on plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc"
		    "\x03\x03\r\n\r\n", HTTP1_E_METHOD),
	};

	(void)state;
	run_req_cases(tc, NCASES(tc));
}

static void
test_crlf_errors(void **state)
{
	static const struct test_case	tc[] = {
		CASE("LF request line", "GET / HTTP/1.1\nHost: h\r\n\r\n",
		    HTTP1_E_BARE_LF),
		CASE("LF field line", "GET / HTTP/1.1\r\nHost: h\n\r\n",
		    HTTP1_E_BARE_LF),
		CASE("LF end of head", "GET / HTTP/1.1\r\nHost: h\r\n\n",
		    HTTP1_E_BARE_LF),
		CASE("LF only", "GET / HTTP/1.1\nHost: h\n\n", HTTP1_E_BARE_LF),
		CASE("LF in value", "GET / HTTP/1.1\r\nX: a\nb\r\nHost: h\r\n\r\n",
		    HTTP1_E_BARE_LF),
		CASE("CR CR LF", "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
		    HTTP1_E_BARE_CR),
		CASE("CR CR LF end", "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
		    HTTP1_E_BARE_CR),
		CASE("CR in value", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
		    HTTP1_E_BARE_CR),
		CASE("CR in target", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP1_E_BARE_CR),
		CASE("LF CR", "GET / HTTP/1.1\r\nHost: h\r\n\n\r",
		    HTTP1_E_BARE_LF),
	};

	(void)state;
	run_req_cases(tc, NCASES(tc));
}

static void
test_field_errors(void **state)
{
	static struct http1_request	req;
	static const struct test_case	tc[] = {
		CASE("SP before colon", GET11 "X : y\r\n\r\n",
		    HTTP1_E_SPACE_BEFORE_COLON),
		CASE("HTAB before colon", GET11 "X\t: y\r\n\r\n",
		    HTTP1_E_SPACE_BEFORE_COLON),
		CASE("Host SP colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
		    HTTP1_E_SPACE_BEFORE_COLON),
		CASE("empty name", GET11 ": y\r\n\r\n", HTTP1_E_HEADER_NAME),
		CASE("SP in name", GET11 "X Y: z\r\n\r\n", HTTP1_E_HEADER_NAME),
		CASE("no colon", GET11 "X-Y\r\n\r\n", HTTP1_E_HEADER_NAME),
		CASE("name then SP", GET11 "X-Y \r\n\r\n", HTTP1_E_HEADER_NAME),
		CASE("8bit name", GET11 "X\xc3\xa9: y\r\n\r\n",
		    HTTP1_E_HEADER_NAME),
		CASE("NUL name", GET11 "X\0: y\r\n\r\n", HTTP1_E_HEADER_NAME),
		CASE("separator in name", GET11 "X(Y): z\r\n\r\n",
		    HTTP1_E_HEADER_NAME),
		CASE("folded", GET11 "X: a\r\n b\r\n\r\n", HTTP1_E_OBS_FOLD),
		CASE("folded HTAB", GET11 "X: a\r\n\tb\r\n\r\n",
		    HTTP1_E_OBS_FOLD),
		CASE("SP after start line", "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
		    HTTP1_E_OBS_FOLD),
		CASE("NUL in value", GET11 "X: a\0b\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
		CASE("NUL alone", GET11 "X: \0\r\n\r\n", HTTP1_E_HEADER_VALUE),
		CASE("CTL in value", GET11 "X: a\x01" "b\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
		CASE("ESC in value", GET11 "X: \x1b[31m\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
		CASE("DEL in value", GET11 "X: a\x7f\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
		CASE("VT in value", GET11 "X: a\vb\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
	};

	(void)state;
	run_req_cases(tc, NCASES(tc));

	/* Valid edge cases: obs-text, empty values, OWS stripping. */
	assert_int_equal(req_parse(S(GET11 "X: \xff\x80 caf\xc3\xa9\r\n"
	    "Y:\r\nZ: \t \r\nW:\ta \t b\t\r\n\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.nheaders, 5);
	assert_slice(req.headers[1].value, "\xff\x80 caf\xc3\xa9");
	assert_int_equal(req.headers[2].value.len, 0);
	assert_int_equal(req.headers[3].value.len, 0);
	assert_slice(req.headers[4].value, "a \t b");
}

static void
test_host(void **state)
{
	static struct http1_request	req;
	static const char		*good[] = {
		"h", "example.com", "EXAMPLE.com:443", "a-b_c.d:0",
		"h:65535", "h:00080", "1.2.3.4", "1.2.3.4:80", "[::1]",
		"[::1]:8080", "[2001:db8::1.2.3.4]", "xn--caf-dma.example",
	};
	static const char		*bad[] = {
		"", ":80", "h:", "h:65536", "h:123456", "h:-1", "h:8o",
		"h:80:80", "[::1", "[]", "[zz::1]", "[1.2.3.4]", "[::1]x",
		"[::1]:", "u@h", "h/x", "h?x", "h#x", "ex%61mple", "a b",
		"a,b", "caf\xc3\xa9", "h\\x", "*",
	};
	struct sbuf			 b;
	size_t				 i;
	int				 rv;

	(void)state;
	for (i = 0; i < NCASES(good) + NCASES(bad); i++) {
		const char	*h = i < NCASES(good) ? good[i] :
				    bad[i - NCASES(good)];

		sb_init(&b, 128);
		sb_str(&b, "GET / HTTP/1.1\r\nHost: ");
		sb_str(&b, h);
		sb_str(&b, "\r\n\r\n");
		rv = req_parse(b.p, b.len, &req);
		if (i < NCASES(good) && rv != HTTP1_DONE)
			fail_msg("Host \"%s\": %s", h, http1_strerror(rv));
		if (i < NCASES(good))
			assert_slice(req.host, h);
		if (i >= NCASES(good) && rv != HTTP1_E_HOST_INVALID)
			fail_msg("Host \"%s\": %s", h, http1_strerror(rv));
		free(b.p);
	}
	assert_int_equal(req_parse(S("GET / HTTP/1.1\r\n\r\n"), &req),
	    HTTP1_E_HOST_MISSING);
	assert_int_equal(req_parse(S("GET / HTTP/1.1\r\nX: y\r\n\r\n"), &req),
	    HTTP1_E_HOST_MISSING);
	assert_int_equal(req_parse(S(GET11 "Host: example.com\r\n\r\n"), &req),
	    HTTP1_E_HOST_DUPLICATE);
	assert_int_equal(req_parse(S(GET11 "host: other\r\n\r\n"), &req),
	    HTTP1_E_HOST_DUPLICATE);
	/* OWS around the value is not part of it. */
	assert_int_equal(req_parse(S("GET / HTTP/1.1\r\nhOST: \th:1 \r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_slice(req.host, "h:1");
}

static void
test_content_length(void **state)
{
	static struct http1_request	req;
	static const struct test_case	tc[] = {
		CASE("plus", POST11 "Content-Length: +5\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("minus", POST11 "Content-Length: -5\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("two numbers", POST11 "Content-Length: 5 5\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("hex", POST11 "Content-Length: 0x5\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("list", POST11 "Content-Length: 5, 5\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("list no SP", POST11 "Content-Length: 5,5\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("empty", POST11 "Content-Length:\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("decimal point", POST11 "Content-Length: 5.0\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("suffix", POST11 "Content-Length: 5a\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("2^63", POST11 "Content-Length: 9223372036854775808\r\n"
		    "\r\n", HTTP1_E_CL_INVALID),
		CASE("2^64", POST11 "Content-Length: 18446744073709551616\r\n"
		    "\r\n", HTTP1_E_CL_INVALID),
		CASE("20 digits", POST11 "Content-Length: 00000000000000000005"
		    "\r\n\r\n", HTTP1_E_CL_INVALID),
		CASE("20 nines", POST11 "Content-Length: 99999999999999999999"
		    "\r\n\r\n", HTTP1_E_CL_INVALID),
		CASE("two equal", POST11 "Content-Length: 5\r\n"
		    "Content-Length: 5\r\n\r\n", HTTP1_E_CL_DUPLICATE),
		CASE("two differ", POST11 "Content-Length: 5\r\n"
		    "content-length: 6\r\n\r\n", HTTP1_E_CL_DUPLICATE),
		CASE("SP before colon", POST11 "Content-Length : 5\r\n\r\n",
		    HTTP1_E_SPACE_BEFORE_COLON),
		CASE("folded", POST11 "Content-Length:\r\n 5\r\n\r\n",
		    HTTP1_E_OBS_FOLD),
	};

	(void)state;
	run_req_cases(tc, NCASES(tc));

	assert_int_equal(req_parse(S(POST11 "Content-Length: 0\r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_int_equal(req.body, HTTP1_BODY_LENGTH);
	assert_int_equal(req.content_length, 0);
	assert_int_equal(req_parse(S(POST11 "content-length:\t42 \r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_int_equal(req.body, HTTP1_BODY_LENGTH);
	assert_int_equal(req.content_length, 42);
	assert_int_equal(req_parse(S(POST11 "Content-Length: "
	    "9223372036854775807\r\n\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.content_length, INT64_MAX);
	assert_int_equal(req_parse(S(POST11 "Content-Length: "
	    "0000000000000000007\r\n\r\n"), &req), HTTP1_DONE);
	assert_int_equal(req.content_length, 7);
	/* A GET may have a body too. */
	assert_int_equal(req_parse(S(GET11 "Content-Length: 3\r\n\r\n"), &req),
	    HTTP1_DONE);
	assert_int_equal(req.body, HTTP1_BODY_LENGTH);
}

static void
test_transfer_encoding(void **state)
{
	static struct http1_request	req;
	static const struct test_case	tc[] = {
		CASE("TE + CL", POST11 "Transfer-Encoding: chunked\r\n"
		    "Content-Length: 5\r\n\r\n", HTTP1_E_TE_AND_CL),
		CASE("CL + TE", POST11 "Content-Length: 5\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", HTTP1_E_TE_AND_CL),
		CASE("TE + CL 0", POST11 "Transfer-Encoding: chunked\r\n"
		    "Content-Length: 0\r\n\r\n", HTTP1_E_TE_AND_CL),
		CASE("TE + bad CL", POST11 "Transfer-Encoding: chunked\r\n"
		    "Content-Length: x\r\n\r\n", HTTP1_E_TE_AND_CL),
		CASE("TE + CL HTTP/1.0", "POST / HTTP/1.0\r\n"
		    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		    HTTP1_E_TE_AND_CL),
		CASE("SP before colon", POST11 "Transfer-Encoding : chunked\r\n"
		    "\r\n", HTTP1_E_SPACE_BEFORE_COLON),
		CASE("xchunked", POST11 "Transfer-Encoding: xchunked\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("chunkedx", POST11 "Transfer-Encoding: chunkedx\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("chunked, identity", POST11 "Transfer-Encoding: chunked, "
		    "identity\r\n\r\n", HTTP1_E_TE_UNSUPPORTED),
		CASE("gzip, chunked", POST11 "Transfer-Encoding: gzip, chunked"
		    "\r\n\r\n", HTTP1_E_TE_UNSUPPORTED),
		CASE("chunked, chunked", POST11 "Transfer-Encoding: chunked, "
		    "chunked\r\n\r\n", HTTP1_E_TE_UNSUPPORTED),
		CASE("chunked,", POST11 "Transfer-Encoding: chunked,\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("identity", POST11 "Transfer-Encoding: identity\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("params", POST11 "Transfer-Encoding: chunked;q=1\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("quoted", POST11 "Transfer-Encoding: \"chunked\"\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("empty", POST11 "Transfer-Encoding:\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("two fields", POST11 "Transfer-Encoding: chunked\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", HTTP1_E_TE_UNSUPPORTED),
		CASE("two fields gzip", POST11 "Transfer-Encoding: gzip\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", HTTP1_E_TE_UNSUPPORTED),
		CASE("folded", POST11 "Transfer-Encoding:\r\n chunked\r\n\r\n",
		    HTTP1_E_OBS_FOLD),
		CASE("folded 2", POST11 "Transfer-Encoding: gzip\r\n\t,chunked"
		    "\r\n\r\n", HTTP1_E_OBS_FOLD),
		CASE("VT", POST11 "Transfer-Encoding:\vchunked\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
		CASE("NUL", POST11 "Transfer-Encoding: chunked\0\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
		CASE("underscore name", POST11 "Transfer_Encoding: chunked\r\n"
		    "Content-Length: 5\r\n\r\n", HTTP1_DONE),
		CASE("HTTP/1.0", "POST / HTTP/1.0\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", HTTP1_E_TE_HTTP10),
	};
	static const char		*good[] = {
		POST11 "Transfer-Encoding: chunked\r\n\r\n",
		POST11 "Transfer-Encoding:\tchunked\r\n\r\n",
		POST11 "transfer-encoding: CHUNKED \t\r\n\r\n",
		POST11 "TRANSFER-ENCODING:Chunked\r\n\r\n",
	};
	size_t				 i;

	(void)state;
	run_req_cases(tc, NCASES(tc));
	for (i = 0; i < NCASES(good); i++) {
		assert_int_equal(req_parse(good[i], strlen(good[i]), &req),
		    HTTP1_DONE);
		assert_int_equal(req.body, HTTP1_BODY_CHUNKED);
		assert_int_equal(req.content_length, 0);
	}
}

static void
test_connection(void **state)
{
	static struct http1_request	req;
	static const struct {
		const char	*in;
		bool		 ka;
	} tc[] = {
		{ GET11 "\r\n", true },
		{ GET11 "Connection: close\r\n\r\n", false },
		{ GET11 "Connection: CLOSE\r\n\r\n", false },
		{ GET11 "Connection: keep-alive, close\r\n\r\n", false },
		{ GET11 "Connection: ,, close ,\r\n\r\n", false },
		{ GET11 "Connection: foo\r\nConnection: close\r\n\r\n", false },
		{ GET11 "Connection: closed\r\n\r\n", true },
		{ GET11 "Connection: keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: foo,Keep-Alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
		    "Connection: close\r\n\r\n", false },
	};
	size_t				i;

	(void)state;
	for (i = 0; i < NCASES(tc); i++) {
		assert_int_equal(req_parse(tc[i].in, strlen(tc[i].in), &req),
		    HTTP1_DONE);
		if (req.keep_alive != tc[i].ka)
			fail_msg("case %zu: keep_alive %d", i, req.keep_alive);
	}
}

static void
test_expect(void **state)
{
	static struct http1_request	req;

	(void)state;
	assert_int_equal(req_parse(S(POST11 "Content-Length: 3\r\n"
	    "Expect: 100-continue\r\n\r\n"), &req), HTTP1_DONE);
	assert_true(req.expect_continue);
	assert_int_equal(req_parse(S(POST11 "Expect:  100-Continue \r\n\r\n"),
	    &req), HTTP1_DONE);
	assert_true(req.expect_continue);
	/* An HTTP/1.0 server must ignore 100-continue. */
	assert_int_equal(req_parse(S("POST / HTTP/1.0\r\n"
	    "Expect: 100-continue\r\n\r\n"), &req), HTTP1_DONE);
	assert_false(req.expect_continue);
	assert_int_equal(req_parse(S(POST11 "Expect: foo\r\n\r\n"), &req),
	    HTTP1_E_EXPECT);
	assert_int_equal(req_parse(S(POST11 "Expect: 100-continue, foo\r\n\r\n"),
	    &req), HTTP1_E_EXPECT);
	assert_int_equal(req_parse(S(POST11 "Expect: 100-continue\r\n"
	    "Expect: 200-ok\r\n\r\n"), &req), HTTP1_E_EXPECT);
	assert_int_equal(req_parse(S(POST11 "Expect:\r\n\r\n"), &req),
	    HTTP1_E_EXPECT);
	assert_int_equal(http1_error_status(HTTP1_E_EXPECT), 417);
}

static void
test_websocket(void **state)
{
	static struct http1_request	req;
	static const struct {
		const char	*in;
		bool		 ws;
	} tc[] = {
		{ GET11 "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		    true },
		{ GET11 "Upgrade: h2c, WebSocket\r\n"
		    "Connection: keep-alive, upgrade\r\n\r\n", true },
		{ GET11 "Connection: keep-alive\r\nUpgrade: websocket\r\n"
		    "Connection: UPGRADE\r\n\r\n", true },
		{ GET11 "Upgrade: websocket\r\n\r\n", false },
		{ GET11 "Connection: upgrade\r\n\r\n", false },
		{ GET11 "Upgrade: websockets\r\nConnection: upgrade\r\n\r\n",
		    false },
		{ POST11 "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n",
		    false },
		{ "GET / HTTP/1.0\r\nUpgrade: websocket\r\n"
		    "Connection: upgrade\r\n\r\n", false },
	};
	size_t				i;

	(void)state;
	for (i = 0; i < NCASES(tc); i++) {
		assert_int_equal(req_parse(tc[i].in, strlen(tc[i].in), &req),
		    HTTP1_DONE);
		if (req.upgrade_websocket != tc[i].ws)
			fail_msg("case %zu: upgrade_websocket %d", i,
			    req.upgrade_websocket);
	}
}

/*
 * Responses.
 */

static void
test_response(void **state)
{
	static struct http1_response	resp;
	const char			in[] = "HTTP/1.1 200 OK\r\n"
					    "Content-Length: 5\r\n"
					    "Server: x\r\n\r\nhello";

	(void)state;
	assert_int_equal(resp_parse(S(in), HTTP1_METHOD_GET, &resp),
	    HTTP1_DONE);
	assert_int_equal(resp.minor_version, 1);
	assert_int_equal(resp.status, 200);
	assert_slice(resp.reason, "OK");
	assert_int_equal(resp.nheaders, 2);
	assert_int_equal(resp.body, HTTP1_BODY_LENGTH);
	assert_int_equal(resp.content_length, 5);
	assert_true(resp.keep_alive);
	assert_int_equal(resp.head_len, sizeof(in) - 1 - 5);

	/* Empty reason, with and without the SP. */
	assert_int_equal(resp_parse(S("HTTP/1.1 404 \r\nContent-Length: 0\r\n"
	    "\r\n"), HTTP1_METHOD_GET, &resp), HTTP1_DONE);
	assert_int_equal(resp.status, 404);
	assert_int_equal(resp.reason.len, 0);
	assert_int_equal(resp_parse(S("HTTP/1.0 500\r\n\r\n"),
	    HTTP1_METHOD_GET, &resp), HTTP1_DONE);
	assert_int_equal(resp.status, 500);
	assert_int_equal(resp.reason.len, 0);
	assert_int_equal(resp.body, HTTP1_BODY_CLOSE);
	assert_false(resp.keep_alive);
	/* Reason phrases may hold SP, HTAB and obs-text. */
	assert_int_equal(resp_parse(S("HTTP/1.1 599  Not\tQuite \xe2\x9c\x93"
	    "\r\nContent-Length: 0\r\n\r\n"), HTTP1_METHOD_GET, &resp),
	    HTTP1_DONE);
	assert_slice(resp.reason, " Not\tQuite \xe2\x9c\x93");
}

static void
test_response_framing(void **state)
{
	static struct http1_response	resp;
	static const struct {
		const char		*in;
		enum http1_method	 m;
		enum http1_body		 body;
		uint64_t		 cl;
		bool			 ka;
	} tc[] = {
		{ RESP11 "Transfer-Encoding: chunked\r\n\r\n", HTTP1_METHOD_GET,
		    HTTP1_BODY_CHUNKED, 0, true },
		{ RESP11 "Content-Length: 0\r\n\r\n", HTTP1_METHOD_GET,
		    HTTP1_BODY_LENGTH, 0, true },
		{ RESP11 "\r\n", HTTP1_METHOD_GET, HTTP1_BODY_CLOSE, 0, false },
		{ RESP11 "Content-Length: 9\r\n\r\n", HTTP1_METHOD_HEAD,
		    HTTP1_BODY_NONE, 0, true },
		{ RESP11 "Transfer-Encoding: chunked\r\n\r\n",
		    HTTP1_METHOD_HEAD, HTTP1_BODY_NONE, 0, true },
		{ RESP11 "\r\n", HTTP1_METHOD_HEAD, HTTP1_BODY_NONE, 0, true },
		{ "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_NONE, 0, true },
		{ "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_NONE, 0, true },
		{ "HTTP/1.1 100 Continue\r\n\r\n", HTTP1_METHOD_POST,
		    HTTP1_BODY_NONE, 0, true },
		{ "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_NONE, 0, true },
		{ "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\n\r\n", HTTP1_METHOD_GET,
		    HTTP1_BODY_NONE, 0, false },
		{ RESP11 "\r\n", HTTP1_METHOD_CONNECT, HTTP1_BODY_NONE, 0,
		    false },
		{ RESP11 "Connection: close\r\nContent-Length: 2\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_LENGTH, 2, false },
		{ "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_LENGTH, 2, false },
		{ "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
		    "Content-Length: 2\r\n\r\n", HTTP1_METHOD_GET,
		    HTTP1_BODY_LENGTH, 2, true },
		{ "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_CLOSE, 0, false },
		{ RESP11 "Content-Length: 9223372036854775807\r\n\r\n",
		    HTTP1_METHOD_GET, HTTP1_BODY_LENGTH, INT64_MAX, true },
	};
	size_t				i;

	(void)state;
	for (i = 0; i < NCASES(tc); i++) {
		if (resp_parse(tc[i].in, strlen(tc[i].in), tc[i].m, &resp) !=
		    HTTP1_DONE)
			fail_msg("case %zu: not DONE", i);
		if (resp.body != tc[i].body || resp.content_length != tc[i].cl
		    || resp.keep_alive != tc[i].ka)
			fail_msg("case %zu: body %d cl %ju ka %d", i,
			    resp.body, (uintmax_t)resp.content_length,
			    resp.keep_alive);
	}
}

static void
test_response_errors(void **state)
{
	static const struct test_case	tc[] = {
		CASE("status 99", "HTTP/1.1 099 X\r\n\r\n", HTTP1_E_STATUS_LINE),
		CASE("status 600", "HTTP/1.1 600 X\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("status 2 digits", "HTTP/1.1 20 OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("status 4 digits", "HTTP/1.1 2000 OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("no SP after status", "HTTP/1.1 200OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("signed status", "HTTP/1.1 +20 OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("two SP", "HTTP/1.1  200 OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("lowercase", "http/1.1 200 OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("HTTP/2", "HTTP/2 200 OK\r\n\r\n", HTTP1_E_STATUS_LINE),
		CASE("version 2.0", "HTTP/2.0 200 OK\r\n\r\n", HTTP1_E_VERSION),
		CASE("leading CRLF", "\r\nHTTP/1.1 200 OK\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n",
		    HTTP1_E_STATUS_LINE),
		CASE("bare LF", "HTTP/1.1 200 OK\n\n", HTTP1_E_BARE_LF),
		CASE("bare CR", "HTTP/1.1 200 OK\r\r\n\r\n", HTTP1_E_BARE_CR),
		CASE("TE + CL", RESP11 "Transfer-Encoding: chunked\r\n"
		    "Content-Length: 5\r\n\r\n", HTTP1_E_TE_AND_CL),
		CASE("TE gzip", RESP11 "Transfer-Encoding: gzip\r\n\r\n",
		    HTTP1_E_TE_UNSUPPORTED),
		CASE("TE gzip, chunked", RESP11 "Transfer-Encoding: gzip, "
		    "chunked\r\n\r\n", HTTP1_E_TE_UNSUPPORTED),
		CASE("TE in 1.0", "HTTP/1.0 200 OK\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", HTTP1_E_TE_HTTP10),
		CASE("CL twice", RESP11 "Content-Length: 1\r\n"
		    "Content-Length: 1\r\n\r\n", HTTP1_E_CL_DUPLICATE),
		CASE("CL list", RESP11 "Content-Length: 1,1\r\n\r\n",
		    HTTP1_E_CL_INVALID),
		CASE("CL 2^63", RESP11 "Content-Length: 9223372036854775808\r\n"
		    "\r\n", HTTP1_E_CL_INVALID),
		CASE("folded", RESP11 "X: a\r\n b\r\n\r\n", HTTP1_E_OBS_FOLD),
		CASE("SP before colon", RESP11 "Content-Length : 1\r\n\r\n",
		    HTTP1_E_SPACE_BEFORE_COLON),
		CASE("bad name", RESP11 "X Y: 1\r\n\r\n", HTTP1_E_HEADER_NAME),
		CASE("bad value", RESP11 "X: \x7f\r\n\r\n",
		    HTTP1_E_HEADER_VALUE),
	};
	static struct http1_response	resp;
	struct http1_limits		lim;
	struct http1_parser		p;
	size_t				i;
	int				rv;

	(void)state;
	for (i = 0; i < NCASES(tc); i++) {
		rv = resp_parse(tc[i].in, tc[i].len, HTTP1_METHOD_GET, &resp);
		if (rv != tc[i].want)
			fail_msg("%s: got %d (%s)", tc[i].name, rv,
			    http1_strerror(rv));
	}
	/* Framing fields are checked even where they do not frame. */
	assert_int_equal(resp_parse(S("HTTP/1.1 204 X\r\nContent-Length: 1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), HTTP1_METHOD_GET, &resp),
	    HTTP1_E_TE_AND_CL);
	assert_int_equal(resp_parse(S(RESP11 "Content-Length: x\r\n\r\n"),
	    HTTP1_METHOD_HEAD, &resp), HTTP1_E_CL_INVALID);
	/* Limits apply to responses too. */
	http1_limits_default(&lim);
	lim.max_request_line = 10;
	http1_parser_init(&p);
	assert_int_equal(http1_parse_response(&p, S(RESP11 "\r\n"), &lim,
	    HTTP1_METHOD_GET, &resp), HTTP1_E_LINE_TOO_LONG);
	http1_limits_default(&lim);
	lim.max_headers = 1;
	http1_parser_init(&p);
	assert_int_equal(http1_parse_response(&p, S(RESP11 "A: 1\r\nB: 2\r\n"),
	    &lim, HTTP1_METHOD_GET, &resp), HTTP1_E_TOO_MANY_HEADERS);
	lim.max_head = 20;
	http1_parser_init(&p);
	assert_int_equal(http1_parse_response(&p, S(RESP11 "A: 1\r\n"),
	    &lim, HTTP1_METHOD_GET, &resp), HTTP1_E_HEAD_TOO_LARGE);
}

/*
 * Chunked bodies.
 */

/* in must end exactly where the body does. */
static void
expect_chunks(const char *in, size_t n, const char *data)
{
	struct chunk_out	o;

	if (chunk_parse(in, n, &o) != HTTP1_CHUNK_END)
		fail_msg("\"%s\": %d (%s)", in, o.rv, http1_strerror(o.rv));
	assert_int_equal(o.dlen, strlen(data));
	assert_memory_equal(o.data, data, o.dlen);
	assert_int_equal(o.used, n);
	free(o.data);
}

static void
test_chunked(void **state)
{
	const char	pipelined[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	const char	binary[] = "4\r\n\r\n\0\n\r\n0\r\n\r\n";
	struct chunk_out o;

	(void)state;
	expect_chunks(S("5\r\nhello\r\n0\r\n\r\n"), "hello");
	expect_chunks(S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
	    "hello world");
	expect_chunks(S("0\r\n\r\n"), "");
	expect_chunks(S("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"),
	    "0123456789abcdefghij");
	expect_chunks(S("0005\r\nhello\r\n000\r\n\r\n"), "hello");
	expect_chunks(S("000000000000000a\r\n0123456789\r\n0\r\n\r\n"),
	    "0123456789");
	expect_chunks(S("5;name\r\nhello\r\n0;a=b;c=\"d;\\\"e\\\\\";f\r\n"
	    "\r\n"), "hello");
	expect_chunks(S("5;a=\"\"\r\nhello\r\n0\r\n\r\n"), "hello");
	expect_chunks(S("5\r\nhello\r\n0\r\nExpires: never\r\nX:\r\n"
	    "Y: a\tb \xff\r\n\r\n"), "hello");
	/* Data is opaque: CR, LF and NUL inside it are just bytes. */
	chunk_parse(binary, sizeof(binary) - 1, &o);
	assert_int_equal(o.rv, HTTP1_CHUNK_END);
	assert_int_equal(o.dlen, 4);
	assert_memory_equal(o.data, "\r\n\0\n", 4);
	free(o.data);
	/* Bytes after the end belong to the next message. */
	chunk_parse(S(pipelined), &o);
	assert_int_equal(o.rv, HTTP1_CHUNK_END);
	assert_int_equal(o.used, 13);
	free(o.data);
}

static void
test_chunked_incremental(void **state)
{
	struct http1_chunked	 c;
	const char		 big[] = "7fffffffffffffff\r\nabc";
	const char		*d;
	size_t			 used, dl;

	(void)state;
	/* Incomplete input: everything consumed, more needed. */
	assert_int_equal(chunk_rv(S("5\r\nhel")), HTTP1_CHUNK_MORE);
	assert_int_equal(chunk_rv(S("5\r\nhello\r\n0\r\n")), HTTP1_CHUNK_MORE);
	assert_int_equal(chunk_rv(S("5;a=\"x")), HTTP1_CHUNK_MORE);
	assert_int_equal(chunk_rv(S("")), HTTP1_CHUNK_MORE);

	/* The largest size accepted is 2^63-1; data comes as it arrives. */
	http1_chunked_init(&c);
	assert_int_equal(http1_chunked_decode(&c, S(big), &used, &d, &dl),
	    HTTP1_CHUNK_DATA);
	assert_int_equal(used, sizeof(big) - 1);
	assert_ptr_equal(d, big + 18);
	assert_int_equal(dl, 3);
	assert_int_equal(c.remaining, INT64_MAX - 3);
	assert_int_equal(http1_chunked_decode(&c, big, 0, &used, &d, &dl),
	    HTTP1_CHUNK_MORE);
	assert_int_equal(used, 0);
	assert_null(d);

	/* After the end, and after an error, the answer sticks. */
	http1_chunked_init(&c);
	assert_int_equal(http1_chunked_decode(&c, S("0\r\n\r\n"), &used, &d,
	    &dl), HTTP1_CHUNK_END);
	assert_int_equal(http1_chunked_decode(&c, S("5\r\n"), &used, &d, &dl),
	    HTTP1_CHUNK_END);
	assert_int_equal(used, 0);
	http1_chunked_init(&c);
	assert_int_equal(http1_chunked_decode(&c, S("x"), &used, &d, &dl),
	    HTTP1_E_CHUNK_SIZE);
	assert_int_equal(http1_chunked_decode(&c, S("0\r\n\r\n"), &used, &d,
	    &dl), HTTP1_E_CHUNK_SIZE);
}

static void
test_chunked_errors(void **state)
{
	static const struct test_case	tc[] = {
		CASE("negative", "-1\r\nx\r\n0\r\n\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("plus", "+5\r\nhello\r\n0\r\n\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("leading SP", " 5\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("leading HTAB", "\t5\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("trailing SP", "5 \r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("trailing HTAB", "5\t\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("SP before ext", "5 ;a\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("0x", "0x5\r\nhello\r\n0\r\n\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("empty size", "\r\nhello\r\n0\r\n\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("ext without size", ";a\r\n\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("non-hex", "g\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("2^64-1", "ffffffffffffffff\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("2^63", "8000000000000000\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("2^64", "10000000000000000\r\n", HTTP1_E_CHUNK_SIZE),
		CASE("bare LF size", "5\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("CR CR LF size", "5\r\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_SIZE),
		CASE("LF last chunk", "5\r\nhello\r\n0\n\n", HTTP1_E_CHUNK_SIZE),
		CASE("no CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_FRAMING),
		CASE("data too long", "5\r\nhello!\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_FRAMING),
		CASE("LF after data", "5\r\nhello\n0\r\n\r\n",
		    HTTP1_E_CHUNK_FRAMING),
		CASE("CR only after data", "5\r\nhello\r0\r\n\r\n",
		    HTTP1_E_CHUNK_FRAMING),
		CASE("SP in ext", "5; a=b\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("SP before =", "5;a =b\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("SP after =", "5;a= b\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("SP after ext", "5;a=b \r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("empty ext name", "5;=b\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("empty ext", "5;\r\nhello\r\n0\r\n\r\n", HTTP1_E_CHUNK_EXT),
		CASE("empty ext value", "5;a=\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("two =", "5;a=b=c\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("junk after quote", "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("CR in quote", "5;a=\"b\r\n\"\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("CTL after backslash", "5;a=\"\\\x01\"\r\nhello\r\n0\r\n"
		    "\r\n", HTTP1_E_CHUNK_EXT),
		CASE("NUL in quote", "5;a=\"\0\"\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("NUL in ext", "5;a\0\r\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("bare LF ext", "5;a\nhello\r\n0\r\n\r\n",
		    HTTP1_E_CHUNK_EXT),
		CASE("trailer SP colon", "0\r\nX : y\r\n\r\n", HTTP1_E_TRAILER),
		CASE("trailer fold", "0\r\nX: y\r\n z\r\n\r\n",
		    HTTP1_E_TRAILER),
		CASE("trailer no colon", "0\r\nX\r\n\r\n", HTTP1_E_TRAILER),
		CASE("trailer empty name", "0\r\n: y\r\n\r\n",
		    HTTP1_E_TRAILER),
		CASE("trailer NUL", "0\r\nX: \0\r\n\r\n", HTTP1_E_TRAILER),
		CASE("trailer DEL", "0\r\nX: \x7f\r\n\r\n", HTTP1_E_TRAILER),
		CASE("trailer bare LF", "0\r\nX: y\n\r\n", HTTP1_E_TRAILER),
		CASE("trailer bare CR", "0\r\nX: y\ry\r\n\r\n",
		    HTTP1_E_TRAILER),
		CASE("end bare LF", "0\r\n\n", HTTP1_E_TRAILER),
		CASE("end CR CR", "0\r\n\r\r\n", HTTP1_E_TRAILER),
	};

	(void)state;
	run_chunk_cases(tc, NCASES(tc));
}

static void
test_chunked_limits(void **state)
{
	struct sbuf	b;

	(void)state;
	/* The size line, CRLF included, is at most HTTP1_CHUNK_LINE_MAX. */
	sb_init(&b, HTTP1_CHUNK_LINE_MAX + 64);
	sb_str(&b, "1;a=");
	sb_fill(&b, 'x', HTTP1_CHUNK_LINE_MAX - 6);
	sb_str(&b, "\r\nZ\r\n0\r\n\r\n");
	assert_int_equal(chunk_rv(b.p, b.len), HTTP1_CHUNK_END);
	free(b.p);
	sb_init(&b, HTTP1_CHUNK_LINE_MAX + 64);
	sb_str(&b, "1;a=");
	sb_fill(&b, 'x', HTTP1_CHUNK_LINE_MAX - 5);
	sb_str(&b, "\r\nZ\r\n0\r\n\r\n");
	assert_int_equal(chunk_rv(b.p, b.len), HTTP1_E_CHUNK_EXT);
	/* ... and that is noticed before the CR arrives */
	assert_int_equal(chunk_rv(b.p, HTTP1_CHUNK_LINE_MAX - 1),
	    HTTP1_E_CHUNK_EXT);
	assert_int_equal(chunk_rv(b.p, HTTP1_CHUNK_LINE_MAX - 2),
	    HTTP1_CHUNK_MORE);
	free(b.p);

	/* The trailer section, final CRLF included, is at most 8192. */
	sb_init(&b, HTTP1_TRAILER_MAX + 64);
	sb_str(&b, "0\r\nX: ");
	sb_fill(&b, 'v', HTTP1_TRAILER_MAX - 7);
	sb_str(&b, "\r\n\r\n");
	assert_int_equal(chunk_rv(b.p, b.len), HTTP1_CHUNK_END);
	free(b.p);
	sb_init(&b, HTTP1_TRAILER_MAX + 64);
	sb_str(&b, "0\r\nX: ");
	sb_fill(&b, 'v', HTTP1_TRAILER_MAX - 6);
	sb_str(&b, "\r\n\r\n");
	assert_int_equal(chunk_rv(b.p, b.len), HTTP1_E_TRAILER);
	free(b.p);
}

/*
 * Small public helpers.
 */

/*
 * Every byte against the RFC's own definitions: the parser's classes are
 * a table, and a wrong entry would pass most other tests.
 */
static bool
rfc_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

static bool
rfc_field_char(int c)
{
	return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

static bool
rfc_host_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static void
test_byte_classes(void **state)
{
	char	b[3];
	int	c;

	(void)state;
	for (c = 0; c < 256; c++) {
		b[0] = 'a';
		b[1] = (char)c;
		b[2] = 'a';
		assert_int_equal(http1_is_token(b + 1, 1), rfc_tchar(c));
		/* inside a value, where SP and HTAB are allowed too */
		assert_int_equal(http1_is_field_value(b, 3),
		    rfc_field_char(c));
		assert_int_equal(http1_is_host(b, 3), rfc_host_char(c));
	}
}

static void
test_find_header(void **state)
{
	static struct http1_request	 req;
	const struct http1_header	*h;

	(void)state;
	assert_int_equal(req_parse(S(GET11 "X-Dup: 1\r\nx-dup: 2\r\n"
	    "Content-Type: text/plain\r\n\r\n"), &req), HTTP1_DONE);
	h = http1_find_header(req.headers, req.nheaders, "HOST");
	assert_ptr_equal(h, &req.headers[0]);
	h = http1_find_header(req.headers, req.nheaders, "x-DUP");
	assert_ptr_equal(h, &req.headers[1]);
	assert_slice(h->value, "1");
	assert_non_null(http1_find_header(req.headers, req.nheaders,
	    "content-type"));
	assert_null(http1_find_header(req.headers, req.nheaders, "Hos"));
	assert_null(http1_find_header(req.headers, req.nheaders, "Hostx"));
	assert_null(http1_find_header(req.headers, req.nheaders, "Content"));
	assert_null(http1_find_header(req.headers, req.nheaders, ""));
	assert_null(http1_find_header(req.headers, 0, "Host"));
}

static void
test_error_status(void **state)
{
	int	e;

	(void)state;
	assert_int_equal(http1_error_status(HTTP1_E_LINE_TOO_LONG), 414);
	assert_int_equal(http1_error_status(HTTP1_E_HEAD_TOO_LARGE), 431);
	assert_int_equal(http1_error_status(HTTP1_E_TOO_MANY_HEADERS), 431);
	assert_int_equal(http1_error_status(HTTP1_E_VERSION), 505);
	assert_int_equal(http1_error_status(HTTP1_E_EXPECT), 417);
	for (e = HTTP1_E_TRAILER; e <= HTTP1_E_REQUEST_LINE; e++) {
		if (e == HTTP1_E_LINE_TOO_LONG || e == HTTP1_E_HEAD_TOO_LARGE ||
		    e == HTTP1_E_TOO_MANY_HEADERS || e == HTTP1_E_VERSION ||
		    e == HTTP1_E_EXPECT)
			continue;
		assert_int_equal(http1_error_status(e), 400);
	}
	assert_int_equal(http1_error_status(-1000), 400);
}

static void
test_strerror(void **state)
{
	const char	*s, *t, *unknown = http1_strerror(1000);
	int		 e, f;

	(void)state;
	assert_string_equal(unknown, "unknown error");
	assert_ptr_equal(http1_strerror(-28), unknown);
	assert_ptr_equal(http1_strerror(2), unknown);
	for (e = HTTP1_E_TRAILER; e <= HTTP1_DONE; e++) {
		s = http1_strerror(e);
		assert_non_null(s);
		assert_true(s != unknown && strlen(s) > 0);
		for (f = HTTP1_E_TRAILER; f < e; f++) {
			t = http1_strerror(f);
			if (strcmp(s, t) == 0)
				fail_msg("%d and %d share \"%s\"", e, f, s);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_http10),
		cmocka_unit_test(test_absolute_form),
		cmocka_unit_test(test_absolute_form_bad),
		cmocka_unit_test(test_connect_options),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_replayable),
		cmocka_unit_test(test_many_headers),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_leading_crlf),
		cmocka_unit_test(test_request_line_limit),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_early_errors),
		cmocka_unit_test(test_request_line_errors),
		cmocka_unit_test(test_crlf_errors),
		cmocka_unit_test(test_field_errors),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_transfer_encoding),
		cmocka_unit_test(test_connection),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_websocket),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_response_framing),
		cmocka_unit_test(test_response_errors),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_chunked_incremental),
		cmocka_unit_test(test_chunked_errors),
		cmocka_unit_test(test_chunked_limits),
		cmocka_unit_test(test_byte_classes),
		cmocka_unit_test(test_find_header),
		cmocka_unit_test(test_error_status),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
