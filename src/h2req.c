/*
 * h2req.c - HTTP/2 request blocks to HTTP/1.1 requests (see h2req.h).
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2req.h"
#include "headers.h"
#include "util.h"

/* What each field costs against max_bytes beyond its bytes (as HPACK). */
#define FIELD_OVERHEAD	32

void
h2req_init(struct h2req *r, size_t max_bytes, size_t max_fields)
{
	/* The field arrays are written before they are read: only the
	   rest is cleared (they are most of the structure). */
	memset(r, 0, offsetof(struct h2req, f));
	r->max_bytes = max_bytes;
	r->max_fields = MINIMUM(max_fields, (size_t)H2REQ_MAX_FIELDS);
}

void
h2req_reuse(struct h2req *r, size_t max_bytes, size_t max_fields)
{
	char *store = r->store;
	size_t cap = r->cap;

	h2req_init(r, max_bytes, max_fields);
	r->store = store;
	r->cap = cap;
}

void
h2req_free(struct h2req *r)
{
	free(r->store);
	r->store = NULL;
	r->used = r->cap = 0;
}

static int
fail(struct h2req *r, int status)
{
	if (r->status == 0)
		r->status = status;
	return r->status;
}

/* Room for len more bytes in the store (which may move). */
static int
grow(struct h2req *r, size_t len)
{
	if (len > UINT32_MAX || r->used + len > UINT32_MAX)
		return -1;
	if (r->used + len > r->cap) {
		size_t cap = r->cap > 0 ? r->cap : 512;
		char *n;

		while (cap < r->used + len)
			cap *= 2;
		if ((n = realloc(r->store, cap)) == NULL)
			return -1;
		r->store = n;
		r->cap = cap;
	}
	return 0;
}

/* Copy bytes (never from the store itself) into it; -1 if out of memory. */
static int
keep(struct h2req *r, const char *p, size_t len, struct h2req_span *sp)
{
	if (grow(r, len) == -1)
		return -1;
	if (len > 0)
		memcpy(r->store + r->used, p, len);
	sp->off = (uint32_t)r->used;
	sp->len = (uint32_t)len;
	r->used += len;
	return 0;
}

static bool
is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static bool
lower_token(const char *s, size_t n)
{
	size_t i;

	if (!http1_is_token(s, n))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return false;
	return true;
}

/* Origin-form as our parser takes it: "/" then visible ASCII. */
static bool
valid_path(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] != '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
		    s[i] == '#')
			return false;
	return true;
}

/* 1*DIGIT, no more than 2^62 (what our parser takes too). */
static bool
parse_length(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static int
pseudo(struct h2req *r, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	struct h2req_span *sp;
	bool *seen;

	if (r->regular)
		return fail(r, 400);	/* pseudo-fields come first */
	if (is(name, nlen, ":method")) {
		sp = &r->method;
		seen = &r->has_method;
		if (!http1_is_token(value, vlen))
			return fail(r, 400);
	} else if (is(name, nlen, ":path")) {
		sp = &r->path;
		seen = &r->has_path;
		if (!is(value, vlen, "*") && !valid_path(value, vlen))
			return fail(r, 400);
	} else if (is(name, nlen, ":authority")) {
		sp = &r->authority;
		seen = &r->has_authority;
		if (!http1_is_host(value, vlen))
			return fail(r, 400);
	} else if (is(name, nlen, ":protocol")) {
		/* Extended CONNECT: WebSocket only. */
		if (r->has_protocol || !is(value, vlen, "websocket"))
			return fail(r, 400);
		r->has_protocol = true;
		return 0;
	} else if (is(name, nlen, ":scheme")) {
		if (r->has_scheme || !is(value, vlen, "https"))
			return fail(r, 400);
		r->has_scheme = true;
		return 0;
	} else
		return fail(r, 400);	/* :status, unknown */
	if (*seen)
		return fail(r, 400);
	*seen = true;
	if (keep(r, value, vlen, sp) == -1)
		return fail(r, 500);
	return 0;
}

int
h2req_field(struct h2req *r, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	struct h2req_field *f;

	if (r->status != 0)
		return r->status;
	r->bytes += nlen + vlen + FIELD_OVERHEAD;
	if (r->bytes > r->max_bytes)
		return fail(r, 431);
	if (nlen > 0 && name[0] == ':')
		return pseudo(r, name, nlen, value, vlen);
	r->regular = true;
	if (!lower_token(name, nlen) || !http1_is_field_value(value, vlen))
		return fail(r, 400);
	/* Connection-specific fields are malformed in HTTP/2 (RFC 9113
	   8.2.2); TE may only say "trailers". */
	if (is(name, nlen, "connection") || is(name, nlen, "keep-alive") ||
	    is(name, nlen, "proxy-connection") ||
	    is(name, nlen, "transfer-encoding") || is(name, nlen, "upgrade") ||
	    (is(name, nlen, "te") && !is(value, vlen, "trailers")) ||
	    is(name, nlen, "sec-websocket-key"))	/* ours, for WebSocket */
		return fail(r, 400);
	if (is(name, nlen, "content-length")) {
		if (r->has_cl || !parse_length(value, vlen,
		    &r->content_length))
			return fail(r, 400);
		r->has_cl = true;
	}
	if (is(name, nlen, "host")) {
		if (r->has_host || !http1_is_host(value, vlen))
			return fail(r, 400);
		r->has_host = true;
		if (keep(r, value, vlen, &r->host) == -1)
			return fail(r, 500);
		return 0;	/* Host is made from the authority */
	}
	if (r->nf >= r->max_fields)
		return fail(r, 431);
	f = &r->f[r->nf];
	if (keep(r, name, nlen, &f->name) == -1 ||
	    keep(r, value, vlen, &f->value) == -1)
		return fail(r, 500);
	f->cookie = is(name, nlen, "cookie");
	r->ncookies += f->cookie;
	r->nf++;
	return 0;
}

static struct http1_slice
slice(const struct h2req *r, struct h2req_span sp)
{
	return (struct http1_slice){ r->store + sp.off, sp.len };
}

/* Cookie crumbs become one field (RFC 9113 8.2.3), where the first was. */
static int
join_cookies(struct h2req *r)
{
	struct h2req_span joined = { 0, 0 };
	size_t i, first = r->nf, n = 0;
	bool started = false;

	if (r->ncookies < 2)
		return 0;
	/* The crumbs are in the store: make room first, so that copying
	   them does not move it under our feet. */
	for (i = 0; i < r->nf; i++)
		if (r->f[i].cookie)
			n += r->f[i].value.len + 2;
	if (grow(r, n) == -1)
		return -1;
	n = 0;
	for (i = 0; i < r->nf; i++) {
		struct h2req_span sp;

		if (!r->f[i].cookie)
			continue;
		if (first == r->nf)
			first = i;
		/* An empty crumb adds nothing (and a trailing "; " would not
		   survive HTTP/1.1 parsing unchanged). */
		if (r->f[i].value.len == 0)
			continue;
		/* Room was made above: the store does not move here. */
		if ((started && keep(r, "; ", 2, &sp) == -1) ||
		    keep(r, r->store + r->f[i].value.off, r->f[i].value.len,
		    &sp) == -1)
			return -1;
		if (!started)
			joined.off = sp.off;
		started = true;
	}
	joined.len = started ? (uint32_t)(r->used - joined.off) : 0;
	r->f[first].value = joined;
	for (i = 0; i < r->nf; i++)
		if (!r->f[i].cookie || i == first)
			r->f[n++] = r->f[i];
	r->nf = n;
	r->ncookies = 1;
	return 0;
}

bool
h2req_wants_key(const struct h2req *r)
{
	return r->has_protocol;
}

void
h2req_set_key(struct h2req *r, const char *key24)
{
	snprintf(r->ws_key, sizeof(r->ws_key), "%s", key24);
}

int
h2req_finish(struct h2req *r, bool end_stream, struct headers_request *pr)
{
	size_t i;

	memset(pr, 0, sizeof(*pr));
	if (r->status != 0)
		return r->status;
	if (!r->has_method)
		return fail(r, 400);
	pr->method = slice(r, r->method);
	pr->method_id = http1_method_lookup(pr->method.p, pr->method.len);
	if (r->has_authority)
		pr->host = slice(r, r->authority);
	else if (r->has_host)
		pr->host = slice(r, r->host);
	else
		return fail(r, 400);
	if (r->has_protocol) {
		/* Extended CONNECT (RFC 8441 4): all four pseudo-fields. */
		if (pr->method_id != HTTP1_METHOD_CONNECT || !r->has_path ||
		    !r->has_scheme || !r->has_authority ||
		    r->ws_key[0] == '\0' || is(r->store + r->path.off,
		    r->path.len, "*"))
			return fail(r, 400);
	} else if (pr->method_id == HTTP1_METHOD_CONNECT) {
		/* Plain CONNECT: only :method and :authority (RFC 9113 8.5). */
		if (r->has_path || r->has_scheme || !r->has_authority)
			return fail(r, 400);
		return 0;
	}
	if (!r->has_path || !r->has_scheme)
		return fail(r, 400);
	pr->path = slice(r, r->path);
	if (is(pr->path.p, pr->path.len, "*") &&
	    pr->method_id != HTTP1_METHOD_OPTIONS)
		return fail(r, 400);
	if (join_cookies(r) == -1)
		return fail(r, 500);
	/* Slices only now: the store no longer moves. */
	pr->method = slice(r, r->method);
	pr->path = slice(r, r->path);
	pr->host = r->has_authority ? slice(r, r->authority) :
	    slice(r, r->host);
	for (i = 0; i < r->nf; i++) {
		r->out[i].name = slice(r, r->f[i].name);
		r->out[i].value = slice(r, r->f[i].value);
	}
	pr->fields = r->out;
	pr->nfields = r->nf;
	if (r->has_protocol) {
		/* Bytes after it are the tunnel's, not a body. */
		if (r->has_cl)
			return fail(r, 400);
		pr->method = (struct http1_slice){ "GET", 3 };
		pr->method_id = HTTP1_METHOD_GET;
		pr->websocket = true;
		pr->framing = HEADERS_FRAME_NONE;
		r->out[r->nf].name = (struct http1_slice){
		    "sec-websocket-key", 17 };
		r->out[r->nf].value = (struct http1_slice){ r->ws_key,
		    strlen(r->ws_key) };
		pr->nfields++;
		return 0;
	}
	if (r->has_cl) {
		if (end_stream && r->content_length > 0)
			return fail(r, 400);
		pr->framing = HEADERS_FRAME_LENGTH;
		pr->content_length = r->content_length;
	} else
		pr->framing = end_stream ? HEADERS_FRAME_NONE :
		    HEADERS_FRAME_CHUNKED;
	return 0;
}

static bool
same(struct http1_slice a, struct http1_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Is h the field called lit, with the value v (unless NULL)? */
#define field_is(h, lit, v)						\
	(UTIL_LIT_IS((h)->name.p, (h)->name.len, lit) &&		\
	    ((v) == NULL || is((h)->value.p, (h)->value.len, (v))))

/*
 * A client-auth site's X-Client-* fields from req's field k on, each with
 * its value: the index after them, or 0 if they are not all there.
 */
static size_t
client_cert_fields(const struct headers_client_cert *cc,
    const struct http1_request *req, size_t k)
{
	const struct {
		const char	*name;
		const char	*value;
	} f[] = {
		{ "x-client-verify", cc->verify },
		{ "x-client-subject", cc->subject },
		{ "x-client-issuer", cc->issuer },
		{ "x-client-serial", cc->serial },
		{ "x-client-cert-fingerprint", cc->fingerprint },
	};
	size_t i, n = strcmp(cc->verify, "SUCCESS") == 0 ? nitems(f) : 1;

	for (i = 0; i < n; i++, k++)
		if (k >= req->nheaders || !util_strcaseeq(
		    req->headers[k].name.p, req->headers[k].name.len,
		    f[i].name, strlen(f[i].name)) ||
		    !is(req->headers[k].value.p, req->headers[k].value.len,
		    f[i].value))
			return 0;
	return k;
}

int
h2req_check(const struct headers_request *pr, struct buf *scratch)
{
	struct http1_request req;
	struct http1_parser p;
	struct http1_limits lim;
	size_t i, k;

	buf_reset(scratch);
	if (headers_request_head(scratch, pr) == -1)
		return -1;
	http1_parser_init(&p);
	lim.max_request_line = buf_len(scratch);
	lim.max_head = buf_len(scratch);
	lim.max_headers = HTTP1_MAX_HEADERS;
	if (http1_parse_request(&p, buf_data(scratch), buf_len(scratch), &lim,
	    &req) != HTTP1_DONE || req.head_len != buf_len(scratch))
		return -1;
	if (!same(req.method_str, pr->method) || req.method != pr->method_id ||
	    (req.target_form != HTTP1_TARGET_ORIGIN && !(req.target_form ==
	    HTTP1_TARGET_ASTERISK && pr->method_id == HTTP1_METHOD_OPTIONS)) ||
	    !same(req.target, pr->path) || !same(req.host, pr->host) ||
	    req.minor_version != 1 || req.expect_continue)
		return -1;
	switch (pr->framing) {
	case HEADERS_FRAME_LENGTH:
		if (req.body != HTTP1_BODY_LENGTH ||
		    req.content_length != pr->content_length)
			return -1;
		break;
	case HEADERS_FRAME_CHUNKED:
		if (req.body != HTTP1_BODY_CHUNKED)
			return -1;
		break;
	default:
		if (req.body != HTTP1_BODY_NONE)
			return -1;
	}
	/* Host, then the forwarded fields in order, unchanged, then only
	   what the proxy adds. */
	if (req.nheaders == 0 || !field_is(&req.headers[0], "host", NULL))
		return -1;
	k = 1;
	for (i = 0; i < pr->nfields; i++) {
		if (!headers_request_forwards(&pr->fields[i], pr->fields,
		    pr->nfields))
			continue;
		if (k >= req.nheaders ||
		    !same(req.headers[k].name, pr->fields[i].name) ||
		    !same(req.headers[k].value, pr->fields[i].value))
			return -1;
		k++;
	}
	if (k + 5 > req.nheaders ||
	    !field_is(&req.headers[k], "x-real-ip", pr->client_ip) ||
	    !field_is(&req.headers[k + 1], "x-forwarded-for", pr->client_ip) ||
	    !field_is(&req.headers[k + 2], "x-forwarded-proto",
	    pr->tls ? "https" : "http") ||
	    !field_is(&req.headers[k + 3], "x-forwarded-host", NULL) ||
	    !same(req.headers[k + 3].value, pr->host) ||
	    !field_is(&req.headers[k + 4], "x-forwarded-port", NULL))
		return -1;
	k += 5;
	if (pr->framing == HEADERS_FRAME_LENGTH || pr->framing ==
	    HEADERS_FRAME_CHUNKED)
		k++;
	if (pr->client_cert != NULL && (k = client_cert_fields(pr->client_cert,
	    &req, k)) == 0)
		return -1;
	if (pr->websocket)
		k += 2;
	return k == req.nheaders ? 0 : -1;
}
