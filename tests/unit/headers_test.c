/*
 * headers_test.c - the heads the proxy writes: hop-by-hop and spoofable
 * fields never pass, framing is ours, forwarding fields are ours (and a
 * client's proxy-trust fields, whatever their case, never reach upstream).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "headers.h"
#include "http1.h"
#include "util.h"

#define S(lit)	{ lit, sizeof(lit) - 1 }
#define H(n, v)	{ S(n), S(v) }

static char *
request_head(const struct http1_header *f, size_t n,
    enum headers_framing framing, uint64_t cl, bool ws, struct buf *b)
{
	struct headers_request r;

	memset(&r, 0, sizeof(r));
	r.method = (struct http1_slice)S("POST");
	r.path = (struct http1_slice)S("/p?q=1");
	r.host = (struct http1_slice)S("Example.com:8443");
	r.fields = f;
	r.nfields = n;
	r.framing = framing;
	r.content_length = cl;
	r.websocket = ws;
	r.client_ip = "2001:db8::7";
	r.tls = true;
	r.port = 8443;
	buf_reset(b);
	if (headers_request_head(b, &r) == -1)
		return NULL;
	buf_add(b, "", 1);
	return (char *)buf_data(b);
}

static void
test_request_exact_bytes(void **state)
{
	const struct http1_header f[] = {
		H("Accept", "*/*"),
		H("Connection", "keep-alive, X-Private"),
		H("X-Private", "secret"),
		H("Keep-Alive", "timeout=5"),
		H("Proxy-Connection", "keep-alive"),
		H("TE", "trailers"),
		H("Trailer", "X-T"),
		H("Transfer-Encoding", "chunked"),
		H("Upgrade", "h2c"),
		H("X-Forwarded-For", "6.6.6.6"),
		H("X-Real-IP", "6.6.6.6"),
		H("X-Forwarded-Proto", "http"),
		H("X-Forwarded-Host", "evil"),
		H("Forwarded", "for=6.6.6.6"),
		H("X_Forwarded_For", "6.6.6.6"),
		H("Host", "ignored"),
		H("Content-Length", "99"),
		H("Expect", "100-continue"),
		H("Cookie", "a=b"),
	};
	struct buf *b = buf_new(4096);
	char *head;

	(void)state;
	head = request_head(f, sizeof(f) / sizeof(f[0]),
	    HEADERS_FRAME_CHUNKED, 0, false, b);
	assert_non_null(head);
	assert_string_equal(head,
	    "POST /p?q=1 HTTP/1.1\r\n"
	    "Host: Example.com:8443\r\n"
	    "Accept: */*\r\n"
	    "Cookie: a=b\r\n"
	    "X-Real-IP: 2001:db8::7\r\n"
	    "X-Forwarded-For: 2001:db8::7\r\n"
	    "X-Forwarded-Proto: https\r\n"
	    "X-Forwarded-Host: Example.com:8443\r\n"
	    "X-Forwarded-Port: 8443\r\n"
	    "Transfer-Encoding: chunked\r\n"
	    "\r\n");
	buf_free(b);
}

/* Every field of a head we wrote called name (any case), parsed back. */
static size_t
fields_named(const char *head, const char *name, const char **value)
{
	static struct http1_request req;
	struct http1_parser p;
	size_t i, n = 0;

	http1_parser_init(&p);
	assert_int_equal(http1_parse_request(&p, head, strlen(head), NULL,
	    &req), HTTP1_DONE);
	for (i = 0; i < req.nheaders; i++) {
		if (req.headers[i].name.len != strlen(name) ||
		    strncasecmp(req.headers[i].name.p, name, strlen(name)) != 0)
			continue;
		if (value != NULL && n == 0)
			*value = req.headers[i].value.p;
		n++;
	}
	return n;
}

/* "X-Forwarded-Port" -> "x-fOrWaRdEd-pOrT": every other letter flipped. */
static void
odd_case(const char *in, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i < outsz - 1; i++)
		out[i] = (char)(i % 2 == 0 ? tolower((unsigned char)in[i]) :
		    toupper((unsigned char)in[i]));
	out[i] = '\0';
}

/*
 * A client's proxy-trust fields never reach the upstream, in any case and
 * however many times sent; the ones the proxy sets are there once, with
 * its values.  The names the issue and doc/portcullis.8 list, and samples
 * of the X-Forwarded-*, X-Original-*, X-Real-* and X-SSL-* families.
 */
static void
test_request_drops_proxy_trust(void **state)
{
	static const char *const names[] = {
		"X-Forwarded-For", "X-Real-IP", "X-Forwarded-Proto",
		"X-Forwarded-Host", "Forwarded", "X-Forwarded-Port",
		"X-Forwarded-Prefix", "X-Forwarded-Scheme", "X-Forwarded-Ssl",
		"X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Path",
		"X-Forwarded-Protocol", "X-Forwarded-User",
		"X-Forwarded-Email", "X-Forwarded-Client-Cert",
		"X-Forwarded-Tls-Client-Cert", "Front-End-Https",
		"X-Original-URL", "X-Original-URI", "X-Original-Host",
		"X-Original-Forwarded-For", "X-Rewrite-URL", "True-Client-IP",
		"X-Client-IP", "Client-IP", "X-Cluster-Client-IP",
		"X-Real-Port", "X-Real-Scheme", "X-Url-Scheme", "X-Scheme",
		"CF-Connecting-IP", "Fastly-Client-IP", "X-ProxyUser-IP",
		"X-SSL-Client-Cert", "X-SSL-Client-Verify", "X-SSL-Cert",
		"X-Client-Cert", "SSL-Client-Cert", "X-ARR-SSL",
		"X-ARR-ClientCert", "X-Client-Verify", "X-Client-Subject",
		"X-Client-Issuer", "X-Client-Serial",
		"X-Client-Cert-Fingerprint",
	};
	/* Near misses and application fields: they pass. */
	static const char *const kept[] = {
		"X-Forwarded", "X-Forwardedfor", "X-Realm", "X-Originally",
		"X-Client-IPs", "Client-IP-Note", "X-SSL", "X-HTTP-Method-Override",
		"X-Requested-With", "Via", "X-Client-Version",
	};
	struct http1_header f[3 * nitems(names) + nitems(kept) + 1];
	char odd[nitems(names)][64], low[nitems(names)][64];
	const char *v = NULL;
	struct buf *b = buf_new(16384);
	char *head;
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < nitems(names); i++) {
		odd_case(names[i], odd[i], sizeof(odd[i]));
		snprintf(low[i], sizeof(low[i]), "%s", names[i]);
		for (char *c = low[i]; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		f[n++] = (struct http1_header){ { names[i], strlen(names[i]) },
		    S("https://evil.example:1/admin") };
		f[n++] = (struct http1_header){ { odd[i], strlen(odd[i]) },
		    S("6.6.6.6") };
		f[n++] = (struct http1_header){ { low[i], strlen(low[i]) },
		    S("6.6.6.6") };
	}
	for (i = 0; i < nitems(kept); i++)
		f[n++] = (struct http1_header){ { kept[i], strlen(kept[i]) },
		    S("1") };
	f[n++] = (struct http1_header)H("Accept", "*/*");
	head = request_head(f, n, HEADERS_FRAME_NONE, 0, false, b);
	assert_non_null(head);
	assert_null(strstr(head, "evil"));
	assert_null(strstr(head, "6.6.6.6"));
	for (i = 0; i < nitems(names); i++) {
		size_t want = 0;

		if (strcmp(names[i], "X-Forwarded-For") == 0 ||
		    strcmp(names[i], "X-Real-IP") == 0 ||
		    strcmp(names[i], "X-Forwarded-Proto") == 0 ||
		    strcmp(names[i], "X-Forwarded-Host") == 0 ||
		    strcmp(names[i], "X-Forwarded-Port") == 0)
			want = 1;	/* ours */
		if (fields_named(head, names[i], NULL) != want)
			fail_msg("%s: %zu in\n%s", names[i],
			    fields_named(head, names[i], NULL), head);
	}
	for (i = 0; i < nitems(kept); i++)
		assert_int_equal(fields_named(head, kept[i], NULL), 1);
	assert_int_equal(fields_named(head, "X-Forwarded-Port", &v), 1);
	assert_true(strncmp(v, "8443\r\n", 6) == 0);
	assert_int_equal(fields_named(head, "X-Forwarded-Host", &v), 1);
	assert_true(strncmp(v, "Example.com:8443\r\n", 18) == 0);
	assert_int_equal(fields_named(head, "X-Forwarded-For", &v), 1);
	assert_true(strncmp(v, "2001:db8::7\r\n", 13) == 0);
	assert_int_equal(fields_named(head, "Host", &v), 1);
	assert_true(strncmp(v, "Example.com:8443\r\n", 18) == 0);
	/* The predicate HTTP/2 checks its requests with says the same. */
	for (i = 0; i < n; i++)
		assert_int_equal(headers_request_forwards(&f[i], f, n),
		    i >= 3 * nitems(names));
	buf_free(b);
}

/*
 * A client-auth site's request: X-Client-Verify always, the facts only
 * with SUCCESS; the client's own X-Client-* never.
 */
static void
test_request_client_cert(void **state)
{
	const struct http1_header f[] = {
		H("X-Client-Verify", "SUCCESS"),
		H("x-client-subject", "CN=admin"),
		H("Accept", "*/*"),
	};
	struct headers_client_cert cc;
	struct headers_request r;
	struct buf *b = buf_new(16384);
	const char *v = NULL;
	char *head;

	(void)state;
	memset(&cc, 0, sizeof(cc));
	snprintf(cc.verify, sizeof(cc.verify), "SUCCESS");
	snprintf(cc.subject, sizeof(cc.subject), "CN=alice,O=Example\\0D");
	snprintf(cc.issuer, sizeof(cc.issuer), "CN=Client CA");
	snprintf(cc.serial, sizeof(cc.serial), "2A");
	snprintf(cc.fingerprint, sizeof(cc.fingerprint), "%064d", 7);
	memset(&r, 0, sizeof(r));
	r.method = (struct http1_slice)S("GET");
	r.path = (struct http1_slice)S("/");
	r.host = (struct http1_slice)S("a.test");
	r.fields = f;
	r.nfields = nitems(f);
	r.client_ip = "192.0.2.1";
	r.tls = true;
	r.port = 443;
	r.client_cert = &cc;
	assert_int_equal(headers_request_head(b, &r), 0);
	buf_add(b, "", 1);
	head = (char *)buf_data(b);
	assert_int_equal(fields_named(head, "X-Client-Verify", &v), 1);
	assert_true(strncmp(v, "SUCCESS\r\n", 9) == 0);
	assert_int_equal(fields_named(head, "X-Client-Subject", &v), 1);
	assert_true(strncmp(v, "CN=alice,O=Example\\0D\r\n", 23) == 0);
	assert_null(strstr(head, "CN=admin"));
	assert_int_equal(fields_named(head, "X-Client-Issuer", &v), 1);
	assert_int_equal(fields_named(head, "X-Client-Serial", &v), 1);
	assert_true(strncmp(v, "2A\r\n", 4) == 0);
	assert_int_equal(fields_named(head, "X-Client-Cert-Fingerprint", &v),
	    1);
	/* Not verified: the verdict alone. */
	snprintf(cc.verify, sizeof(cc.verify), "FAILED:expired");
	buf_reset(b);
	assert_int_equal(headers_request_head(b, &r), 0);
	buf_add(b, "", 1);
	head = (char *)buf_data(b);
	assert_int_equal(fields_named(head, "X-Client-Verify", &v), 1);
	assert_true(strncmp(v, "FAILED:expired\r\n", 16) == 0);
	assert_int_equal(fields_named(head, "X-Client-Subject", NULL), 0);
	assert_int_equal(fields_named(head, "X-Client-Serial", NULL), 0);
	/* A site without client-auth: none of them, the client's neither. */
	r.client_cert = NULL;
	buf_reset(b);
	assert_int_equal(headers_request_head(b, &r), 0);
	buf_add(b, "", 1);
	head = (char *)buf_data(b);
	assert_int_equal(fields_named(head, "X-Client-Verify", NULL), 0);
	assert_int_equal(fields_named(head, "X-Client-Subject", NULL), 0);
	buf_free(b);
}

static void
test_escape_value(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(headers_escape_value((const unsigned char *)
	    "CN=alice,O=Ex\\,ample", 20, out, sizeof(out)), 20);
	assert_string_equal(out, "CN=alice,O=Ex\\,ample");
	/* CR, LF, NUL, DEL, UTF-8: RFC 4514 hex escapes, upper case. */
	assert_int_equal(headers_escape_value((const unsigned char *)
	    "CN=a\r\nb\0c\x7f\xc3\xa9", 12, out, sizeof(out)), 24);
	assert_string_equal(out, "CN=a\\0D\\0Ab\\00c\\7F\\C3\\A9");
	/* Spaces at either end would be lost in a field value. */
	assert_int_equal(headers_escape_value((const unsigned char *)" a b ",
	    5, out, sizeof(out)), 9);
	assert_string_equal(out, "\\20a b\\20");
	assert_int_equal(headers_escape_value((const unsigned char *)"", 0,
	    out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* Too long: refused, never cut. */
	assert_int_equal(headers_escape_value((const unsigned char *)"abcd",
	    4, out, 4), -1);
	assert_string_equal(out, "");
	assert_int_equal(headers_escape_value((const unsigned char *)"ab\n",
	    3, out, 5), -1);
	assert_int_equal(headers_escape_value((const unsigned char *)"ab\n",
	    3, out, 6), 5);
	assert_int_equal(headers_escape_value((const unsigned char *)"abc",
	    3, out, 4), 3);
}

static void
test_request_framing(void **state)
{
	struct buf *b = buf_new(4096);
	char *head;

	(void)state;
	head = request_head(NULL, 0, HEADERS_FRAME_LENGTH, 12345, false, b);
	assert_non_null(strstr(head, "\r\nContent-Length: 12345\r\n"));
	assert_null(strstr(head, "Transfer-Encoding"));
	head = request_head(NULL, 0, HEADERS_FRAME_NONE, 7, false, b);
	assert_null(strstr(head, "Content-Length"));
	assert_null(strstr(head, "Transfer-Encoding"));
	buf_free(b);
}

static void
test_request_websocket(void **state)
{
	const struct http1_header f[] = {
		H("Upgrade", "websocket"),
		H("Connection", "Upgrade"),
		H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
	};
	struct buf *b = buf_new(4096);
	char *head;

	(void)state;
	head = request_head(f, 3, HEADERS_FRAME_NONE, 0, true, b);
	assert_non_null(strstr(head, "Sec-WebSocket-Key: dGhl"));
	assert_non_null(strstr(head, "\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\n\r\n"));
	/* The client's own copies are not forwarded as well. */
	assert_ptr_equal(strstr(head, "Upgrade: websocket"),
	    strstr(head, "Upgrade: websocket\r\n\r\n"));
	buf_free(b);
}

static void
test_request_does_not_fit(void **state)
{
	struct buf *b = buf_new(40);

	(void)state;
	assert_null(request_head(NULL, 0, HEADERS_FRAME_NONE, 0, false, b));
	buf_free(b);
}

static void
test_hop_by_hop(void **state)
{
	const struct http1_header f[] = {
		H("Connection", " close ,  X-A,,x-b "),
		H("connection", "X-C"),
	};

	(void)state;
	assert_true(headers_hop_by_hop("X-A", 3, f, 2));
	assert_true(headers_hop_by_hop("x-b", 3, f, 2));
	assert_true(headers_hop_by_hop("X-C", 3, f, 2));
	assert_true(headers_hop_by_hop("KEEP-ALIVE", 10, f, 2));
	assert_true(headers_hop_by_hop("a_b", 3, NULL, 0));
	assert_false(headers_hop_by_hop("X-AB", 4, f, 2));
	assert_false(headers_hop_by_hop("Close", 5, NULL, 0));
	assert_false(headers_hop_by_hop("Accept", 6, f, 2));
}

static void
test_first_connection(void **state)
{
	const struct http1_header f[] = {
		H("Accept", "*/*"),
		H("X-A", "1"),
		H("CONNECTION", "x-a"),
		H("X-B", "2"),
		H("Connection", "x-b"),
	};
	const char *ask[] = { "x-a", "X-B", "accept", "x-c", "te" };
	size_t i, k;

	(void)state;
	assert_int_equal(headers_first_connection(f, 5), 2);
	assert_int_equal(headers_first_connection(f, 2), 2);
	assert_int_equal(headers_first_connection(NULL, 0), 0);
	/* From the first Connection field on, the answers are the same. */
	k = headers_first_connection(f, 5);
	for (i = 0; i < sizeof(ask) / sizeof(ask[0]); i++)
		assert_int_equal(headers_hop_by_hop(ask[i], strlen(ask[i]),
		    f, 5), headers_hop_by_hop(ask[i], strlen(ask[i]), f + k,
		    5 - k));
	assert_true(headers_hop_by_hop("X-A", 3, f + k, 5 - k));
	assert_true(headers_hop_by_hop("x-b", 3, f + k, 5 - k));
	assert_false(headers_hop_by_hop("Accept", 6, f + k, 5 - k));
}

static char *
response_head(const struct http1_header *f, size_t n, int status,
    enum headers_framing framing, bool close, struct buf *b)
{
	struct headers_response r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	r.fields = f;
	r.nfields = n;
	r.framing = framing;
	r.content_length = 42;
	r.close = close;
	buf_reset(b);
	if (headers_response_head(b, &r) == -1)
		return NULL;
	buf_add(b, "", 1);
	return (char *)buf_data(b);
}

static void
test_response_framing(void **state)
{
	const struct http1_header f[] = {
		H("Content-Type", "text/plain"),
		H("Content-Length", "1000"),
		H("Transfer-Encoding", "chunked"),
		H("Connection", "keep-alive"),
		H("Keep-Alive", "timeout=3"),
	};
	struct buf *b = buf_new(4096);

	(void)state;
	assert_string_equal(response_head(f, 5, 200, HEADERS_FRAME_CHUNKED,
	    false, b), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	assert_string_equal(response_head(f, 5, 200, HEADERS_FRAME_LENGTH,
	    true, b), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 42\r\nConnection: close\r\n\r\n");
	/* HEAD and 304 keep the upstream's length: it describes GET. */
	assert_string_equal(response_head(f, 5, 304, HEADERS_FRAME_PASS,
	    false, b), "HTTP/1.1 304 Not Modified\r\nContent-Type: "
	    "text/plain\r\nContent-Length: 1000\r\n\r\n");
	assert_string_equal(response_head(f, 1, 204, HEADERS_FRAME_NONE,
	    false, b), "HTTP/1.1 204 No Content\r\nContent-Type: "
	    "text/plain\r\n\r\n");
	/* Status digits and lengths without printf: the edges. */
	assert_string_equal(response_head(f, 0, 999, HEADERS_FRAME_LENGTH,
	    false, b), "HTTP/1.1 999 \r\nContent-Length: 42\r\n\r\n");
	assert_string_equal(response_head(f, 0, 100, HEADERS_FRAME_NONE,
	    false, b), "HTTP/1.1 100 Continue\r\n\r\n");
	assert_string_equal(response_head(f, 0, 7, HEADERS_FRAME_NONE,
	    false, b), "HTTP/1.1 007 \r\n\r\n");
	assert_null(response_head(f, 0, 1000, HEADERS_FRAME_NONE, false, b));
	assert_null(response_head(f, 0, -1, HEADERS_FRAME_NONE, false, b));
	assert_string_equal(response_head(NULL, 0, 599, HEADERS_FRAME_CLOSE,
	    true, b), "HTTP/1.1 599 \r\nConnection: close\r\n\r\n");
	buf_free(b);
}

static void
test_reasons(void **state)
{
	(void)state;
	assert_string_equal(headers_reason(421), "Misdirected Request");
	assert_string_equal(headers_reason(413), "Content Too Large");
	assert_string_equal(headers_reason(299), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_exact_bytes),
		cmocka_unit_test(test_request_drops_proxy_trust),
		cmocka_unit_test(test_request_client_cert),
		cmocka_unit_test(test_escape_value),
		cmocka_unit_test(test_request_framing),
		cmocka_unit_test(test_request_websocket),
		cmocka_unit_test(test_request_does_not_fit),
		cmocka_unit_test(test_hop_by_hop),
		cmocka_unit_test(test_first_connection),
		cmocka_unit_test(test_response_framing),
		cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
