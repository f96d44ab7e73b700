/*
 * h2req_test.c - HTTP/2 header blocks to HTTP/1.1 requests: what passes
 * comes out as a request our strict parser takes unchanged; what our
 * parser would refuse is refused here, with the status to answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "h2req.h"
#include "http1.h"

struct nv {
	const char *n, *v;
};

#define END	{ NULL, NULL }

static struct buf *scratch;

static int
setup(void **state)
{
	(void)state;
	scratch = buf_new(32768);
	return scratch == NULL;
}

static int
teardown(void **state)
{
	(void)state;
	buf_free(scratch);
	return 0;
}

/* Feed fields; the status of the last call (or of finish). */
static int
run(struct h2req *r, const struct nv *f, bool end_stream,
    struct headers_request *pr)
{
	int rc = 0;

	h2req_init(r, 16384, 100);
	for (; f->n != NULL; f++)
		if ((rc = h2req_field(r, f->n, strlen(f->n), f->v,
		    strlen(f->v))) != 0)
			break;
	if (rc == 0)
		rc = h2req_finish(r, end_stream, pr);
	if (rc == 0) {
		pr->client_ip = "192.0.2.7";
		pr->tls = true;
		pr->port = 443;
	}
	return rc;
}

static bool
slice_is(struct http1_slice s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#define BASE \
	{ ":method", "GET" }, { ":scheme", "https" }, \
	{ ":authority", "example.com" }, { ":path", "/a?b=c" }

static void
test_simple_get(void **state)
{
	static const struct nv f[] = { BASE, { "accept", "*/*" }, END };
	struct h2req r;
	struct headers_request pr;

	(void)state;
	assert_int_equal(run(&r, f, true, &pr), 0);
	assert_true(slice_is(pr.method, "GET"));
	assert_int_equal(pr.method_id, HTTP1_METHOD_GET);
	assert_true(slice_is(pr.path, "/a?b=c"));
	assert_true(slice_is(pr.host, "example.com"));
	assert_int_equal(pr.framing, HEADERS_FRAME_NONE);
	assert_int_equal(pr.nfields, 1);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	buf_add(scratch, "", 1);
	assert_string_equal(buf_data(scratch),
	    "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\naccept: */*\r\n"
	    "X-Real-IP: 192.0.2.7\r\nX-Forwarded-For: 192.0.2.7\r\n"
	    "X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n"
	    "X-Forwarded-Port: 443\r\n\r\n");
	h2req_free(&r);
}

/*
 * A client's proxy-trust fields go no further over HTTP/2 either: the
 * head is the one of the same request without them.
 */
static void
test_proxy_trust_fields(void **state)
{
	static const struct nv plain[] = { BASE, { "accept", "*/*" }, END };
	static const struct nv f[] = { BASE, { "x-forwarded-port", "1" },
	    { "x-original-url", "/admin" }, { "true-client-ip", "6.6.6.6" },
	    { "x-forwarded-host", "evil" }, { "x-forwarded-prefix", "/x" },
	    { "accept", "*/*" }, { "client-ip", "6.6.6.6" }, END };
	struct h2req r;
	struct headers_request pr;
	char want[512];

	(void)state;
	assert_int_equal(run(&r, plain, true, &pr), 0);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	assert_true(buf_len(scratch) < sizeof(want));
	memcpy(want, buf_data(scratch), buf_len(scratch));
	want[buf_len(scratch)] = '\0';
	h2req_free(&r);
	assert_int_equal(run(&r, f, true, &pr), 0);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	buf_add(scratch, "", 1);
	assert_string_equal(buf_data(scratch), want);
	assert_non_null(strstr(want, "\r\nX-Forwarded-Port: 443\r\n"));
	h2req_free(&r);
}

static void
test_framing(void **state)
{
	static const struct nv len[] = { BASE, { "content-length", "42" },
	    END };
	static const struct nv none[] = { BASE, END };
	static const struct nv zero_end[] = { BASE,
	    { "content-length", "0" }, END };
	struct h2req r;
	struct headers_request pr;

	(void)state;
	assert_int_equal(run(&r, len, false, &pr), 0);
	assert_int_equal(pr.framing, HEADERS_FRAME_LENGTH);
	assert_int_equal(pr.content_length, 42);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
	/* A body without a length goes chunked. */
	assert_int_equal(run(&r, none, false, &pr), 0);
	assert_int_equal(pr.framing, HEADERS_FRAME_CHUNKED);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
	/* END_STREAM on HEADERS with a length of 0 is fine ... */
	assert_int_equal(run(&r, zero_end, true, &pr), 0);
	assert_int_equal(pr.framing, HEADERS_FRAME_LENGTH);
	h2req_free(&r);
	/* ... with a length of 42 it is a lie. */
	assert_int_equal(run(&r, len, true, &pr), 400);
	h2req_free(&r);
}

static void
test_cookies_joined(void **state)
{
	static const struct nv f[] = { BASE, { "cookie", "a=1" },
	    { "x-mid", "m" }, { "cookie", "b=2" }, { "cookie", "c=3" }, END };
	static const struct nv empty[] = { BASE, { "cookie", "" },
	    { "cookie", "a=1" }, { "cookie", "" }, { "cookie", "b=2" },
	    { "cookie", "" }, END };
	static const struct nv all_empty[] = { BASE, { "cookie", "" },
	    { "cookie", "" }, END };
	struct h2req r;
	struct headers_request pr;

	(void)state;
	assert_int_equal(run(&r, f, true, &pr), 0);
	assert_int_equal(pr.nfields, 2);
	assert_true(slice_is(pr.fields[0].name, "cookie"));
	assert_true(slice_is(pr.fields[0].value, "a=1; b=2; c=3"));
	assert_true(slice_is(pr.fields[1].name, "x-mid"));
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
	/* Empty crumbs vanish (found by h2_fuzz: "a=1; ; " does not
	   re-parse unchanged). */
	assert_int_equal(run(&r, empty, true, &pr), 0);
	assert_int_equal(pr.nfields, 1);
	assert_true(slice_is(pr.fields[0].value, "a=1; b=2"));
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
	assert_int_equal(run(&r, all_empty, true, &pr), 0);
	assert_int_equal(pr.nfields, 1);
	assert_true(slice_is(pr.fields[0].value, ""));
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
}

/* Joining copies crumbs that live in the store while it grows (found by
   h2_fuzz as a use after free; ASan catches a regression here). */
static void
test_cookies_joined_store_grows(void **state)
{
	struct h2req r;
	struct headers_request pr;
	char crumb[301], want[3 * 300 + 4 + 1];

	(void)state;
	memset(crumb, 'c', 300);
	crumb[300] = '\0';
	snprintf(want, sizeof(want), "%s; %s; %s", crumb, crumb, crumb);
	h2req_init(&r, 16384, 100);
	assert_int_equal(h2req_field(&r, ":method", 7, "GET", 3), 0);
	assert_int_equal(h2req_field(&r, ":scheme", 7, "https", 5), 0);
	assert_int_equal(h2req_field(&r, ":authority", 10, "e.com", 5), 0);
	assert_int_equal(h2req_field(&r, ":path", 5, "/", 1), 0);
	assert_int_equal(h2req_field(&r, "cookie", 6, crumb, 300), 0);
	assert_int_equal(h2req_field(&r, "cookie", 6, crumb, 300), 0);
	assert_int_equal(h2req_field(&r, "cookie", 6, crumb, 300), 0);
	assert_int_equal(h2req_finish(&r, true, &pr), 0);
	assert_int_equal(pr.nfields, 1);
	assert_true(slice_is(pr.fields[0].value, want));
	h2req_free(&r);
}

static void
test_authority_and_host(void **state)
{
	static const struct nv both[] = { BASE, { "host", "other.test" },
	    END };
	static const struct nv host_only[] = { { ":method", "GET" },
	    { ":scheme", "https" }, { ":path", "/" }, { "host", "h.test:81" },
	    END };
	static const struct nv neither[] = { { ":method", "GET" },
	    { ":scheme", "https" }, { ":path", "/" }, END };
	static const struct nv two_hosts[] = { { ":method", "GET" },
	    { ":scheme", "https" }, { ":path", "/" }, { "host", "a" },
	    { "host", "b" }, END };
	struct h2req r;
	struct headers_request pr;

	(void)state;
	assert_int_equal(run(&r, both, true, &pr), 0);
	assert_true(slice_is(pr.host, "example.com"));
	assert_int_equal(pr.nfields, 0);	/* host is never forwarded */
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
	assert_int_equal(run(&r, host_only, true, &pr), 0);
	assert_true(slice_is(pr.host, "h.test:81"));
	h2req_free(&r);
	assert_int_equal(run(&r, neither, true, &pr), 400);
	h2req_free(&r);
	assert_int_equal(run(&r, two_hosts, true, &pr), 400);
	h2req_free(&r);
}

static void
test_options_and_connect(void **state)
{
	static const struct nv star[] = { { ":method", "OPTIONS" },
	    { ":scheme", "https" }, { ":authority", "e.com" }, { ":path", "*" },
	    END };
	static const struct nv star_get[] = { { ":method", "GET" },
	    { ":scheme", "https" }, { ":authority", "e.com" }, { ":path", "*" },
	    END };
	static const struct nv connect[] = { { ":method", "CONNECT" },
	    { ":authority", "e.com:443" }, END };
	static const struct nv connect_path[] = { { ":method", "CONNECT" },
	    { ":authority", "e.com:443" }, { ":path", "/" }, END };
	struct h2req r;
	struct headers_request pr;

	(void)state;
	assert_int_equal(run(&r, star, true, &pr), 0);
	assert_true(slice_is(pr.path, "*"));
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
	assert_int_equal(run(&r, star_get, true, &pr), 400);
	h2req_free(&r);
	assert_int_equal(run(&r, connect, true, &pr), 0);
	assert_int_equal(pr.method_id, HTTP1_METHOD_CONNECT);
	h2req_free(&r);
	assert_int_equal(run(&r, connect_path, true, &pr), 400);
	h2req_free(&r);
}

/* Everything our HTTP/1.1 parser refuses, refused here too. */
static void
test_hostile(void **state)
{
	static const struct {
		const char *why;
		struct nv f[8];
	} cases[] = {
		{ "no method", { { ":scheme", "https" },
		    { ":authority", "e.com" }, { ":path", "/" }, END } },
		{ "no path", { { ":method", "GET" }, { ":scheme", "https" },
		    { ":authority", "e.com" }, END } },
		{ "no scheme", { { ":method", "GET" },
		    { ":authority", "e.com" }, { ":path", "/" }, END } },
		{ "scheme http", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":authority", "e.com" }, { ":path", "/" }, END } },
		{ "method not a token", { { ":method", "G T" },
		    { ":scheme", "https" }, { ":authority", "e.com" },
		    { ":path", "/" }, END } },
		{ "relative path", { { ":method", "GET" },
		    { ":scheme", "https" }, { ":authority", "e.com" },
		    { ":path", "a" }, END } },
		{ "space in path", { { ":method", "GET" },
		    { ":scheme", "https" }, { ":authority", "e.com" },
		    { ":path", "/a b" }, END } },
		{ "fragment in path", { { ":method", "GET" },
		    { ":scheme", "https" }, { ":authority", "e.com" },
		    { ":path", "/a#b" }, END } },
		{ "absolute path", { { ":method", "GET" },
		    { ":scheme", "https" }, { ":authority", "e.com" },
		    { ":path", "http://x/" }, END } },
		{ "userinfo", { { ":method", "GET" }, { ":scheme", "https" },
		    { ":authority", "u@e.com" }, { ":path", "/" }, END } },
		{ "bad port", { { ":method", "GET" }, { ":scheme", "https" },
		    { ":authority", "e.com:99999" }, { ":path", "/" }, END } },
		{ "pseudo after regular", { { ":method", "GET" },
		    { ":scheme", "https" }, { "x", "y" },
		    { ":authority", "e.com" }, { ":path", "/" }, END } },
		{ "duplicate pseudo", { BASE, { ":path", "/b" }, END } },
		{ "unknown pseudo", { BASE, { ":status", "200" }, END } },
		{ "protocol", { BASE, { ":protocol", "websocket" }, END } },
		{ "upper-case name", { BASE, { "X-A", "1" }, END } },
		{ "name not a token", { BASE, { "x(a)", "1" }, END } },
		{ "empty name", { BASE, { "", "1" }, END } },
		{ "leading space", { BASE, { "x-a", " 1" }, END } },
		{ "trailing tab", { BASE, { "x-a", "1\t" }, END } },
		{ "CR in value", { BASE, { "x-a", "a\rb" }, END } },
		{ "LF in value", { BASE, { "x-a", "a\nb" }, END } },
		{ "DEL in value", { BASE, { "x-a", "a\x7f" "b" }, END } },
		{ "CTL in value", { BASE, { "x-a", "a\x01" "b" }, END } },
		{ "connection", { BASE, { "connection", "close" }, END } },
		{ "keep-alive", { BASE, { "keep-alive", "5" }, END } },
		{ "transfer-encoding", { BASE,
		    { "transfer-encoding", "chunked" }, END } },
		{ "upgrade", { BASE, { "upgrade", "websocket" }, END } },
		{ "te gzip", { BASE, { "te", "gzip" }, END } },
		{ "cl signed", { BASE, { "content-length", "+5" }, END } },
		{ "cl empty", { BASE, { "content-length", "" }, END } },
		{ "cl twice", { BASE, { "content-length", "5" },
		    { "content-length", "5" }, END } },
		{ "cl huge", { BASE,
		    { "content-length", "99999999999999999999" }, END } },
	};
	struct h2req r;
	struct headers_request pr;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(&r, cases[i].f, false, &pr);

		if (rc != 400)
			fail_msg("%s: got %d, not 400", cases[i].why, rc);
		h2req_free(&r);
	}
}

static void
test_limits(void **state)
{
	struct h2req r;
	struct headers_request pr;
	char name[16], big[8192];
	int i, rc = 0;

	(void)state;
	/* Bytes: 16384 in all, as max-header-size. */
	h2req_init(&r, 16384, 100);
	memset(big, 'v', sizeof(big));
	assert_int_equal(h2req_field(&r, ":method", 7, "GET", 3), 0);
	assert_int_equal(h2req_field(&r, "x-a", 3, big, 8190), 0);
	assert_int_equal(h2req_field(&r, "x-b", 3, big, 8190), 431);
	/* Once failed, it stays failed. */
	assert_int_equal(h2req_field(&r, "x-c", 3, "1", 1), 431);
	assert_int_equal(h2req_finish(&r, true, &pr), 431);
	h2req_free(&r);
	/* Fields: the limit, and never more than the parser can take
	   with what the proxy adds. */
	h2req_init(&r, 1 << 20, 1000);
	h2req_field(&r, ":method", 7, "GET", 3);
	h2req_field(&r, ":scheme", 7, "https", 5);
	h2req_field(&r, ":authority", 10, "e.com", 5);
	h2req_field(&r, ":path", 5, "/", 1);
	for (i = 0; i < H2REQ_MAX_FIELDS && rc == 0; i++) {
		snprintf(name, sizeof(name), "x-%d", i);
		rc = h2req_field(&r, name, strlen(name), "1", 1);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(h2req_field(&r, "x-last", 6, "1", 1), 431);
	h2req_free(&r);
	h2req_init(&r, 1 << 20, H2REQ_MAX_FIELDS);
	h2req_field(&r, ":method", 7, "GET", 3);
	h2req_field(&r, ":scheme", 7, "https", 5);
	h2req_field(&r, ":authority", 10, "e.com", 5);
	h2req_field(&r, ":path", 5, "/", 1);
	for (i = 0; i < H2REQ_MAX_FIELDS; i++) {
		snprintf(name, sizeof(name), "x-%d", i);
		assert_int_equal(h2req_field(&r, name, strlen(name), "1", 1),
		    0);
	}
	assert_int_equal(h2req_finish(&r, true, &pr), 0);
	pr.client_ip = "192.0.2.7";
	pr.tls = true;
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
}

/* RFC 8441: extended CONNECT for WebSocket becomes an Upgrade GET. */
static void
test_websocket(void **state)
{
	static const struct nv ws[] = { { ":method", "CONNECT" },
	    { ":protocol", "websocket" }, { ":scheme", "https" },
	    { ":path", "/chat?x=1" }, { ":authority", "e.com" },
	    { "sec-websocket-version", "13" }, END };
	static const struct nv not_connect[] = { BASE,
	    { ":protocol", "websocket" }, END };
	static const struct nv other[] = { { ":method", "CONNECT" },
	    { ":protocol", "h3" }, { ":scheme", "https" }, { ":path", "/" },
	    { ":authority", "e.com" }, END };
	static const struct nv no_path[] = { { ":method", "CONNECT" },
	    { ":protocol", "websocket" }, { ":scheme", "https" },
	    { ":authority", "e.com" }, END };
	static const struct nv with_key[] = { BASE,
	    { "sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==" }, END };
	struct h2req r;
	struct headers_request pr;
	const struct nv *f;

	(void)state;
	h2req_init(&r, 16384, 100);
	for (f = ws; f->n != NULL; f++)
		assert_int_equal(h2req_field(&r, f->n, strlen(f->n), f->v,
		    strlen(f->v)), 0);
	assert_true(h2req_wants_key(&r));
	/* Without a key it cannot go upstream. */
	assert_int_equal(h2req_finish(&r, false, &pr), 400);
	h2req_reuse(&r, 16384, 100);
	for (f = ws; f->n != NULL; f++)
		h2req_field(&r, f->n, strlen(f->n), f->v, strlen(f->v));
	h2req_set_key(&r, "dGhlIHNhbXBsZSBub25jZQ==");
	assert_int_equal(h2req_finish(&r, false, &pr), 0);
	pr.client_ip = "192.0.2.7";
	pr.tls = true;
	assert_true(pr.websocket);
	assert_int_equal(pr.method_id, HTTP1_METHOD_GET);
	assert_true(slice_is(pr.method, "GET"));
	assert_true(slice_is(pr.path, "/chat?x=1"));
	assert_int_equal(pr.framing, HEADERS_FRAME_NONE);
	assert_int_equal(pr.nfields, 2);
	assert_true(slice_is(pr.fields[1].name, "sec-websocket-key"));
	assert_true(slice_is(pr.fields[1].value,
	    "dGhlIHNhbXBsZSBub25jZQ=="));
	assert_int_equal(h2req_check(&pr, scratch), 0);
	buf_add(scratch, "", 1);
	assert_non_null(strstr(buf_data(scratch), "Connection: Upgrade\r\n"
	    "Upgrade: websocket\r\n"));
	h2req_free(&r);
	assert_int_equal(run(&r, not_connect, false, &pr), 400);
	h2req_free(&r);
	assert_int_equal(run(&r, other, false, &pr), 400);
	h2req_free(&r);
	assert_int_equal(run(&r, no_path, false, &pr), 400);
	h2req_free(&r);
	/* The key is ours to make, never the client's. */
	assert_int_equal(run(&r, with_key, true, &pr), 400);
	h2req_free(&r);
}

/* A reused translation starts clean: nothing of the last request
   (an error, a pseudo-field seen, cookies) carries over. */
static void
test_reuse(void **state)
{
	static const struct nv bad[] = { BASE, { "cookie", "a=1" },
	    { "cookie", "b=2" }, { "x-a", " bad" }, END };
	static const struct nv good[] = { BASE, { "x-b", "2" }, END };
	struct h2req r;
	struct headers_request pr;
	const struct nv *f;

	(void)state;
	assert_int_equal(run(&r, bad, true, &pr), 400);
	h2req_reuse(&r, 16384, 100);
	for (f = good; f->n != NULL; f++)
		assert_int_equal(h2req_field(&r, f->n, strlen(f->n), f->v,
		    strlen(f->v)), 0);
	assert_int_equal(h2req_finish(&r, true, &pr), 0);
	pr.client_ip = "192.0.2.7";
	pr.tls = true;
	assert_int_equal(pr.nfields, 1);
	assert_true(slice_is(pr.fields[0].name, "x-b"));
	assert_int_equal(h2req_check(&pr, scratch), 0);
	h2req_free(&r);
}

/*
 * A client-auth site's X-Client-* re-parse with their values: the verdict
 * alone, or all five; a value that would split the field is caught.
 */
static void
test_client_cert_fields(void **state)
{
	static const struct nv f[] = { BASE, { "x-client-verify", "SUCCESS" },
	    END };
	struct headers_client_cert cc;
	struct h2req r;
	struct headers_request pr;

	(void)state;
	memset(&cc, 0, sizeof(cc));
	snprintf(cc.verify, sizeof(cc.verify), "NONE");
	assert_int_equal(run(&r, f, true, &pr), 0);
	pr.client_cert = &cc;
	assert_int_equal(h2req_check(&pr, scratch), 0);
	buf_add(scratch, "", 1);
	assert_non_null(strstr(buf_data(scratch),
	    "X-Forwarded-Port: 443\r\nX-Client-Verify: NONE\r\n\r\n"));
	snprintf(cc.verify, sizeof(cc.verify), "SUCCESS");
	snprintf(cc.subject, sizeof(cc.subject), "CN=a\\0D\\0A");
	snprintf(cc.issuer, sizeof(cc.issuer), "CN=CA");
	snprintf(cc.serial, sizeof(cc.serial), "0A");
	snprintf(cc.fingerprint, sizeof(cc.fingerprint), "%064d", 0);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	snprintf(cc.subject, sizeof(cc.subject), "CN=a\r\nX-Evil: 1");
	assert_int_equal(h2req_check(&pr, scratch), -1);
	h2req_free(&r);
}

/* The check itself: a request that would not re-parse is caught. */
static void
test_check_catches_mismatch(void **state)
{
	static const struct nv f[] = { BASE, { "x-a", "1" }, END };
	struct h2req r;
	struct headers_request pr;
	struct http1_header bad;

	(void)state;
	assert_int_equal(run(&r, f, true, &pr), 0);
	assert_int_equal(h2req_check(&pr, scratch), 0);
	/* A value with CR LF would smuggle a second field. */
	bad = pr.fields[0];
	bad.value = (struct http1_slice){ "1\r\nx-b: 2", 9 };
	pr.fields = &bad;
	assert_int_equal(h2req_check(&pr, scratch), -1);
	/* A path with a space splits the request line. */
	pr.fields = r.out;
	pr.path = (struct http1_slice){ "/a HTTP/1.1\r\nX: y", 17 };
	assert_int_equal(h2req_check(&pr, scratch), -1);
	/* A host that is no host. */
	pr.path = (struct http1_slice){ "/", 1 };
	pr.host = (struct http1_slice){ "a b", 3 };
	assert_int_equal(h2req_check(&pr, scratch), -1);
	h2req_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_client_cert_fields),
		cmocka_unit_test(test_proxy_trust_fields),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_cookies_joined),
		cmocka_unit_test(test_cookies_joined_store_grows),
		cmocka_unit_test(test_authority_and_host),
		cmocka_unit_test(test_options_and_connect),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_websocket),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_check_catches_mismatch),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
