/*
 * proxyproto_test.c - the PROXY protocol header: the specification's
 * examples (v1 TCP4, TCP6, UNKNOWN, the longest line; v2 TCP over IPv4
 * and IPv6, LOCAL, UNSPEC, UNIX, TLVs), every prefix of a good header
 * asking for more, detection of the signatures, and every malformed case
 * refused with its reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyproto.h"

static const uint8_t SIG2[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* p parses whole; every proper prefix of it asks for more. */
static struct proxyproto
done(const uint8_t *p, size_t len)
{
	struct proxyproto r;
	size_t i;

	for (i = 0; i < len; i++)
		if (proxyproto_parse(p, i, &r) != PROXYPROTO_MORE)
			fail_msg("prefix of %zu bytes: not MORE (%s)", i,
			    r.why ? r.why : "done");
	if (proxyproto_parse(p, len, &r) != PROXYPROTO_DONE)
		fail_msg("refused: %s", r.why);
	assert_int_equal(r.len, len);
	return r;
}

static struct proxyproto
done_s(const char *s)
{
	return done((const uint8_t *)s, strlen(s));
}

static void
refused(const uint8_t *p, size_t len, const char *want)
{
	struct proxyproto r;

	if (proxyproto_parse(p, len, &r) != PROXYPROTO_ERROR)
		fail_msg("not refused (wanted \"%s\")", want);
	if (r.why == NULL || strstr(r.why, want) == NULL)
		fail_msg("\"%s\", not \"%s\"", r.why ? r.why : "", want);
}

static void
refused_s(const char *s, const char *want)
{
	refused((const uint8_t *)s, strlen(s), want);
}

static void
assert_addr(const struct sockaddr_storage *ss, const char *ip, int port)
{
	char text[INET6_ADDRSTRLEN];
	const void *a;
	int p;

	if (ss->ss_family == AF_INET) {
		a = &((const struct sockaddr_in *)ss)->sin_addr;
		p = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else {
		assert_int_equal(ss->ss_family, AF_INET6);
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		p = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	assert_non_null(inet_ntop(ss->ss_family, a, text, sizeof(text)));
	assert_string_equal(text, ip);
	assert_int_equal(p, port);
}

static void
test_detect(void **state)
{
	(void)state;
	assert_int_equal(proxyproto_detect((const uint8_t *)"", 0),
	    PROXYPROTO_SIG_MORE);
	assert_int_equal(proxyproto_detect((const uint8_t *)"P", 1),
	    PROXYPROTO_SIG_MORE);
	assert_int_equal(proxyproto_detect((const uint8_t *)"PROXY", 5),
	    PROXYPROTO_SIG_MORE);
	assert_int_equal(proxyproto_detect((const uint8_t *)"PROXY ", 6),
	    PROXYPROTO_SIG_V1);
	assert_int_equal(proxyproto_detect((const uint8_t *)"PROXYX", 6),
	    PROXYPROTO_SIG_NONE);
	assert_int_equal(proxyproto_detect((const uint8_t *)"POST /", 6),
	    PROXYPROTO_SIG_NONE);
	assert_int_equal(proxyproto_detect((const uint8_t *)"PRI * ", 6),
	    PROXYPROTO_SIG_NONE);
	/* A TLS ClientHello's record header. */
	assert_int_equal(proxyproto_detect((const uint8_t *)"\x16\x03\x01",
	    3), PROXYPROTO_SIG_NONE);
	assert_int_equal(proxyproto_detect(SIG2, 11), PROXYPROTO_SIG_MORE);
	assert_int_equal(proxyproto_detect(SIG2, 12), PROXYPROTO_SIG_V2);
	assert_int_equal(proxyproto_detect((const uint8_t *)"\r\n\r\nX", 5),
	    PROXYPROTO_SIG_NONE);
}

static void
test_v1(void **state)
{
	struct proxyproto r;

	(void)state;
	r = done_s("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535"
	    "\r\n");
	assert_int_equal(r.version, 1);
	assert_int_equal(r.cmd, PROXYPROTO_PROXY);
	assert_true(r.has_addr);
	assert_addr(&r.src, "255.255.255.255", 65535);

	r = done_s("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
	assert_addr(&r.src, "192.168.0.1", 56324);
	assert_addr(&r.dst, "192.168.0.11", 443);

	r = done_s("PROXY TCP6 2001:db8::1 ::1 0 8443\r\n");
	assert_addr(&r.src, "2001:db8::1", 0);
	assert_addr(&r.dst, "::1", 8443);

	/* An IPv4-mapped source stays as written (cidr.h takes it as
	   IPv4). */
	r = done_s("PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n");
	assert_addr(&r.src, "::ffff:192.0.2.7", 1);
}

static void
test_v1_longest(void **state)
{
	const char *s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct proxyproto r;

	(void)state;
	/* 104 bytes; the specification's 107 is this with UNKNOWN. */
	assert_int_equal(strlen(s), PROXYPROTO_V1_MAX - 3);
	r = done_s(s);
	assert_addr(&r.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void
test_v1_unknown(void **state)
{
	struct proxyproto r;

	(void)state;
	r = done_s("PROXY UNKNOWN\r\n");
	assert_false(r.has_addr);
	r = done_s("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 "
	    "65535\r\n");
	assert_false(r.has_addr);
	refused_s("PROXY UNKNOWNX\r\n", "protocol");
}

/* What comes after the header is not looked at. */
static void
test_v1_trailing(void **state)
{
	const char *s = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\x16\x03\x01";
	struct proxyproto r;

	(void)state;
	assert_int_equal(proxyproto_parse((const uint8_t *)s, strlen(s), &r),
	    PROXYPROTO_DONE);
	assert_int_equal(r.len, strlen(s) - 3);
}

static void
test_v1_malformed(void **state)
{
	char big[200];

	(void)state;
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not before LF");
	refused_s("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "empty field");
	refused_s("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "empty field");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "empty field");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "empty field");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "more than four");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "fewer than four");
	refused_s("PROXY TCP4 1.2.3.4\r\n", "fewer than four");
	refused_s("PROXY TCP4\r\n", "protocol");
	refused_s("PROXY \r\n", "protocol");
	refused_s("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol");
	refused_s("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol");
	refused_s("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "printable");
	refused_s("PROXY TCP4 ::1 ::1 1 2\r\n", "source address");
	refused_s("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "source address");
	refused_s("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "source address");
	refused_s("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "source address");
	refused_s("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "source address");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.x 1 2\r\n", "destination address");
	refused_s("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "source address");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "source port");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "source port");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "source port");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "source port");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n", "destination "
	    "port");
	refused_s("PROXY TCP4 1.2.3.4 5.6.7.8 1 0x10\r\n", "destination port");
	refused((const uint8_t *)"PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33,
	    "printable");
	refused((const uint8_t *)"PROXY TCP4 1.2.3.\xff 5.6.7.8 1 2\r\n", 32,
	    "printable");
	/* No CRLF within 107 bytes: refused at once, not waited for. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "PROXY UNKNOWN ", 14);
	refused((const uint8_t *)big, PROXYPROTO_V1_MAX, "107");
	refused((const uint8_t *)big, sizeof(big), "107");
	/* 108 bytes with the CRLF at the end. */
	big[106] = '\r';
	big[107] = '\n';
	refused((const uint8_t *)big, 108, "107");
	big[105] = '\r';
	big[106] = '\n';
	assert_int_equal(done((const uint8_t *)big, 107).has_addr, false);
}

static void
test_not_proxy(void **state)
{
	(void)state;
	refused_s("GET / HTTP/1.1\r\n", "not a PROXY");
	refused_s("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY");
	refused((const uint8_t *)"\x16\x03\x01\x02\x00", 5, "not a PROXY");
}

/* A v2 header: the fixed part, then blen bytes of body. */
static size_t
v2(uint8_t *out, uint8_t vercmd, uint8_t famproto, const uint8_t *body,
    uint16_t blen)
{
	memcpy(out, SIG2, 12);
	out[12] = vercmd;
	out[13] = famproto;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + (size_t)blen;
}

static const uint8_t INET_BODY[12] = { 192, 0, 2, 1, 198, 51, 100, 2,
    0xdb, 0xf0, 0x01, 0xbb };	/* 56304, 443 */

static void
test_v2_inet(void **state)
{
	uint8_t h[256];
	struct proxyproto r;
	size_t n;

	(void)state;
	n = v2(h, 0x21, 0x11, INET_BODY, sizeof(INET_BODY));
	r = done(h, n);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.cmd, PROXYPROTO_PROXY);
	assert_true(r.has_addr);
	assert_addr(&r.src, "192.0.2.1", 56304);
	assert_addr(&r.dst, "198.51.100.2", 443);
}

static void
test_v2_inet6(void **state)
{
	uint8_t body[36], h[256];
	struct proxyproto r;
	size_t n;

	(void)state;
	memset(body, 0, sizeof(body));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::42", body), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", body + 16), 1);
	body[32] = 0x30;
	body[33] = 0x39;		/* 12345 */
	body[34] = 0x01;
	body[35] = 0xbb;
	n = v2(h, 0x21, 0x21, body, sizeof(body));
	r = done(h, n);
	assert_addr(&r.src, "2001:db8::42", 12345);
	assert_addr(&r.dst, "2001:db8::1", 443);
}

/* TLVs after the addresses, as HAProxy sends them (ALPN, authority,
   NOOP, SSL with sub-TLVs): walked, each whole. */
static void
test_v2_tlvs(void **state)
{
	uint8_t body[128], h[256];
	struct proxyproto r;
	size_t b = 0;

	(void)state;
	memcpy(body, INET_BODY, 12);
	b = 12;
	memcpy(body + b, "\x01\x00\x02h2", 5);		/* ALPN */
	b += 5;
	memcpy(body + b, "\x02\x00\x06" "a.test", 9);	/* AUTHORITY */
	b += 9;
	memcpy(body + b, "\x04\x00\x00", 3);		/* NOOP, empty */
	b += 3;
	memcpy(body + b, "\x20\x00\x05\x01\x00\x00\x00\x00", 8); /* SSL */
	b += 8;
	r = done(h, v2(h, 0x21, 0x11, body, (uint16_t)b));
	assert_addr(&r.src, "192.0.2.1", 56304);

	/* A TLV one byte longer than what is left. */
	body[b - 6] = 0x06;
	refused(h, v2(h, 0x21, 0x11, body, (uint16_t)b), "TLV longer");
	/* Two bytes of a TLV header at the end. */
	refused(h, v2(h, 0x21, 0x11, body, 12 + 2), "TLV cut short");
	refused(h, v2(h, 0x21, 0x11, body, 12 + 1), "TLV cut short");
}

static void
test_v2_local(void **state)
{
	uint8_t h[256];
	struct proxyproto r;

	(void)state;
	/* HAProxy's health checks: LOCAL, UNSPEC, no body. */
	r = done(h, v2(h, 0x20, 0x00, NULL, 0));
	assert_int_equal(r.cmd, PROXYPROTO_LOCAL);
	assert_false(r.has_addr);
	/* LOCAL discards the block, whatever its family. */
	r = done(h, v2(h, 0x20, 0x11, INET_BODY, sizeof(INET_BODY)));
	assert_int_equal(r.cmd, PROXYPROTO_LOCAL);
	assert_false(r.has_addr);
	r = done(h, v2(h, 0x20, 0xff, INET_BODY, 3));
	assert_false(r.has_addr);
}

static void
test_v2_unspec_unix(void **state)
{
	uint8_t body[216], h[300];
	struct proxyproto r;

	(void)state;
	r = done(h, v2(h, 0x21, 0x00, NULL, 0));
	assert_int_equal(r.cmd, PROXYPROTO_PROXY);
	assert_false(r.has_addr);
	memset(body, 0, sizeof(body));
	memcpy(body, "/run/a.sock", 11);
	r = done(h, v2(h, 0x21, 0x31, body, sizeof(body)));
	assert_false(r.has_addr);
	refused(h, v2(h, 0x21, 0x31, body, 215), "too short");
}

static void
test_v2_malformed(void **state)
{
	uint8_t body[64], h[256];
	struct proxyproto r;
	size_t n;

	(void)state;
	memset(body, 0, sizeof(body));
	memcpy(body, INET_BODY, 12);
	refused(h, v2(h, 0x11, 0x11, body, 12), "version");
	refused(h, v2(h, 0x31, 0x11, body, 12), "version");
	refused(h, v2(h, 0x22, 0x11, body, 12), "command");
	refused(h, v2(h, 0x2f, 0x11, body, 12), "command");
	refused(h, v2(h, 0x21, 0x41, body, 12), "unknown family");
	refused(h, v2(h, 0x21, 0x13, body, 12), "unknown family");
	refused(h, v2(h, 0x21, 0x12, body, 12), "datagram");
	refused(h, v2(h, 0x21, 0x22, body, 36), "datagram");
	refused(h, v2(h, 0x21, 0x32, body, 64), "datagram");
	refused(h, v2(h, 0x21, 0x10, body, 12), "disagree");
	refused(h, v2(h, 0x21, 0x01, body, 12), "disagree");
	refused(h, v2(h, 0x21, 0x11, body, 11), "too short");
	refused(h, v2(h, 0x21, 0x21, body, 12), "too short");
	refused(h, v2(h, 0x21, 0x21, body, 35), "too short");
	/* A length over what we take: refused at the fixed part. */
	n = v2(h, 0x21, 0x11, body, 0);
	h[14] = (PROXYPROTO_V2_LEN_MAX + 1) >> 8;
	h[15] = (PROXYPROTO_V2_LEN_MAX + 1) & 0xff;
	refused(h, n, "longer");
	h[14] = h[15] = 0xff;
	refused(h, n, "longer");
	/* The longest we take, zeros after the addresses: NOOP TLVs of
	   zero length never fit exactly, so one that spans the rest. */
	{
		static uint8_t big[PROXYPROTO_MAX];
		uint16_t rest = PROXYPROTO_V2_LEN_MAX - 12 - 3;

		memset(big, 0, sizeof(big));
		v2(big, 0x21, 0x11, INET_BODY, 12);
		big[14] = PROXYPROTO_V2_LEN_MAX >> 8;
		big[15] = PROXYPROTO_V2_LEN_MAX & 0xff;
		big[28] = 0x04;
		big[29] = (uint8_t)(rest >> 8);
		big[30] = (uint8_t)rest;
		assert_int_equal(proxyproto_parse(big, sizeof(big), &r),
		    PROXYPROTO_DONE);
		assert_int_equal(r.len, PROXYPROTO_MAX);
	}
	/* A signature cut with a wrong byte. */
	memcpy(h, SIG2, 12);
	h[11] = 0x0b;
	refused(h, 16, "not a PROXY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_longest),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_trailing),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_not_proxy),
		cmocka_unit_test(test_v2_inet),
		cmocka_unit_test(test_v2_inet6),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_unspec_unix),
		cmocka_unit_test(test_v2_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
