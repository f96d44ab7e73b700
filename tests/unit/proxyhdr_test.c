/*
 * proxyhdr_test.c - the PROXY header sent upstream, byte for byte: v1
 * over IPv4, IPv6, an IPv4-mapped client, mixed families and unknown
 * addresses; v2 over both families with and without TLS (ALPN, SNI,
 * SSL with version and cipher, the client bits and verify), the TLVs
 * left out (no ALPN, no SNI, too long), LOCAL; the room asked for.
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
#include <sys/un.h>

#include "proxyhdr.h"

static struct sockaddr_storage
sa(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
	} else
		fail_msg("bad address %s", ip);
	return ss;
}

static size_t
build(int v, const char *src, unsigned sport, const char *dst,
    unsigned dport, const struct proxyhdr_tls *tls, unsigned char *out)
{
	struct sockaddr_storage s = sa(src, sport), d = sa(dst, dport);
	struct proxyhdr_conn c = { (struct sockaddr *)&s,
	    (struct sockaddr *)&d, tls };

	return proxyhdr_build(v, &c, out, PROXYHDR_MAX);
}

static void
v1_is(const char *src, unsigned sport, const char *dst, unsigned dport,
    const char *want)
{
	unsigned char out[PROXYHDR_MAX];
	size_t n = build(PROXYHDR_V1, src, sport, dst, dport, NULL, out);

	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
}

static void
test_v1(void **state)
{
	unsigned char out[PROXYHDR_MAX];
	struct sockaddr_storage d = sa("127.0.0.1", 443);
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/x" };
	struct proxyhdr_conn c = { NULL, (struct sockaddr *)&d, NULL };
	size_t n;

	(void)state;
	v1_is("192.0.2.1", 56324, "198.51.100.7", 443,
	    "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
	v1_is("2001:db8::1", 1, "2001:db8:0:0:0:0:0:2", 65535,
	    "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n");
	/* A client an IPv6 listener took over IPv4: as IPv4, both. */
	v1_is("::ffff:192.0.2.1", 40000, "::ffff:127.0.0.1", 8443,
	    "PROXY TCP4 192.0.2.1 127.0.0.1 40000 8443\r\n");
	/* One of each: both as IPv6, the IPv4 one mapped. */
	v1_is("192.0.2.1", 40000, "::1", 8443,
	    "PROXY TCP6 ::ffff:192.0.2.1 ::1 40000 8443\r\n");
	v1_is("2001:db8::1", 40000, "127.0.0.1", 8443,
	    "PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 40000 8443\r\n");
	/* The longest fits the spec's 107 bytes. */
	n = build(PROXYHDR_V1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
	    65535, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, NULL,
	    out);
	assert_true(n > 0 && n <= 107);
	/* Unknown. */
	n = proxyhdr_build(PROXYHDR_V1, &c, out, sizeof(out));
	assert_int_equal(n, 15);
	assert_memory_equal(out, "PROXY UNKNOWN\r\n", 15);
	c.src = (struct sockaddr *)&un;
	assert_int_equal(proxyhdr_build(PROXYHDR_V1, &c, out, sizeof(out)),
	    15);
	/* Room: exactly enough (and snprintf's NUL), or nothing. */
	c.src = NULL;
	assert_int_equal(proxyhdr_build(PROXYHDR_V1, &c, out, 16), 15);
	assert_int_equal(proxyhdr_build(PROXYHDR_V1, &c, out, 15), 0);
	assert_int_equal(proxyhdr_build(3, &c, out, sizeof(out)), 0);
	assert_int_equal(proxyhdr_build(0, &c, out, sizeof(out)), 0);
}

#define SIG	"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"

static void
expect(const unsigned char *got, size_t n, const char *want, size_t wlen)
{
	size_t i;

	if (n != wlen || memcmp(got, want, wlen) != 0) {
		for (i = 0; i < n && i < wlen; i++)
			if (got[i] != (unsigned char)want[i])
				break;
		fail_msg("%zu bytes, %zu wanted; first difference at %zu",
		    n, wlen, i);
	}
}

static void
test_v2_plain(void **state)
{
	unsigned char out[PROXYHDR_MAX];
	static const char want4[] = SIG "\x21\x11\x00\x0c"
	    "\xc0\x00\x02\x01" "\x7f\x00\x00\x01" "\xdc\x04" "\x01\xbb";
	static const char want6[] = SIG "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01"
	    "\x00\x50" "\x20\xfb";
	size_t n;

	(void)state;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, NULL,
	    out);
	expect(out, n, want4, sizeof(want4) - 1);
	/* Mapped client on an IPv6 listener: IPv4. */
	n = build(PROXYHDR_V2, "::ffff:192.0.2.1", 56324, "::ffff:127.0.0.1",
	    443, NULL, out);
	expect(out, n, want4, sizeof(want4) - 1);
	/* Mixed: IPv6, the IPv4 one mapped. */
	n = build(PROXYHDR_V2, "2001:db8::1", 80, "127.0.0.1", 8443, NULL,
	    out);
	expect(out, n, want6, sizeof(want6) - 1);
	/* Room: one byte short is nothing. */
	{
		struct sockaddr_storage s = sa("192.0.2.1", 1),
		    d = sa("127.0.0.1", 2);
		struct proxyhdr_conn c = { (struct sockaddr *)&s,
		    (struct sockaddr *)&d, NULL };

		assert_int_equal(proxyhdr_build(PROXYHDR_V2, &c, out, 28),
		    28);
		assert_int_equal(proxyhdr_build(PROXYHDR_V2, &c, out, 27), 0);
	}
}

static void
test_v2_tls(void **state)
{
	unsigned char out[PROXYHDR_MAX];
	struct proxyhdr_tls t = { "h2", "www.example.com", 15, "TLSv1.3",
	    "TLS_AES_256_GCM_SHA384", false, false, false };
	/* 12 address bytes; ALPN 3+2; AUTHORITY 3+15; SSL 3 + 5 + VERSION
	   3+7 + CIPHER 3+22 = 43: 12 + 5 + 18 + 43 = 78 = 0x4e. */
	static const char want[] = SIG "\x21\x11\x00\x4e"
	    "\xc0\x00\x02\x01" "\x7f\x00\x00\x01" "\xdc\x04" "\x01\xbb"
	    "\x01\x00\x02" "h2"
	    "\x02\x00\x0f" "www.example.com"
	    "\x20\x00\x28" "\x01" "\x00\x00\x00\x01"
	    "\x21\x00\x07" "TLSv1.3"
	    "\x23\x00\x16" "TLS_AES_256_GCM_SHA384";
	/* No ALPN, no SNI, HTTP/1.1 not said: SSL alone, 12 + 43 = 55. */
	static const char bare[] = SIG "\x21\x11\x00\x37"
	    "\xc0\x00\x02\x01" "\x7f\x00\x00\x01" "\xdc\x04" "\x01\xbb"
	    "\x20\x00\x28" "\x01" "\x00\x00\x00\x01"
	    "\x21\x00\x07" "TLSv1.3"
	    "\x23\x00\x16" "TLS_AES_256_GCM_SHA384";
	/* A verified client certificate on this connection: client bits
	   SSL | CERT_CONN | CERT_SESS, verify 0. */
	static const char cert[] = SIG "\x21\x11\x00\x37"
	    "\xc0\x00\x02\x01" "\x7f\x00\x00\x01" "\xdc\x04" "\x01\xbb"
	    "\x20\x00\x28" "\x07" "\x00\x00\x00\x00"
	    "\x21\x00\x07" "TLSv1.3"
	    "\x23\x00\x16" "TLS_AES_256_GCM_SHA384";
	char longname[PROXYHDR_STR_MAX + 2];
	size_t n;

	(void)state;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	expect(out, n, want, sizeof(want) - 1);
	/* v1 has no TLVs. */
	n = build(PROXYHDR_V1, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	expect(out, n, "PROXY TCP4 192.0.2.1 127.0.0.1 56324 443\r\n", 42);

	t.alpn = "";
	t.sni = NULL;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	expect(out, n, bare, sizeof(bare) - 1);
	t.alpn = NULL;
	t.sni = "x";
	t.sni_len = 0;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	expect(out, n, bare, sizeof(bare) - 1);
	/* Too long for a TLV here: left out. */
	memset(longname, 'a', sizeof(longname));
	t.sni = longname;
	t.sni_len = PROXYHDR_STR_MAX + 1;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	expect(out, n, bare, sizeof(bare) - 1);

	/* A certificate presented but not verified: verify stays 1. */
	t.sni = NULL;
	t.cert_conn = true;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	assert_int_equal(n, sizeof(cert) - 1);
	assert_int_equal(out[16 + 12 + 3], 0x07);
	assert_memory_equal(out + 16 + 12 + 4, "\x00\x00\x00\x01", 4);
	t.verified = true;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	expect(out, n, cert, sizeof(cert) - 1);
	/* From the session only (resumed): CERT_SESS alone. */
	t.cert_conn = false;
	t.cert_sess = true;
	n = build(PROXYHDR_V2, "192.0.2.1", 56324, "127.0.0.1", 443, &t, out);
	assert_int_equal(n, sizeof(cert) - 1);
	assert_int_equal(out[16 + 12 + 3], 0x05);
	assert_memory_equal(out + 16 + 12 + 4, "\x00\x00\x00\x00", 4);
}

/* Every TLV at its longest, over IPv6: PROXYHDR_MAX exactly. */
static void
test_v2_largest(void **state)
{
	unsigned char out[PROXYHDR_MAX];
	char s[PROXYHDR_STR_MAX + 1];
	struct proxyhdr_tls t;
	size_t n;

	(void)state;
	memset(s, 'x', PROXYHDR_STR_MAX);
	s[PROXYHDR_STR_MAX] = '\0';
	t = (struct proxyhdr_tls){ s, s, PROXYHDR_STR_MAX, s, s, true, true,
	    true };
	n = build(PROXYHDR_V2, "2001:db8::1", 1, "2001:db8::2", 2, &t, out);
	assert_int_equal(n, PROXYHDR_MAX);
	assert_int_equal((out[14] << 8) | out[15], PROXYHDR_MAX - 16);
	{
		struct sockaddr_storage a = sa("2001:db8::1", 1),
		    b = sa("2001:db8::2", 2);
		struct proxyhdr_conn c = { (struct sockaddr *)&a,
		    (struct sockaddr *)&b, &t };

		assert_int_equal(proxyhdr_build(PROXYHDR_V2, &c, out,
		    PROXYHDR_MAX - 1), 0);
	}
}

static void
test_local(void **state)
{
	unsigned char out[PROXYHDR_LOCAL_MAX];
	struct sockaddr_storage d = sa("127.0.0.1", 443);
	struct proxyhdr_tls t = { "h2", NULL, 0, "TLSv1.3", "X", false, false,
	    false };
	struct proxyhdr_conn c = { NULL, (struct sockaddr *)&d, &t };
	unsigned char big[PROXYHDR_MAX];

	(void)state;
	assert_int_equal(proxyhdr_local(PROXYHDR_V1, out, sizeof(out)), 15);
	assert_memory_equal(out, "PROXY UNKNOWN\r\n", 15);
	assert_int_equal(proxyhdr_local(PROXYHDR_V2, out, sizeof(out)), 16);
	assert_memory_equal(out, SIG "\x20\x00\x00\x00", 16);
	assert_int_equal(proxyhdr_local(PROXYHDR_V2, out, 15), 0);
	assert_int_equal(proxyhdr_local(7, out, sizeof(out)), 0);
	/* A client whose address is unknown: LOCAL, no TLV either. */
	assert_int_equal(proxyhdr_build(PROXYHDR_V2, &c, big, sizeof(big)),
	    16);
	assert_memory_equal(big, SIG "\x20\x00\x00\x00", 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v2_plain),
		cmocka_unit_test(test_v2_tls),
		cmocka_unit_test(test_v2_largest),
		cmocka_unit_test(test_local),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
