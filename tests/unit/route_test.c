/*
 * route_test.c - host normalisation and site lookup: exact names first,
 * then "*.domain" for exactly one more label, per listener.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "testconf.h"
#include "route.h"

static const char conf[] =
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  tls { cert = \"/c\" key = \"/k\" }\n"
    "  site \"example.com\" { upstream = \"127.0.0.1:1\" }\n"
    "  site \"*.example.com\" { upstream = \"127.0.0.1:2\" }\n"
    "  site \"www.example.com\" { upstream = \"127.0.0.1:3\" }\n"
    "  site \"*.a.example.com\" { upstream = \"127.0.0.1:4\" }\n"
    "  site \"localhost\" { upstream = \"127.0.0.1:5\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"::1\"\n"
    "  tls { cert = \"/c\" key = \"/k\" }\n"
    "  site \"other.org\" { upstream = \"127.0.0.1:6\" }\n"
    "}\n";

static struct config *cfg;
static struct route_table *rt;

static int
setup(void **state)
{
	(void)state;
	if ((cfg = testconf_parse(conf, strlen(conf), NULL)) == NULL)
		return -1;
	rt = route_build(cfg);
	return rt == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	route_free(rt);
	config_free(cfg);
	return 0;
}

/* The upstream port of the site a host routes to, 0 for none. */
static int
lookup(size_t li, const char *host)
{
	char norm[300];
	const struct config_site *s;
	int n = route_normalize_host(host, strlen(host), norm, sizeof(norm));

	if (n <= 0 || (s = route_lookup(rt, li, norm, (size_t)n)) == NULL)
		return 0;
	return (int)(s->be.ups[0].name[strlen(s->be.ups[0].name) - 1] - '0');
}

static void
test_exact_before_wildcard(void **state)
{
	(void)state;
	assert_int_equal(lookup(0, "example.com"), 1);
	assert_int_equal(lookup(0, "www.example.com"), 3);
	assert_int_equal(lookup(0, "api.example.com"), 2);
	assert_int_equal(lookup(0, "localhost"), 5);
}

static void
test_wildcard_is_one_label(void **state)
{
	(void)state;
	assert_int_equal(lookup(0, "x.api.example.com"), 0);
	assert_int_equal(lookup(0, "x.a.example.com"), 4);
	assert_int_equal(lookup(0, "a.example.com"), 2);
	assert_int_equal(lookup(0, ".example.com"), 0);
	assert_int_equal(lookup(0, "com"), 0);
	assert_int_equal(lookup(0, "example.org"), 0);
	assert_int_equal(lookup(0, "xexample.com"), 0);
}

static void
test_normalisation(void **state)
{
	(void)state;
	assert_int_equal(lookup(0, "EXAMPLE.Com"), 1);
	assert_int_equal(lookup(0, "example.com."), 1);
	assert_int_equal(lookup(0, "example.com:8443"), 1);
	assert_int_equal(lookup(0, "Www.Example.Com.:443"), 3);
	/* One trailing dot only, and the port is not part of the name. */
	assert_int_equal(lookup(0, "example.com.."), 0);
	assert_int_equal(lookup(0, "[::1]"), 0);
	assert_int_equal(lookup(0, "[::1]:443"), 0);
	assert_int_equal(lookup(0, "127.0.0.1"), 0);
}

static void
test_normalize_edges(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(route_normalize_host("", 0, out, sizeof(out)), -1);
	assert_int_equal(route_normalize_host(":80", 3, out, sizeof(out)), -1);
	assert_int_equal(route_normalize_host(".", 1, out, sizeof(out)), -1);
	assert_int_equal(route_normalize_host("[::1", 4, out, sizeof(out)), -1);
	assert_int_equal(route_normalize_host("[::1]:80", 8, out, sizeof(out)),
	    5);
	assert_memory_equal(out, "[::1]", 5);
	/* Longer than the output: refused, nothing past the end. */
	assert_int_equal(route_normalize_host("abcdefghi", 9, out, 8), -1);
	assert_int_equal(route_normalize_host("abcdefgh", 8, out, 8), 8);
	assert_memory_equal(out, "abcdefgh", 8);
}

static void
test_per_listener(void **state)
{
	(void)state;
	assert_int_equal(lookup(1, "other.org"), 6);
	assert_int_equal(lookup(1, "example.com"), 0);
	assert_int_equal(lookup(0, "other.org"), 0);
	assert_int_equal(lookup(2, "example.com"), 0);	/* no such listener */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_before_wildcard),
		cmocka_unit_test(test_wildcard_is_one_label),
		cmocka_unit_test(test_normalisation),
		cmocka_unit_test(test_normalize_edges),
		cmocka_unit_test(test_per_listener),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
