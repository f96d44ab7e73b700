/*
 * headers_fuzz.c - whatever request head our parser accepts, the head we
 * send upstream for it must re-parse, with the same strict parser, as
 * exactly one request: same method, path and host, our framing, none of
 * the fields we promise to drop (hop-by-hop, proxy-trust), and the
 * forwarding fields we set, once each.  The same holds for response
 * heads we send clients.  And with the request's fields taken as the
 * configuration's (those headers_option_check() accepts as
 * response-header, hide-response-header and request-header): each
 * configured field is there exactly once with its value, no hidden one
 * is, and the head still re-parses as one message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "headers.h"
#include "http1.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
slice_eq(struct http1_slice a, struct http1_slice b)
{
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static const struct http1_limits relaxed = {
	.max_request_line = 65536,
	.max_head = 1 << 20,
	.max_headers = HTTP1_MAX_HEADERS,
};

static const char *const dropped[] = {
	"connection", "keep-alive", "proxy-connection", "te", "trailer",
	"transfer-encoding", "upgrade", "expect", "forwarded",
	"x-forwarded-prefix", "x-forwarded-scheme", "x-forwarded-ssl",
	"x-forwarded-server", "x-forwarded-uri", "front-end-https",
	"x-original-url", "x-rewrite-url", "x-original-host",
	"true-client-ip", "x-client-ip", "client-ip", "x-cluster-client-ip",
	"x-real-port", "x-url-scheme",
};

/* Set by the proxy: exactly one each, whatever the client sent. */
static const char *const ours[] = {
	"x-real-ip", "x-forwarded-for", "x-forwarded-proto",
	"x-forwarded-host", "x-forwarded-port",
};

static void
check_request(const struct http1_request *in, struct buf *out)
{
	struct http1_parser p;
	static struct http1_request re;
	const struct http1_header *h;
	size_t i, j, k;

	/* The input met the default limits; we add a few fields to it. */
	http1_parser_init(&p);
	check(http1_parse_request(&p, buf_data(out), buf_len(out), &relaxed,
	    &re) == HTTP1_DONE);
	check(re.head_len == buf_len(out));
	check(slice_eq(re.method_str, in->method_str));
	check(slice_eq(re.path, in->path));
	check(slice_eq(re.host, in->host));
	check(re.minor_version == 1 && re.body == in->body);
	if (in->body == HTTP1_BODY_LENGTH)
		check(re.content_length == in->content_length);
	for (i = 0; i < nitems(dropped); i++) {
		if (in->upgrade_websocket && (strcmp(dropped[i], "upgrade") ==
		    0 || strcmp(dropped[i], "connection") == 0))
			continue;
		/* Our own framing; the parser already refuses two of them. */
		if (in->body == HTTP1_BODY_CHUNKED &&
		    strcmp(dropped[i], "transfer-encoding") == 0)
			continue;
		check(http1_find_header(re.headers, re.nheaders, dropped[i]) ==
		    NULL);
	}
	for (i = 0; i < re.nheaders; i++)
		check(memchr(re.headers[i].name.p, '_',
		    re.headers[i].name.len) == NULL);
	h = http1_find_header(re.headers, re.nheaders, "x-forwarded-for");
	check(h != NULL && h->value.len == 9 && memcmp(h->value.p, "192.0.2.1",
	    9) == 0);
	h = http1_find_header(re.headers, re.nheaders, "x-forwarded-port");
	check(h != NULL && h->value.len == 4 && memcmp(h->value.p, "8443",
	    4) == 0);
	h = http1_find_header(re.headers, re.nheaders, "x-forwarded-host");
	check(h != NULL && slice_eq(h->value, in->host));
	/* Exactly one of each: the client's cannot survive beside ours. */
	for (k = 0; k < nitems(ours); k++) {
		for (i = 0, j = 0; i < re.nheaders; i++)
			j += util_strcaseeq(re.headers[i].name.p,
			    re.headers[i].name.len, ours[k], strlen(ours[k]));
		check(j == 1);
	}
}

static void
check_response(const struct http1_request *in, struct buf *out)
{
	struct http1_parser p;
	static struct http1_response re;

	http1_parser_init(&p);
	check(http1_parse_response(&p, buf_data(out), buf_len(out), &relaxed,
	    HTTP1_METHOD_GET, &re) == HTTP1_DONE);
	check(re.head_len == buf_len(out) && re.status == 200);
	check(re.body == HTTP1_BODY_CHUNKED);
	(void)in;
}

/* The fields of f[0..n) that option opt accepts, no name twice. */
static size_t
configured(const struct http1_header *f, size_t n, enum headers_option opt,
    struct http1_header *out)
{
	size_t i, j, k = 0;

	for (i = 0; i < n && k < HEADERS_EDIT_MAX; i++) {
		if (headers_option_check(opt, f[i].name.p, f[i].name.len,
		    opt == HEADERS_OPT_HIDE ? NULL : f[i].value.p,
		    f[i].value.len) != NULL)
			continue;
		for (j = 0; j < k; j++)
			if (util_strcaseeq(out[j].name.p, out[j].name.len,
			    f[i].name.p, f[i].name.len))
				break;
		if (j == k)
			out[k++] = f[i];
	}
	return k;
}

/* How many fields of h[0..n) are named name, and whether one has value. */
static size_t
count_named(const struct http1_header *h, size_t n, struct http1_slice name,
    struct http1_slice value, bool *with_value)
{
	size_t i, c = 0;

	*with_value = false;
	for (i = 0; i < n; i++) {
		if (!util_strcaseeq(h[i].name.p, h[i].name.len, name.p,
		    name.len))
			continue;
		c++;
		if (slice_eq(h[i].value, value))
			*with_value = true;
	}
	return c;
}

/* The heads with the request's fields as the configured ones. */
static void
check_edits(const struct http1_request *in, struct headers_request *hr,
    struct buf *out)
{
	static struct http1_header add[HEADERS_EDIT_MAX];
	static struct http1_header hide[HEADERS_EDIT_MAX];
	static struct http1_request rq;
	static struct http1_response rs;
	struct headers_edit e = { add, 0, hide, 0 };
	struct headers_response rr;
	struct http1_parser p;
	size_t i;
	bool v;

	e.nadd = configured(in->headers, in->nheaders, HEADERS_OPT_REQUEST,
	    add);
	hr->edit = &e;
	buf_reset(out);
	check(headers_request_head(out, hr) == 0);
	check_request(in, out);
	http1_parser_init(&p);
	check(http1_parse_request(&p, buf_data(out), buf_len(out), &relaxed,
	    &rq) == HTTP1_DONE);
	for (i = 0; i < e.nadd; i++)
		check(count_named(rq.headers, rq.nheaders, add[i].name,
		    add[i].value, &v) == 1 && v);

	e.nadd = configured(in->headers, in->nheaders, HEADERS_OPT_RESPONSE,
	    add);
	e.nhide = configured(in->headers, in->nheaders, HEADERS_OPT_HIDE,
	    hide);
	buf_reset(out);
	memset(&rr, 0, sizeof(rr));
	rr.status = 200;
	rr.fields = in->headers;
	rr.nfields = in->nheaders;
	rr.framing = HEADERS_FRAME_CHUNKED;
	rr.edit = &e;
	check(headers_response_head(out, &rr) == 0);
	http1_parser_init(&p);
	check(http1_parse_response(&p, buf_data(out), buf_len(out), &relaxed,
	    HTTP1_METHOD_GET, &rs) == HTTP1_DONE);
	check(rs.head_len == buf_len(out) && rs.body == HTTP1_BODY_CHUNKED);
	for (i = 0; i < e.nadd; i++)
		check(count_named(rs.headers, rs.nheaders, add[i].name,
		    add[i].value, &v) == 1 && v);
	for (i = 0; i < e.nhide; i++)
		check(count_named(rs.headers, rs.nheaders, hide[i].name,
		    hide[i].value, &v) == 0 || count_named(add, e.nadd,
		    hide[i].name, hide[i].value, &v) == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http1_request req;
	struct http1_parser p;
	struct headers_request hr;
	struct headers_response rr;
	struct buf *out;

	http1_parser_init(&p);
	if (http1_parse_request(&p, (const char *)data, size, NULL, &req) !=
	    HTTP1_DONE || req.host.len == 0 ||
	    (req.target_form != HTTP1_TARGET_ORIGIN &&
	    req.target_form != HTTP1_TARGET_ABSOLUTE))
		return 0;
	if ((out = buf_new(4 * 65536)) == NULL)
		return 0;
	memset(&hr, 0, sizeof(hr));
	hr.method = req.method_str;
	hr.path = req.path;
	hr.host = req.host;
	hr.fields = req.headers;
	hr.nfields = req.nheaders;
	hr.framing = req.body == HTTP1_BODY_LENGTH ? HEADERS_FRAME_LENGTH :
	    req.body == HTTP1_BODY_CHUNKED ? HEADERS_FRAME_CHUNKED :
	    HEADERS_FRAME_NONE;
	hr.content_length = req.content_length;
	hr.websocket = req.upgrade_websocket;
	hr.client_ip = "192.0.2.1";
	hr.tls = true;
	hr.port = 8443;
	check(headers_request_head(out, &hr) == 0);
	check_request(&req, out);

	/* The client's fields read back as a response's. */
	buf_reset(out);
	memset(&rr, 0, sizeof(rr));
	rr.status = 200;
	rr.fields = req.headers;
	rr.nfields = req.nheaders;
	rr.framing = HEADERS_FRAME_CHUNKED;
	check(headers_response_head(out, &rr) == 0);
	check_response(&req, out);
	check_edits(&req, &hr, out);
	buf_free(out);
	return 0;
}
