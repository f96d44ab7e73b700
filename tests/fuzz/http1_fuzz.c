/*
 * http1_fuzz.c - libFuzzer target for the HTTP/1.1 parser (src/http1.c).
 *
 * Each input is used whole, three ways: as a request head, as a response
 * head and as a chunked body.  Heads are parsed at once and again fed in
 * pieces whose sizes come from a hash of the input; every piece is given to
 * the parser in a fresh exact-size heap buffer (what a caller does after a
 * realloc), so ASan sees any read past the bytes received.  The two parses
 * must agree, and each result must satisfy the invariants the rest of the
 * proxy relies on; any violation abort()s.  When a head frames a chunked
 * body, the bytes after it are decoded as well.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Byte-at-a-time feeding costs a call per byte; keep it for short inputs. */
#define BYTEWISE_MAX	4096

/* Deterministic split points: xorshift64 seeded by a hash of the input. */
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t
seed_of(const uint8_t *d, size_t n)
{
	uint64_t	h = 14695981039346656037ULL;	/* FNV-1a */
	size_t		i;

	for (i = 0; i < n; i++) {
		h ^= d[i];
		h *= 1099511628211ULL;
	}
	return h != 0 ? h : 1;
}

/* Size of the next piece: mostly small, sometimes large. */
static size_t
next_step(uint64_t *s, size_t left)
{
	uint64_t	r = rng_next(s);
	size_t		step;

	switch (r & 3) {
	case 0:
		step = 1;
		break;
	case 1:
		step = 1 + (r >> 8) % 8;
		break;
	case 2:
		step = 1 + (r >> 8) % 64;
		break;
	default:
		step = 1 + (r >> 8) % 1024;
		break;
	}
	return step < left ? step : left;
}

static char *
copy(const char *p, size_t n)
{
	char	*c = malloc(n > 0 ? n : 1);

	CHECK(c != NULL);
	if (n > 0)
		memcpy(c, p, n);
	return c;
}

/*
 * Invariants.
 */

static bool
within(struct http1_slice s, const char *buf, size_t len)
{
	return s.p != NULL && s.p >= buf && s.len <= len &&
	    (size_t)(s.p - buf) <= len - s.len;
}

static bool
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static bool
name_is(const struct http1_header *h, const char *name)
{
	size_t	i, n = strlen(name);

	if (h->name.len != n)
		return false;
	for (i = 0; i < n; i++)
		if ((h->name.p[i] | 0x20) != name[i])
			return false;
	return true;
}

static size_t
count_fields(const struct http1_header *h, size_t n, const char *name)
{
	size_t	i, k = 0;

	for (i = 0; i < n; i++)
		if (name_is(&h[i], name))
			k++;
	return k;
}

/* http1_find_header() finds the first field of each name, in any case. */
static void
check_find_header(const struct http1_header *h, size_t nh)
{
	const struct http1_header	*f;
	char				 name[64], c;
	size_t				 i, j;

	for (i = 0; i < nh && i < 8; i++) {
		if (h[i].name.len >= sizeof(name))
			continue;
		for (j = 0; j < h[i].name.len; j++) {
			c = h[i].name.p[j];
			/* swap the case of ASCII letters in every other name */
			if ((i & 1) && (c | 0x20) >= 'a' && (c | 0x20) <= 'z')
				c ^= 0x20;
			name[j] = c;
		}
		name[j] = '\0';
		f = http1_find_header(h, nh, name);
		CHECK(f != NULL && f <= &h[i] && f->name.len == h[i].name.len);
	}
}

static void
check_headers(const struct http1_header *h, size_t nh, const char *buf,
    size_t head_len)
{
	unsigned char	c;
	size_t		i, j;

	for (i = 0; i < nh; i++) {
		CHECK(within(h[i].name, buf, head_len));
		CHECK(within(h[i].value, buf, head_len));
		CHECK(h[i].name.len > 0);
		for (j = 0; j < h[i].name.len; j++)
			CHECK(is_tchar(h[i].name.p[j]));
		/* the name is followed by ':' */
		CHECK(h[i].name.p[h[i].name.len] == ':');
		for (j = 0; j < h[i].value.len; j++) {
			c = h[i].value.p[j];
			CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		if (h[i].value.len > 0) {
			c = h[i].value.p[0];
			CHECK(c != ' ' && c != '\t');
			c = h[i].value.p[h[i].value.len - 1];
			CHECK(c != ' ' && c != '\t');
		}
	}
	check_find_header(h, nh);
	/* No framing ambiguity ever gets through. */
	CHECK(count_fields(h, nh, "content-length") <= 1);
	CHECK(count_fields(h, nh, "transfer-encoding") <= 1);
	CHECK(count_fields(h, nh, "content-length") == 0 ||
	    count_fields(h, nh, "transfer-encoding") == 0);
}

static void
check_head(const char *buf, size_t len, size_t head_len,
    const struct http1_limits *lim, size_t nh)
{
	size_t	i;

	CHECK(head_len >= 4 && head_len <= len);
	CHECK(head_len <= lim->max_head);
	CHECK(memcmp(buf + head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(nh <= lim->max_headers && nh <= HTTP1_MAX_HEADERS);
	/* CR and LF come only as pairs */
	for (i = 0; i < head_len; i++) {
		if (buf[i] == '\r')
			CHECK(i + 1 < head_len && buf[i + 1] == '\n');
		if (buf[i] == '\n')
			CHECK(i > 0 && buf[i - 1] == '\r');
	}
}

static void
check_host(struct http1_slice h)
{
	size_t	i;
	char	c;

	for (i = 0; i < h.len; i++) {
		c = h.p[i];
		CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || strchr("-._:[]", c) != NULL);
	}
}

static void
check_request(const struct http1_request *r, const char *buf, size_t len,
    const struct http1_limits *lim)
{
	size_t	i;

	check_head(buf, len, r->head_len, lim, r->nheaders);
	check_headers(r->headers, r->nheaders, buf, r->head_len);
	CHECK(r->minor_version == 0 || r->minor_version == 1);
	CHECK(within(r->method_str, buf, r->head_len) && r->method_str.len);
	CHECK(within(r->target, buf, r->head_len) && r->target.len > 0);
	for (i = 0; i < r->target.len; i++)
		CHECK(r->target.p[i] > 0x20 && r->target.p[i] < 0x7f &&
		    r->target.p[i] != '#');
	CHECK(within(r->path, buf, r->head_len) ||
	    (r->path.len == 1 && r->path.p[0] == '/') || r->path.len == 0);
	CHECK(r->host.len == 0 || within(r->host, buf, r->head_len));
	check_host(r->host);
	CHECK(r->minor_version == 0 || r->host.len > 0);
	CHECK(count_fields(r->headers, r->nheaders, "host") <= 1);
	CHECK(r->body == HTTP1_BODY_NONE || r->body == HTTP1_BODY_LENGTH ||
	    r->body == HTTP1_BODY_CHUNKED);
	CHECK(r->body == HTTP1_BODY_LENGTH || r->content_length == 0);
	CHECK(r->content_length <= INT64_MAX);
	CHECK(r->body != HTTP1_BODY_CHUNKED || r->minor_version == 1);
	CHECK((r->target_form == HTTP1_TARGET_AUTHORITY) ==
	    (r->method == HTTP1_METHOD_CONNECT));
	CHECK(r->target_form != HTTP1_TARGET_ASTERISK ||
	    r->method == HTTP1_METHOD_OPTIONS);
	if (r->target_form == HTTP1_TARGET_ORIGIN ||
	    r->target_form == HTTP1_TARGET_ABSOLUTE)
		CHECK(r->path.len > 0 && r->path.p[0] == '/');
	CHECK(!r->upgrade_websocket || (r->method == HTTP1_METHOD_GET &&
	    r->minor_version == 1));
	CHECK(!r->expect_continue || r->minor_version == 1);
}

static void
check_response(const struct http1_response *r, const char *buf, size_t len,
    const struct http1_limits *lim, enum http1_method m)
{
	check_head(buf, len, r->head_len, lim, r->nheaders);
	check_headers(r->headers, r->nheaders, buf, r->head_len);
	CHECK(r->minor_version == 0 || r->minor_version == 1);
	CHECK(r->status >= 100 && r->status <= 599);
	CHECK(r->reason.len == 0 || within(r->reason, buf, r->head_len));
	CHECK(r->body == HTTP1_BODY_LENGTH || r->content_length == 0);
	CHECK(r->content_length <= INT64_MAX);
	if (m == HTTP1_METHOD_HEAD || r->status < 200 || r->status == 204 ||
	    r->status == 304)
		CHECK(r->body == HTTP1_BODY_NONE);
	if (m == HTTP1_METHOD_CONNECT && r->status / 100 == 2)
		CHECK(r->body == HTTP1_BODY_NONE && !r->keep_alive);
	CHECK(r->body != HTTP1_BODY_CLOSE || !r->keep_alive);
	CHECK(r->body != HTTP1_BODY_CHUNKED || r->minor_version == 1);
}

/*
 * Comparing a one-shot parse with an incremental one (different buffers).
 */

static void
same_slice(struct http1_slice a, const char *abase, struct http1_slice b,
    const char *bbase, size_t n)
{
	CHECK(a.len == b.len);
	if (a.p >= abase && a.p <= abase + n)
		CHECK(b.p - bbase == a.p - abase);
	else
		CHECK(a.p == b.p);
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
same_request(const struct http1_request *a, const char *abase,
    const struct http1_request *b, const char *bbase, size_t n)
{
	CHECK(a->method == b->method);
	same_slice(a->method_str, abase, b->method_str, bbase, n);
	CHECK(a->target_form == b->target_form);
	same_slice(a->target, abase, b->target, bbase, n);
	same_slice(a->path, abase, b->path, bbase, n);
	same_slice(a->host, abase, b->host, bbase, n);
	CHECK(a->minor_version == b->minor_version);
	CHECK(a->nheaders == b->nheaders);
	same_headers(a->headers, abase, b->headers, bbase, a->nheaders, n);
	CHECK(a->body == b->body && a->content_length == b->content_length);
	CHECK(a->keep_alive == b->keep_alive);
	CHECK(a->expect_continue == b->expect_continue);
	CHECK(a->upgrade_websocket == b->upgrade_websocket);
	CHECK(a->head_len == b->head_len);
}

static void
same_response(const struct http1_response *a, const char *abase,
    const struct http1_response *b, const char *bbase, size_t n)
{
	CHECK(a->minor_version == b->minor_version);
	CHECK(a->status == b->status);
	same_slice(a->reason, abase, b->reason, bbase, n);
	CHECK(a->nheaders == b->nheaders);
	same_headers(a->headers, abase, b->headers, bbase, a->nheaders, n);
	CHECK(a->body == b->body && a->content_length == b->content_length);
	CHECK(a->keep_alive == b->keep_alive);
	CHECK(a->head_len == b->head_len);
}

/*
 * Chunked bodies.
 */

struct chunk_run {
	int	 rv;
	uint8_t	*data;
	size_t	 dlen;
	size_t	 used;		/* input consumed (meaningful on END) */
};

/* Decode in[0..n) in pieces sized from *seed, or at once if seed is NULL. */
static void
chunk_run(const char *in, size_t n, uint64_t *seed, struct chunk_run *o)
{
	struct http1_chunked	 c;
	const char		*d;
	char			*piece;
	size_t			 off = 0, plen, pos, used, dl;
	int			 rv = HTTP1_CHUNK_MORE;

	o->data = malloc(n > 0 ? n : 1);
	CHECK(o->data != NULL);
	o->dlen = 0;
	http1_chunked_init(&c);
	while (off < n && rv == HTTP1_CHUNK_MORE) {
		plen = seed != NULL ? next_step(seed, n - off) : n - off;
		piece = copy(in + off, plen);
		pos = 0;
		do {
			rv = http1_chunked_decode(&c, piece + pos, plen - pos,
			    &used, &d, &dl);
			CHECK(used <= plen - pos);
			if (rv == HTTP1_CHUNK_DATA) {
				CHECK(dl > 0 && d == piece + pos + used - dl);
				CHECK(o->dlen + dl <= n);
				memcpy(o->data + o->dlen, d, dl);
				o->dlen += dl;
			} else
				CHECK(d == NULL && dl == 0);
			if (rv == HTTP1_CHUNK_MORE)
				CHECK(used == plen - pos);
			pos += used;
		} while (rv == HTTP1_CHUNK_DATA);
		free(piece);
		off += pos;
	}
	CHECK(rv == HTTP1_CHUNK_MORE || rv == HTTP1_CHUNK_END ||
	    (rv <= HTTP1_E_CHUNK_SIZE && rv >= HTTP1_E_TRAILER));
	/* the end and errors stick, whatever comes next */
	if (rv != HTTP1_CHUNK_MORE) {
		CHECK(http1_chunked_decode(&c, in, n, &used, &d, &dl) == rv);
		CHECK(used == 0 && d == NULL && dl == 0);
	}
	o->rv = rv;
	o->used = off;
}

static void
fuzz_chunked(const char *in, size_t n, uint64_t seed)
{
	struct chunk_run	a, b;

	chunk_run(in, n, NULL, &a);
	chunk_run(in, n, &seed, &b);
	CHECK(a.rv == b.rv);
	CHECK(a.dlen == b.dlen && memcmp(a.data, b.data, a.dlen) == 0);
	if (a.rv == HTTP1_CHUNK_END) {
		CHECK(a.used == b.used && a.used <= n);
		/* the body ends with the CRLF that closes the trailers */
		CHECK(a.used >= 5 && memcmp(in + a.used - 2, "\r\n", 2) == 0);
	}
	free(a.data);
	free(b.data);
}

/*
 * Heads.
 */

/*
 * Feed in[0..n) in growing prefixes: with a seed, each prefix is a fresh
 * exact-size copy; without, one byte more each time, from in itself.
 * *outbuf is the buffer the result points into (free it if != in).
 */
static int
req_pieces(const char *in, size_t n, const struct http1_limits *lim,
    uint64_t *seed, struct http1_request *out, char **outbuf)
{
	struct http1_parser	 p;
	char			*buf = NULL;
	size_t			 len = 0;
	int			 rv = HTTP1_INCOMPLETE;

	http1_parser_init(&p);
	do {
		free(buf);
		buf = NULL;
		len += seed != NULL ? next_step(seed, n - len) : 1;
		if (len > n)
			len = n;
		if (seed != NULL)
			buf = copy(in, len);
		rv = http1_parse_request(&p, buf != NULL ? buf : in, len, lim,
		    out);
		CHECK(rv <= HTTP1_DONE && rv >= HTTP1_E_TRAILER);
	} while (rv == HTTP1_INCOMPLETE && len < n);
	/* asking again, even with more bytes, repeats the answer */
	if (rv != HTTP1_INCOMPLETE)
		CHECK(http1_parse_request(&p, buf != NULL ? buf : in,
		    buf != NULL ? len : n, lim, out) == rv);
	*outbuf = buf;
	return rv;
}

static void
fuzz_request(const char *in, size_t n, const struct http1_limits *lim,
    uint64_t seed)
{
	static struct http1_request	 a, b;
	struct http1_limits		 def;
	struct http1_parser		 p;
	char				*buf;
	int				 rv, rv2;

	http1_limits_default(&def);
	http1_parser_init(&p);
	rv = http1_parse_request(&p, in, n, lim, &a);
	CHECK(rv <= HTTP1_DONE && rv >= HTTP1_E_TRAILER);
	/* never a response or body error */
	CHECK(rv > HTTP1_E_STATUS_LINE);
	if (rv == HTTP1_DONE)
		check_request(&a, in, n, lim != NULL ? lim : &def);

	rv2 = req_pieces(in, n, lim, &seed, &b, &buf);
	CHECK(rv2 == rv);
	if (rv == HTTP1_DONE)
		same_request(&a, in, &b, buf, n);
	free(buf);
	if (n <= BYTEWISE_MAX) {
		rv2 = req_pieces(in, n, lim, NULL, &b, &buf);
		CHECK(rv2 == rv && buf == NULL);
		if (rv == HTTP1_DONE)
			same_request(&a, in, &b, in, n);
	}
	if (rv == HTTP1_DONE && a.body == HTTP1_BODY_CHUNKED)
		fuzz_chunked(in + a.head_len, n - a.head_len, seed);
}

static void
fuzz_response(const char *in, size_t n, const struct http1_limits *lim,
    enum http1_method m, uint64_t seed)
{
	static struct http1_response	 a, b;
	struct http1_limits		 def;
	struct http1_parser		 p;
	char				*buf = NULL;
	size_t				 len = 0;
	int				 rv, rv2 = HTTP1_INCOMPLETE;

	http1_limits_default(&def);
	http1_parser_init(&p);
	rv = http1_parse_response(&p, in, n, lim, m, &a);
	CHECK(rv <= HTTP1_DONE && rv >= HTTP1_E_STATUS_LINE);
	/* never an error that only a request can have */
	CHECK(rv != HTTP1_E_REQUEST_LINE && rv != HTTP1_E_METHOD &&
	    rv != HTTP1_E_TARGET && rv != HTTP1_E_EXPECT &&
	    (rv > HTTP1_E_HOST_MISSING || rv < HTTP1_E_HOST_INVALID));
	if (rv == HTTP1_DONE)
		check_response(&a, in, n, lim != NULL ? lim : &def, m);

	http1_parser_init(&p);
	do {
		free(buf);
		len += next_step(&seed, n - len);
		buf = copy(in, len);
		rv2 = http1_parse_response(&p, buf, len, lim, m, &b);
	} while (rv2 == HTTP1_INCOMPLETE && len < n);
	CHECK(rv2 == rv);
	if (rv == HTTP1_DONE)
		same_response(&a, in, &b, buf, n);
	free(buf);
	if (rv == HTTP1_DONE && a.body == HTTP1_BODY_CHUNKED)
		fuzz_chunked(in + a.head_len, n - a.head_len, seed);
}

/* Small limits, so that inputs of fuzzer size reach every limit check. */
static void
small_limits(struct http1_limits *lim, uint64_t seed)
{
	lim->max_request_line = 1 + seed % 64;
	lim->max_head = 1 + (seed >> 8) % 512;
	lim->max_headers = (seed >> 20) % 12;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http1_method	methods[] = {
		HTTP1_METHOD_GET, HTTP1_METHOD_HEAD, HTTP1_METHOD_CONNECT,
	};
	const char		*in = (const char *)data;
	struct http1_limits	 lim, small;
	uint64_t		 seed = seed_of(data, size);

	http1_limits_default(&lim);
	small_limits(&small, seed);

	/* NULL limits are the defaults */
	fuzz_request(in, size, (seed & 32) ? NULL : &lim, seed);
	fuzz_request(in, size, &small, seed ^ 0x5bd1e995);
	fuzz_response(in, size, (seed & 32) ? NULL : &lim, methods[seed % 3],
	    seed);
	fuzz_response(in, size, &small, HTTP1_METHOD_GET, seed ^ 0x5bd1e995);
	fuzz_chunked(in, size, seed);

	/* Pure functions: these must not care what they are given. */
	(void)http1_strerror((int)(seed % 64) - 32);
	CHECK(http1_error_status((int)(seed % 64) - 32) >= 400);
	return 0;
}
