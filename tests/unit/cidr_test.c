/*
 * cidr_test.c - address ranges: what parses (addresses, prefixes of
 * every length, both families) and what is refused (host bits past the
 * prefix, a bad length, IPv4-mapped spellings, junk), the canonical
 * form, and matching: prefix boundaries inside a byte, /0, one address,
 * IPv4-mapped clients as IPv4, families apart, the first of a list.
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

#include "cidr.h"

static struct cidr
ok(const char *s)
{
	struct cidr c;
	char why[128];

	if (cidr_parse(s, strlen(s), &c, why, sizeof(why)) != 0)
		fail_msg("%s refused: %s", s, why);
	return c;
}

static void
refused(const char *s, const char *want)
{
	struct cidr c;
	char why[128] = "";

	assert_int_equal(cidr_parse(s, strlen(s), &c, why, sizeof(why)), -1);
	if (strstr(why, want) == NULL)
		fail_msg("%s: \"%s\", not \"%s\"", s, why, want);
}

static void
assert_text(const char *s, const char *want)
{
	struct cidr c = ok(s);
	char buf[CIDR_TEXT_MAX];

	cidr_format(&c, buf);
	assert_string_equal(buf, want);
}

static void
test_parse(void **state)
{
	struct cidr c;

	(void)state;
	c = ok("10.0.0.0/8");
	assert_int_equal(c.family, 4);
	assert_int_equal(c.bits, 8);
	assert_int_equal(c.addr[0], 10);
	assert_text("10.0.0.0/8", "10.0.0.0/8");
	assert_text("192.0.2.7", "192.0.2.7/32");
	assert_text("0.0.0.0/0", "0.0.0.0/0");
	assert_text("192.0.2.128/25", "192.0.2.128/25");
	assert_text("2001:db8::/32", "2001:db8::/32");
	assert_text("2001:DB8:0:0::/32", "2001:db8::/32");
	assert_text("::1", "::1/128");
	assert_text("::/0", "::/0");
	assert_text("2001:db8:42::/48", "2001:db8:42::/48");
	assert_text("fe80::/10", "fe80::/10");
	assert_text("2001:db8::8000/113", "2001:db8::8000/113");
	/* Bits set past the prefix: the rule would not say what it means. */
	refused("10.0.0.1/8", "bits set past");
	refused("192.0.2.1/31", "bits set past");
	refused("2001:db8::1/64", "bits set past");
	refused("fec0::/9", "bits set past");
	/* Lengths. */
	refused("10.0.0.0/33", "over 32");
	refused("::/129", "over 128");
	refused("10.0.0.0/", "prefix length");
	refused("10.0.0.0/08", "prefix length");
	refused("10.0.0.0/-8", "prefix length");
	refused("10.0.0.0/+8", "prefix length");
	refused("10.0.0.0/8 ", "prefix length");
	refused("10.0.0.0/1000", "prefix length");
	refused("10.0.0.0/8/8", "prefix length");
	/* Addresses. */
	refused("", "not an address");
	refused("/8", "not an address");
	refused("10.0.0", "not an IPv4 or IPv6");
	refused("010.0.0.0/8", "not an IPv4 or IPv6");
	refused("10.0.0.0.0", "not an IPv4 or IPv6");
	refused(" 10.0.0.0", "not an IPv4 or IPv6");
	refused("example.com", "not an IPv4 or IPv6");
	refused("[::1]", "not an IPv4 or IPv6");
	refused("fe80::1%eth0", "not an IPv4 or IPv6");
	refused("::ffff:192.0.2.1", "IPv4-mapped");
	refused("::ffff:0:0/96", "IPv4-mapped");
	/* A NUL inside is not the end of it. */
	assert_int_equal(cidr_parse("10.0.0.0\0/8", 11, &c, (char[64]){ 0 },
	    64), -1);
	/* Only len bytes are read. */
	assert_int_equal(cidr_parse("10.0.0.0/8xyz", 10, &c, (char[64]){ 0 },
	    64), 0);
	assert_int_equal(c.bits, 8);
}

static struct sockaddr_storage
sa(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
	}
	return ss;
}

static bool
in(const char *range, const char *ip)
{
	struct cidr c = ok(range);
	struct sockaddr_storage ss = sa(ip);

	return cidr_find(&c, 1, (struct sockaddr *)&ss) == 0;
}

static void
test_match(void **state)
{
	(void)state;
	assert_true(in("10.0.0.0/8", "10.255.255.255"));
	assert_false(in("10.0.0.0/8", "11.0.0.0"));
	assert_false(in("10.0.0.0/8", "9.255.255.255"));
	/* A boundary inside a byte. */
	assert_true(in("192.0.2.128/25", "192.0.2.128"));
	assert_true(in("192.0.2.128/25", "192.0.2.255"));
	assert_false(in("192.0.2.128/25", "192.0.2.127"));
	assert_true(in("192.0.2.64/26", "192.0.2.100"));
	assert_false(in("192.0.2.64/26", "192.0.2.128"));
	/* One address. */
	assert_true(in("192.0.2.7", "192.0.2.7"));
	assert_false(in("192.0.2.7", "192.0.2.6"));
	assert_true(in("0.0.0.0/0", "203.0.113.9"));
	/* An IPv4 client on an IPv6 socket is the IPv4 client. */
	assert_true(in("192.0.2.0/24", "::ffff:192.0.2.9"));
	assert_true(in("0.0.0.0/0", "::ffff:192.0.2.9"));
	assert_false(in("::/0", "::ffff:192.0.2.9"));
	assert_false(in("::/0", "192.0.2.9"));
	assert_false(in("0.0.0.0/0", "::1"));
	/* IPv6. */
	assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in("2001:db8::/32", "2001:db9::1"));
	assert_true(in("2001:db8:42::/48", "2001:db8:42:ffff::1"));
	assert_false(in("2001:db8:42::/48", "2001:db8:43::1"));
	assert_true(in("fe80::/10", "febf::1"));
	assert_false(in("fe80::/10", "fec0::1"));
	assert_true(in("::/0", "2001:db8::1"));
	assert_true(in("::1", "::1"));
	assert_false(in("::1", "::2"));
	assert_true(in("2001:db8::8000/113", "2001:db8::ffff"));
	assert_false(in("2001:db8::8000/113", "2001:db8::7fff"));
}

static void
test_find_and_other_families(void **state)
{
	struct cidr list[3];
	struct sockaddr_storage ss;
	struct sockaddr un = { .sa_family = AF_UNIX };
	struct cidr c;

	(void)state;
	list[0] = ok("192.0.2.0/24");
	list[1] = ok("2001:db8::/32");
	list[2] = ok("0.0.0.0/0");
	ss = sa("192.0.2.1");
	assert_int_equal(cidr_find(list, 3, (struct sockaddr *)&ss), 0);
	ss = sa("198.51.100.1");
	assert_int_equal(cidr_find(list, 3, (struct sockaddr *)&ss), 2);
	ss = sa("2001:db8::5");
	assert_int_equal(cidr_find(list, 3, (struct sockaddr *)&ss), 1);
	ss = sa("2001:db9::5");
	assert_int_equal(cidr_find(list, 3, (struct sockaddr *)&ss), -1);
	assert_int_equal(cidr_find(list, 0, (struct sockaddr *)&ss), -1);
	assert_int_equal(cidr_find(list, 3, &un), -1);
	assert_false(cidr_of(&un, &c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_find_and_other_families),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
