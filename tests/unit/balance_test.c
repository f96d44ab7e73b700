/*
 * balance_test.c - choosing an upstream: the distribution of each policy
 * over many requests, skipping the tried and the down, ip-hash's
 * consistency (the same client to the same upstream; adding one moves
 * about 1/N of clients; IPv6 clients by /64), sticky-cookie's fallback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "config.h"
#include "testconf.h"
#include "upstate.h"

static struct upstate U;
static void *mem;
static struct config_upstream ups[CONFIG_MAX_UPSTREAMS];
static char names[CONFIG_MAX_UPSTREAMS][32];

static int
setup(void **state)
{
	(void)state;
	if ((mem = calloc(1, upstate_bytes())) == NULL)
		return -1;
	upstate_attach(&U, mem, upstate_bytes(), 4, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

/* n upstreams "10.0.0.I:80" in slots 100+I. */
static struct config_backend
backend(size_t n, enum config_balance b)
{
	struct config_backend be;
	size_t i;

	memset(&be, 0, sizeof(be));
	for (i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "10.0.0.%zu:80", i + 1);
		memset(&ups[i], 0, sizeof(ups[i]));
		ups[i].name = names[i];
		ups[i].slot = (uint32_t)(100 + i);
	}
	be.ups = ups;
	be.nups = n;
	be.balance = b;
	be.max_fails = 1;
	be.fail_timeout = 10;
	return be;
}

static struct sockaddr_in
v4(uint32_t a)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(a);
	sin.sin_port = htons((uint16_t)(a * 7));
	return sin;
}

static int
pick(const struct config_backend *be, const struct sockaddr *peer,
    uint64_t tried)
{
	struct balance_req rq = { peer, -1, tried, -1 };

	return balance_pick(be, &U, &rq, 1000);
}

/* Round-robin: each in turn, exactly even. */
static void
test_round_robin(void **state)
{
	struct config_backend be = backend(3, CONFIG_LB_ROUND_ROBIN);
	unsigned count[3] = { 0 };
	int i, last = -1, p;

	(void)state;
	for (i = 0; i < 300; i++) {
		p = pick(&be, NULL, 0);
		assert_true(p >= 0 && p < 3);
		assert_int_not_equal(p, last);
		last = p;
		count[p]++;
	}
	assert_int_equal(count[0], 100);
	assert_int_equal(count[1], 100);
	assert_int_equal(count[2], 100);
}

/* A retry goes on past the one that failed, without taking a turn. */
static void
test_retry_order(void **state)
{
	struct config_backend be = backend(3, CONFIG_LB_ROUND_ROBIN);
	struct balance_req rq = { NULL, -1, 1, 0 };
	int i;

	(void)state;
	for (i = 0; i < 10; i++) {
		assert_int_equal(pick(&be, NULL, 0), i % 3);
		/* Each first pick failed: its retry is the next one. */
		rq.after = i % 3;
		rq.tried = (uint64_t)1 << (i % 3);
		assert_int_equal(balance_pick(&be, &U, &rq, 1000),
		    (i + 1) % 3);
	}
	/* Past the end, and skipping the tried. */
	rq.after = 2;
	rq.tried = 1 | 4;
	assert_int_equal(balance_pick(&be, &U, &rq, 1000), 1);
}

/* Down and tried ones are skipped; none left says why. */
static void
test_skip(void **state)
{
	struct config_backend be = backend(3, CONFIG_LB_ROUND_ROBIN);
	int i;

	(void)state;
	assert_true(upstate_fail(&U, &be, 101, 1000));
	for (i = 0; i < 30; i++)
		assert_int_not_equal(pick(&be, NULL, 0), 1);
	for (i = 0; i < 30; i++)
		assert_int_equal(pick(&be, NULL, 1), 2);	/* 0 tried */
	assert_int_equal(pick(&be, NULL, 5), BALANCE_ALL_DOWN);
	assert_int_equal(pick(&be, NULL, 7), BALANCE_ALL_TRIED);
	assert_true(upstate_fail(&U, &be, 100, 1000));
	assert_true(upstate_fail(&U, &be, 102, 1000));
	assert_int_equal(pick(&be, NULL, 0), BALANCE_ALL_DOWN);
	/* One upstream and no active check: never skipped for failures. */
	be.nups = 1;
	assert_int_equal(pick(&be, NULL, 0), 0);
	assert_int_equal(pick(&be, NULL, 1), BALANCE_ALL_TRIED);
	be.health.on = true;
	assert_int_equal(pick(&be, NULL, 0), BALANCE_ALL_DOWN);
}

/* Least-connections: the one with the fewest in flight; ties turn. */
static void
test_least(void **state)
{
	struct config_backend be = backend(3, CONFIG_LB_LEAST_CONN);
	unsigned count[3] = { 0 };
	int i, p;

	(void)state;
	upstate_begin(&U, 100);
	upstate_begin(&U, 100);
	upstate_begin(&U, 102);
	for (i = 0; i < 20; i++)
		assert_int_equal(pick(&be, NULL, 0), 1);
	upstate_begin(&U, 101);
	upstate_begin(&U, 101);
	for (i = 0; i < 20; i++)
		assert_int_equal(pick(&be, NULL, 0), 2);
	/* Requests that stay in flight spread evenly. */
	upstate_end(&U, 100);
	upstate_end(&U, 100);
	upstate_end(&U, 101);
	upstate_end(&U, 101);
	upstate_end(&U, 102);
	for (i = 0; i < 300; i++) {
		p = pick(&be, NULL, 0);
		count[p]++;
		upstate_begin(&U, be.ups[p].slot);
	}
	assert_int_equal(count[0], 100);
	assert_int_equal(count[1], 100);
	assert_int_equal(count[2], 100);
	/* The least loaded but down is skipped. */
	upstate_end(&U, 100);
	assert_true(upstate_fail(&U, &be, 100, 1000));
	assert_int_not_equal(pick(&be, NULL, 0), 0);
}

/* ip-hash: stable per client, even enough, 1/N moves on a change. */
static void
test_ip_hash(void **state)
{
	struct config_backend be = backend(4, CONFIG_LB_IP_HASH);
	struct config_backend be5;
	struct sockaddr_in sin;
	unsigned count[5] = { 0 }, moved = 0, i;
	int p[2000], q;

	(void)state;
	assert_int_equal(balance_ring(&be), 0);
	assert_int_equal(be.nring, 4 * BALANCE_VNODES);
	for (i = 0; i < 2000; i++) {
		sin = v4(0xc0a80000u + i * 7919u);
		p[i] = pick(&be, (struct sockaddr *)&sin, 0);
		assert_true(p[i] >= 0 && p[i] < 4);
		count[p[i]]++;
		/* The same client, another port: the same upstream. */
		sin.sin_port = htons(1);
		assert_int_equal(pick(&be, (struct sockaddr *)&sin, 0), p[i]);
	}
	for (i = 0; i < 4; i++)
		assert_true(count[i] > 2000 / 4 * 6 / 10 &&
		    count[i] < 2000 / 4 * 14 / 10);
	/* A fifth upstream: about 1/5 of clients move, all to it. */
	be5 = backend(5, CONFIG_LB_IP_HASH);
	assert_int_equal(balance_ring(&be5), 0);
	for (i = 0; i < 2000; i++) {
		sin = v4(0xc0a80000u + i * 7919u);
		q = pick(&be5, (struct sockaddr *)&sin, 0);
		if (q != p[i]) {
			moved++;
			assert_int_equal(q, 4);
		}
	}
	assert_true(moved > 2000 / 5 * 6 / 10 && moved < 2000 / 5 * 14 / 10);
	/* Its upstream down: the next one on the ring, the same for every
	   client that had it. */
	sin = v4(0xc0a80000u);
	q = pick(&be5, (struct sockaddr *)&sin, 0);
	assert_true(upstate_fail(&U, &be5, be5.ups[q].slot, 1000));
	assert_int_not_equal(pick(&be5, (struct sockaddr *)&sin, 0), q);
	assert_int_equal(pick(&be5, (struct sockaddr *)&sin, 0),
	    pick(&be5, (struct sockaddr *)&sin, 0));
	free(be.ring);
	free(be5.ring);
}

/* ip-hash: an IPv6 client is its /64; a v4-mapped one its IPv4. */
static void
test_ip_hash_v6(void **state)
{
	struct config_backend be = backend(8, CONFIG_LB_IP_HASH);
	struct sockaddr_in6 a, b;
	struct sockaddr_in c;
	unsigned i, differ = 0;
	int pa;

	(void)state;
	assert_int_equal(balance_ring(&be), 0);
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	for (i = 0; i < 64; i++) {
		inet_pton(AF_INET6, "2001:db8:1:2::1", &a.sin6_addr);
		a.sin6_addr.s6_addr[5] = (uint8_t)i;
		b = a;
		b.sin6_addr.s6_addr[15] = 0x77;	/* the same /64 */
		b.sin6_addr.s6_addr[9] = 0x55;
		pa = pick(&be, (struct sockaddr *)&a, 0);
		assert_int_equal(pick(&be, (struct sockaddr *)&b, 0), pa);
		b.sin6_addr.s6_addr[7] ^= 1;		/* another /64 */
		if (pick(&be, (struct sockaddr *)&b, 0) != pa)
			differ++;
	}
	assert_true(differ > 32);
	inet_pton(AF_INET6, "::ffff:192.0.2.9", &a.sin6_addr);
	c = v4(0xc0000209u);
	assert_int_equal(pick(&be, (struct sockaddr *)&a, 0),
	    pick(&be, (struct sockaddr *)&c, 0));
	free(be.ring);
}

/* sticky-cookie: the named one if usable, else balanced; never out of
   range. */
static void
test_sticky(void **state)
{
	struct config_backend be = backend(3, CONFIG_LB_STICKY);
	struct balance_req rq = { NULL, 2, 0, -1 };
	int i, p;

	(void)state;
	for (i = 0; i < 10; i++)
		assert_int_equal(balance_pick(&be, &U, &rq, 1000), 2);
	rq.sticky = 3;			/* out of range: balanced */
	for (i = 0; i < 10; i++) {
		p = balance_pick(&be, &U, &rq, 1000);
		assert_true(p >= 0 && p < 3);
	}
	rq.sticky = 2;
	assert_true(upstate_fail(&U, &be, 102, 1000));
	for (i = 0; i < 10; i++)
		assert_int_not_equal(balance_pick(&be, &U, &rq, 1000), 2);
	rq.sticky = 1;
	rq.tried = 2;			/* it failed this request */
	for (i = 0; i < 10; i++)
		assert_int_equal(balance_pick(&be, &U, &rq, 1000), 0);
}

static struct config *
parse(const char *text)
{
	struct config *cfg = testconf_parse(text, strlen(text), NULL);

	if (cfg == NULL)
		fail_msg("config refused");
	return cfg;
}

#define STICKY_CONF(list)						\
	"listener {\n  bind = \"127.0.0.1\"\n"				\
	"  tls { cert = \"/c\" key = \"/k\" }\n"				\
	"  site \"a.test\" { upstream = { " list " }\n"			\
	"    load-balance = \"sticky-cookie\"\n"				\
	"    path \"/api/\" { upstream = { " list " } } }\n}\n"

static const unsigned char key1[32] = "one key for the sticky cookies";
static const unsigned char key2[32] = "another key, another master....";

/* Values: per upstream, per backend, per key; kept across reloads. */
static void
test_sticky_values(void **state)
{
	struct config *a, *b, *c;
	struct config_backend *sa, *pa, *sb;
	char cookie[128], buf[256];
	size_t i;

	(void)state;
	a = parse(STICKY_CONF("\"127.0.0.1:1\", \"127.0.0.1:2\""));
	assert_int_equal(balance_prepare(a, key1, sizeof(key1)), 0);
	sa = &a->listeners[0].sites[0].be;
	pa = &a->listeners[0].sites[0].paths[0].be;
	for (i = 0; i < 2; i++) {
		assert_int_equal(strlen(sa->ups[i].cookie), CONFIG_COOKIE_HEX);
		assert_int_equal(strspn(sa->ups[i].cookie,
		    "0123456789abcdef"), CONFIG_COOKIE_HEX);
		/* The path block's are its own. */
		assert_string_not_equal(sa->ups[i].cookie, pa->ups[i].cookie);
	}
	assert_string_not_equal(sa->ups[0].cookie, sa->ups[1].cookie);
	/* A reload that reorders and adds: the same values by name. */
	b = parse(STICKY_CONF("\"127.0.0.1:3\", \"127.0.0.1:2\", "
	    "\"127.0.0.1:1\""));
	assert_int_equal(balance_prepare(b, key1, sizeof(key1)), 0);
	sb = &b->listeners[0].sites[0].be;
	assert_string_equal(sb->ups[2].cookie, sa->ups[0].cookie);
	assert_string_equal(sb->ups[1].cookie, sa->ups[1].cookie);
	/* Another master's key: nothing in common. */
	c = parse(STICKY_CONF("\"127.0.0.1:1\", \"127.0.0.1:2\""));
	assert_int_equal(balance_prepare(c, key2, sizeof(key2)), 0);
	assert_string_not_equal(c->listeners[0].sites[0].be.ups[0].cookie,
	    sa->ups[0].cookie);

	/* Picking: among other cookies, with blanks; the path block's
	   cookie is no use to the site's backend. */
	snprintf(cookie, sizeof(cookie), "a=1; " BALANCE_COOKIE "=%s ;b=2",
	    sa->ups[1].cookie);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), 1);
	assert_int_equal(balance_cookie_pick(sb, cookie, strlen(cookie)), 1);
	assert_int_equal(balance_cookie_pick(pa, cookie, strlen(cookie)), -1);
	snprintf(cookie, sizeof(cookie), BALANCE_COOKIE "=%s; "
	    BALANCE_COOKIE "=%s", pa->ups[0].cookie, sa->ups[0].cookie);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), 0);
	assert_int_equal(balance_cookie_pick(pa, cookie, strlen(cookie)), 0);
	/* Stale (another key), forged, cut, longer, renamed: none. */
	snprintf(cookie, sizeof(cookie), BALANCE_COOKIE "=%s",
	    c->listeners[0].sites[0].be.ups[0].cookie);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), -1);
	snprintf(cookie, sizeof(cookie), BALANCE_COOKIE "=%s",
	    sa->ups[0].cookie);
	cookie[strlen(cookie) - 1] ^= 1;
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), -1);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie) - 1),
	    -1);
	snprintf(cookie, sizeof(cookie), BALANCE_COOKIE "=%s0",
	    sa->ups[0].cookie);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), -1);
	snprintf(cookie, sizeof(cookie), "x" BALANCE_COOKIE "=%s",
	    sa->ups[0].cookie);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), -1);
	assert_int_equal(balance_cookie_pick(sa, "", 0), -1);
	assert_int_equal(balance_cookie_pick(sa, ";;;", 3), -1);
	/* A backend whose values were never made (the master's): none. */
	sa->ups[0].cookie[0] = '\0';
	snprintf(cookie, sizeof(cookie), BALANCE_COOKIE "=%s",
	    pa->ups[0].cookie);
	assert_int_equal(balance_cookie_pick(sa, cookie, strlen(cookie)), -1);

	/* Set-Cookie: the path block's prefix as Path. */
	assert_non_null(balance_set_cookie(pa, 1, "/api/", buf,
	    sizeof(buf)));
	snprintf(cookie, sizeof(cookie), BALANCE_COOKIE "=%s; Path=/api/; "
	    "Secure; HttpOnly; SameSite=Lax", pa->ups[1].cookie);
	assert_string_equal(buf, cookie);
	assert_non_null(balance_set_cookie(pa, 1, "/a;b/", buf,
	    sizeof(buf)));
	assert_non_null(strstr(buf, "; Path=/; "));
	assert_null(balance_set_cookie(pa, 2, NULL, buf, sizeof(buf)));
	assert_null(balance_set_cookie(pa, 0, NULL, buf, 20));
	config_free(a);
	config_free(b);
	config_free(c);
}

/* No shared table (tests of the exchange): round-robin from 0, all up. */
static void
test_no_table(void **state)
{
	struct config_backend be = backend(2, CONFIG_LB_LEAST_CONN);
	struct balance_req rq = { NULL, -1, 0, -1 };

	(void)state;
	assert_int_equal(balance_pick(&be, NULL, &rq, 0), 0);
	rq.tried = 1;
	assert_int_equal(balance_pick(&be, NULL, &rq, 0), 1);
	rq.tried = 3;
	assert_int_equal(balance_pick(&be, NULL, &rq, 0), BALANCE_ALL_TRIED);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_robin),
		T(test_retry_order),
		T(test_skip),
		T(test_least),
		T(test_ip_hash),
		T(test_ip_hash_v6),
		T(test_sticky),
		T(test_no_table),
		T(test_sticky_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
