/*
 * realip_test.c - real-ip-header's list: the rightmost untrusted address,
 * the leftmost when all are trusted, several fields as one list, both
 * families (IPv4-mapped as IPv4, as cidr.h), spaces and tabs around
 * elements, and every list that leaves the connection's client: empty,
 * an empty element, a port, brackets, a zone, junk, a NUL, too many.
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
#include "realip.h"

static struct cidr trusted[3];
static size_t ntrusted;

static void
trust(const char *s)
{
	char why[64];

	assert_int_equal(cidr_parse(s, strlen(s), &trusted[ntrusted++], why,
	    sizeof(why)), 0);
}

static int
setup(void **state)
{
	(void)state;
	ntrusted = 0;
	trust("10.0.0.0/8");
	trust("2001:db8::/32");
	trust("192.0.2.7");
	return 0;
}

static const char *
text_of(const struct sockaddr_storage *ss)
{
	static char buf[INET6_ADDRSTRLEN];
	const void *a = ss->ss_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr :
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	assert_true(ss->ss_family == AF_INET || ss->ss_family == AF_INET6);
	assert_non_null(inet_ntop(ss->ss_family, a, buf, sizeof(buf)));
	return buf;
}

/* The client the fields (NULL-terminated) name, or NULL. */
static const char *
pick(const char *first, ...)
{
	struct sockaddr_storage ss;
	struct realip r;
	const char *v;
	va_list ap;

	realip_init(&r, trusted, ntrusted);
	va_start(ap, first);
	for (v = first; v != NULL; v = va_arg(ap, const char *))
		realip_add(&r, v, strlen(v));
	va_end(ap);
	if (!realip_result(&r, &ss))
		return NULL;
	return text_of(&ss);
}

static void
test_rightmost_untrusted(void **state)
{
	(void)state;
	assert_string_equal(pick("203.0.113.5", NULL), "203.0.113.5");
	assert_string_equal(pick("203.0.113.5, 10.1.1.1", NULL),
	    "203.0.113.5");
	/* A client-sent spoof on the left is passed over. */
	assert_string_equal(pick("1.1.1.1, 203.0.113.5, 10.1.1.1, 192.0.2.7",
	    NULL), "203.0.113.5");
	assert_string_equal(pick("2001:db8::1, 2001:db9::5,2001:db8::2",
	    NULL), "2001:db9::5");
	/* All trusted: the leftmost. */
	assert_string_equal(pick("10.9.9.9, 10.1.1.1", NULL), "10.9.9.9");
	assert_string_equal(pick("192.0.2.7", NULL), "192.0.2.7");
	/* IPv4-mapped is IPv4: trusted as 10.0.0.0/8. */
	assert_string_equal(pick("198.51.100.1, ::ffff:10.1.2.3", NULL),
	    "198.51.100.1");
	/* Spaces and tabs around elements. */
	assert_string_equal(pick(" \t203.0.113.5 \t,\t 10.1.1.1 ", NULL),
	    "203.0.113.5");
}

static void
test_several_fields(void **state)
{
	(void)state;
	assert_string_equal(pick("203.0.113.5", "10.1.1.1", NULL),
	    "203.0.113.5");
	assert_string_equal(pick("203.0.113.5", "198.51.100.9, 10.1.1.1",
	    NULL), "198.51.100.9");
	assert_string_equal(pick("10.2.2.2", "10.1.1.1", NULL), "10.2.2.2");
	/* Read from the right: what is left of a bad element does not
	   matter, a bad rightmost field leaves the connection's client. */
	assert_null(pick("203.0.113.5", "junk", NULL));
	assert_string_equal(pick("", "203.0.113.5", NULL), "203.0.113.5");
	assert_string_equal(pick("junk", "10.1.1.1", NULL), "10.1.1.1");
}

static void
test_unusable(void **state)
{
	(void)state;
	assert_null(pick(NULL));
	assert_null(pick("", NULL));
	assert_null(pick(" ", NULL));
	assert_null(pick(",", NULL));
	assert_null(pick("203.0.113.5,", NULL));
	assert_null(pick("203.0.113.5:443", NULL));
	assert_null(pick("[2001:db9::5]", NULL));
	assert_null(pick("fe80::1%eth0", NULL));
	assert_null(pick("unknown", NULL));
	assert_null(pick("203.0.113.5 10.1.1.1", NULL));
	assert_null(pick("203.0.113.05", NULL));
	assert_null(pick("203.0.113", NULL));
	assert_null(pick("for=203.0.113.5", NULL));
	assert_null(pick("10.1.1.1, junk", NULL));
	{
		struct sockaddr_storage ss;
		struct realip r;

		realip_init(&r, trusted, ntrusted);
		realip_add(&r, "203.0.113.5\0", 12);
		assert_false(realip_result(&r, &ss));
	}
}

/*
 * nginx's walk from the right: a client's garbage left of what the
 * trusted proxies appended never takes the client away from them (the
 * balancer's own address would then be the client: banned by fail2ban,
 * let in by an allow list of it).
 */
static void
test_garbage_on_the_left(void **state)
{
	char many[4096];
	size_t i, n = 0;

	(void)state;
	assert_string_equal(pick("x, 198.51.100.7", NULL), "198.51.100.7");
	assert_string_equal(pick(",203.0.113.5", NULL), "203.0.113.5");
	assert_string_equal(pick("203.0.113.5,,10.1.1.1", NULL), "10.1.1.1");
	assert_string_equal(pick("1.2.3.4:80, unknown, 198.51.100.7, "
	    "10.1.1.1", NULL), "198.51.100.7");
	/* Garbage right of untrusted addresses: the trusted one after it. */
	assert_string_equal(pick("198.51.100.7, junk, 10.2.2.2, 10.1.1.1",
	    NULL), "10.2.2.2");
	/* No bound on the elements: 300 of them, the rightmost untrusted. */
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%s10.0.0.%zu",
		    i > 0 ? "," : "", i % 250);
	assert_string_equal(pick(many, NULL), "10.0.0.0");
	snprintf(many + n, sizeof(many) - n, ",203.0.113.5");
	assert_string_equal(pick(many, NULL), "203.0.113.5");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rightmost_untrusted, setup),
		cmocka_unit_test_setup(test_several_fields, setup),
		cmocka_unit_test_setup(test_unusable, setup),
		cmocka_unit_test_setup(test_garbage_on_the_left, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
