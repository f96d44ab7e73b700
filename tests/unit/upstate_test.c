/*
 * upstate_test.c - the shared upstream table: passive health (one worker
 * marks down, one logs up again), in-flight counts and what a dead
 * worker leaves, slots kept across reloads by site, path and name, freed
 * ones given out last and reset, the pending assignment of a reload
 * that fails, and the active checks' verdict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testconf.h"
#include "upstate.h"

static struct config *
parse(const char *text)
{
	struct config *cfg = testconf_parse(text, strlen(text), NULL);

	if (cfg == NULL)
		fail_msg("config refused");
	return cfg;
}

#define HEAD \
    "listener {\n  bind = \"127.0.0.1\"\n  tls { cert = \"/c\" key = \"/k\" }\n"

static struct upstate U;
static void *mem;

static int
setup(void **state)
{
	(void)state;
	if ((mem = calloc(1, upstate_bytes())) == NULL)
		return -1;
	upstate_attach(&U, mem, upstate_bytes(), 4, 1);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

static struct config_backend
backend(unsigned max_fails)
{
	struct config_backend be;

	memset(&be, 0, sizeof(be));
	be.max_fails = max_fails;
	be.fail_timeout = 10;
	return be;
}

/* max-fails 3: down at the third failure in a row, for fail-timeout. */
static void
test_passive(void **state)
{
	struct config_backend be = backend(3);
	struct upstate_view v;

	(void)state;
	assert_true(upstate_usable(&U, &be, 7, 1000));
	assert_false(upstate_fail(&U, &be, 7, 1000));
	assert_false(upstate_fail(&U, &be, 7, 1000));
	/* A success in between starts the count again. */
	assert_false(upstate_ok(&U, &be, 7));
	assert_false(upstate_fail(&U, &be, 7, 1000));
	assert_false(upstate_fail(&U, &be, 7, 1000));
	assert_true(upstate_usable(&U, &be, 7, 1000));
	assert_true(upstate_fail(&U, &be, 7, 1000));	/* marked: logged */
	assert_false(upstate_usable(&U, &be, 7, 1000));
	assert_false(upstate_usable(&U, &be, 7, 10999));
	/* Down already: not marked (nor logged) again. */
	assert_false(upstate_fail(&U, &be, 7, 2000));
	upstate_view(&U, &be, 7, 2000, &v);
	assert_false(v.up);
	assert_true(v.passive_down);
	assert_int_equal(v.fails, 4);
	assert_int_equal(v.failures, 6);
	/* After fail-timeout it gets a request; failing again marks it
	   down again without a new "down" line. */
	assert_true(upstate_usable(&U, &be, 7, 11000));
	assert_false(upstate_fail(&U, &be, 7, 11000));
	assert_false(upstate_usable(&U, &be, 7, 11000));
	assert_true(upstate_usable(&U, &be, 7, 21000));
	/* Its first success: up again, said once. */
	assert_true(upstate_ok(&U, &be, 7));
	assert_false(upstate_ok(&U, &be, 7));
	assert_true(upstate_usable(&U, &be, 7, 21000));
	upstate_view(&U, &be, 7, 21000, &v);
	assert_true(v.up);
	assert_int_equal(v.fails, 0);
	/* Other slots are not touched. */
	assert_true(upstate_usable(&U, &be, 8, 1000));
}

/* After fail-timeout, one request (of all workers) gets a trial. */
static void
test_trial(void **state)
{
	struct config_backend be = backend(1);

	(void)state;
	assert_int_equal(upstate_claim(&U, &be, 9, 1000), UPSTATE_YES);
	assert_true(upstate_fail(&U, &be, 9, 1000));
	assert_int_equal(upstate_claim(&U, &be, 9, 5000), UPSTATE_NO);
	/* Expired: the first claims it, the others still skip it. */
	assert_int_equal(upstate_claim(&U, &be, 9, 11000), UPSTATE_TRIAL);
	assert_int_equal(upstate_claim(&U, &be, 9, 11000), UPSTATE_NO);
	assert_int_equal(upstate_claim(&U, &be, 9, 20999), UPSTATE_NO);
	/* The trial failed: down, not said again; the next trial later. */
	assert_false(upstate_fail(&U, &be, 9, 11500));
	assert_int_equal(upstate_claim(&U, &be, 9, 21000), UPSTATE_TRIAL);
	/* It succeeded: up for everyone, said once. */
	assert_true(upstate_ok(&U, &be, 9));
	assert_int_equal(upstate_claim(&U, &be, 9, 21000), UPSTATE_YES);
	assert_int_equal(upstate_claim(&U, &be, 9, 21000), UPSTATE_YES);
}

/*
 * A passing check ends a passive mark made before it began, once; a mark
 * or a trial claimed after it began is left to decide.
 */
static void
test_check_passed_ends_mark(void **state)
{
	struct config_backend be = backend(1);
	struct upstate_view v;

	(void)state;
	be.health.on = true;
	/* Not marked: nothing to end. */
	assert_false(upstate_check_passed(&U, 5, 500, 10));
	assert_true(upstate_fail(&U, &be, 5, 1000));	/* until 11000 */
	/* A check that began before the mark. */
	assert_false(upstate_check_passed(&U, 5, 999, 10));
	assert_false(upstate_usable(&U, &be, 5, 2000));
	/* One that began after it: up, fails cleared, said once. */
	assert_true(upstate_check_passed(&U, 5, 1000, 10));
	assert_false(upstate_check_passed(&U, 5, 1500, 10));
	assert_int_equal(upstate_claim(&U, &be, 5, 2000), UPSTATE_YES);
	upstate_view(&U, &be, 5, 2000, &v);
	assert_true(v.up);
	assert_false(v.passive_down);
	assert_int_equal(v.fails, 0);
	/* No worker says "up again" after it. */
	assert_false(upstate_ok(&U, &be, 5));
	/* Marked again; the trial claimed at 11000 moves the time of the
	   mark: a check begun before the trial leaves it to the trial. */
	assert_true(upstate_fail(&U, &be, 5, 3000));	/* until 13000 */
	assert_int_equal(upstate_claim(&U, &be, 5, 13000), UPSTATE_TRIAL);
	assert_false(upstate_check_passed(&U, 5, 12000, 10));
	assert_true(upstate_check_passed(&U, 5, 13000, 10));
	/* Another slot is not touched. */
	assert_true(upstate_fail(&U, &be, 6, 1000));
	assert_false(upstate_check_passed(&U, 5, 20000, 10));
	assert_false(upstate_usable(&U, &be, 6, 2000));
}

/* max-fails 0: never marked down; the active check still counts. */
static void
test_passive_off_and_checked(void **state)
{
	struct config_backend be = backend(0);
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_false(upstate_fail(&U, &be, 3, 1000));
	assert_true(upstate_usable(&U, &be, 3, 1000));
	atomic_store(&U.e[3].checked, UPSTATE_CHECK_DOWN);
	/* Only a backend with a health-check listens to it. */
	assert_true(upstate_usable(&U, &be, 3, 1000));
	be.health.on = true;
	assert_false(upstate_usable(&U, &be, 3, 1000));
	atomic_store(&U.e[3].checked, UPSTATE_CHECK_UP);
	assert_true(upstate_usable(&U, &be, 3, 1000));
}

/* In flight: all workers' sum; a dead worker's share taken back. */
static void
test_inflight(void **state)
{
	struct upstate w2;

	(void)state;
	upstate_attach(&w2, mem, upstate_bytes(), 4, 2);
	upstate_begin(&U, 5);
	upstate_begin(&U, 5);
	upstate_begin(&w2, 5);
	assert_int_equal(upstate_inflight(&U, 5), 3);
	upstate_end(&U, 5);
	assert_int_equal(upstate_inflight(&w2, 5), 2);
	upstate_worker_gone(&U, 1);	/* worker 1 died with one open */
	assert_int_equal(upstate_inflight(&U, 5), 1);
	upstate_end(&w2, 5);
	assert_int_equal(upstate_inflight(&U, 5), 0);
	/* Whatever a worker wrote, the count read is never below 0. */
	atomic_store(&U.e[5].inflight, -40);
	assert_int_equal(upstate_inflight(&U, 5), 0);
	/* Out of range: nothing happens. */
	upstate_worker_gone(&U, 99);
}

static uint32_t
slot_of(const struct config *cfg, size_t site, int path, size_t up)
{
	const struct config_site *s = &cfg->listeners[0].sites[site];

	return path < 0 ? s->be.ups[up].slot :
	    s->paths[path].be.ups[up].slot;
}

/*
 * Slots follow listener, site, path block and name across reloads; the
 * new take free slots (the freed last), reset; an aborted assignment
 * changes nothing.
 */
static void
test_assign(void **state)
{
	struct upstate_alloc *a;
	struct config *c1, *c2, *c3;
	uint32_t s_a, s_b, s_api, s_c;
	struct config_backend be = backend(1);

	(void)state;
	c1 = parse(HEAD
	    "  site \"a.test\" { upstream = { \"127.0.0.1:1\", "
	    "\"127.0.0.1:2\" }\n"
	    "    path \"/api/\" { upstream = \"127.0.0.1:3\" } }\n}\n");
	assert_non_null(a = upstate_alloc_new());
	assert_int_equal(upstate_assign(a, c1), 0);
	upstate_commit(a, &U);
	s_a = slot_of(c1, 0, -1, 0);
	s_b = slot_of(c1, 0, -1, 1);
	s_api = slot_of(c1, 0, 0, 0);
	assert_true(s_a != s_b && s_a != s_api && s_b != s_api);
	/* State on the first and on the path block's. */
	assert_true(upstate_fail(&U, &be, s_a, 1000));
	assert_true(upstate_fail(&U, &be, s_api, 1000));

	/* Reordered, one removed, one added, the path block's kept. */
	c2 = parse(HEAD
	    "  site \"a.test\" { upstream = { \"127.0.0.1:4\", "
	    "\"127.0.0.1:1\" }\n"
	    "    path \"/api/\" { upstream = \"127.0.0.1:3\" } }\n}\n");
	assert_int_equal(upstate_assign(a, c2), 0);
	upstate_commit(a, &U);
	assert_int_equal(slot_of(c2, 0, -1, 1), s_a);
	assert_int_equal(slot_of(c2, 0, 0, 0), s_api);
	s_c = slot_of(c2, 0, -1, 0);
	/* The new one does not get the slot just freed. */
	assert_true(s_c != s_a && s_c != s_b && s_c != s_api);
	assert_false(upstate_usable(&U, &be, s_a, 1000));	/* kept */
	assert_false(upstate_usable(&U, &be, s_api, 1000));

	/* An assignment that is not committed leaves the old one. */
	c3 = parse(HEAD
	    "  site \"b.test\" { upstream = \"127.0.0.1:1\" }\n}\n");
	assert_int_equal(upstate_assign(a, c3), 0);
	upstate_abort(a);
	config_free(c3);
	c3 = parse(HEAD
	    "  site \"a.test\" { upstream = { \"127.0.0.1:4\", "
	    "\"127.0.0.1:1\" }\n"
	    "    path \"/api/\" { upstream = \"127.0.0.1:3\" } }\n}\n");
	assert_int_equal(upstate_assign(a, c3), 0);
	upstate_commit(a, &U);
	assert_int_equal(slot_of(c3, 0, -1, 0), s_c);
	assert_int_equal(slot_of(c3, 0, -1, 1), s_a);
	assert_int_equal(slot_of(c3, 0, 0, 0), s_api);
	config_free(c3);

	/* The same name under another site is another upstream, new: its
	   slot is reset, whatever was there. */
	c3 = parse(HEAD
	    "  site \"b.test\" { upstream = \"127.0.0.1:1\" }\n}\n");
	assert_int_equal(upstate_assign(a, c3), 0);
	assert_true(slot_of(c3, 0, -1, 0) != s_a);
	atomic_store(&U.e[slot_of(c3, 0, -1, 0)].fails, 9);
	upstate_commit(a, &U);
	assert_int_equal(atomic_load(&U.e[slot_of(c3, 0, -1, 0)].fails), 0);

	config_free(c1);
	config_free(c2);
	config_free(c3);
	upstate_alloc_free(a);
}

/* Two listeners on one address (other ports): their upstreams apart. */
static void
test_assign_same_bind(void **state)
{
	static const char text[] =
	    "listener {\n  bind = \"127.0.0.1\"\n  https-port = 8443\n"
	    "  http-port = 0\n  tls { cert = \"/c\" key = \"/k\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:1\" }\n}\n"
	    "listener {\n  bind = \"127.0.0.1\"\n  https-port = 9443\n"
	    "  http-port = 0\n  tls { cert = \"/c\" key = \"/k\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:1\" }\n}\n";
	struct upstate_alloc *a;
	struct config *c1, *c2;
	uint32_t s0, s1;

	(void)state;
	c1 = parse(text);
	assert_non_null(a = upstate_alloc_new());
	assert_int_equal(upstate_assign(a, c1), 0);
	upstate_commit(a, &U);
	s0 = c1->listeners[0].sites[0].be.ups[0].slot;
	s1 = c1->listeners[1].sites[0].be.ups[0].slot;
	assert_int_not_equal(s0, s1);
	atomic_store(&U.e[s0].fails, 7);
	c2 = parse(text);
	assert_int_equal(upstate_assign(a, c2), 0);
	upstate_commit(a, &U);
	assert_int_equal(c2->listeners[0].sites[0].be.ups[0].slot, s0);
	assert_int_equal(c2->listeners[1].sites[0].be.ups[0].slot, s1);
	assert_int_equal(atomic_load(&U.e[s0].fails), 7);
	config_free(c1);
	config_free(c2);
	upstate_alloc_free(a);
}

/* Every slot can be given out; the table is never too small. */
static void
test_assign_full(void **state)
{
	struct upstate_alloc *a;
	struct config *cfg;
	char *text;
	size_t i, j, len = 0, cap = 1 << 20;
	bool *seen;

	(void)state;
	assert_non_null(text = malloc(cap));
	assert_non_null(seen = calloc(UPSTATE_SLOTS, sizeof(*seen)));
	len += (size_t)snprintf(text + len, cap - len, HEAD);
	/* 64 sites of 64 upstreams: 4096. */
	for (i = 0; i < 64; i++) {
		len += (size_t)snprintf(text + len, cap - len,
		    "  site \"s%zu.test\" { upstream = {", i);
		for (j = 0; j < 64; j++)
			len += (size_t)snprintf(text + len, cap - len,
			    "%s\"127.0.0.1:%zu\"", j ? "," : "", j + 1);
		len += (size_t)snprintf(text + len, cap - len, "} }\n");
	}
	snprintf(text + len, cap - len, "}\n");
	cfg = parse(text);
	assert_non_null(a = upstate_alloc_new());
	assert_int_equal(upstate_assign(a, cfg), 0);
	upstate_commit(a, NULL);
	for (i = 0; i < 64; i++)
		for (j = 0; j < 64; j++) {
			uint32_t s = cfg->listeners[0].sites[i].be.ups[j].slot;

			assert_true(s < UPSTATE_SLOTS);
			assert_false(seen[s]);
			seen[s] = true;
		}
	/* Once more (a reload of the same file): each its own again. */
	{
		struct config *again = parse(text);

		assert_int_equal(upstate_assign(a, again), 0);
		upstate_commit(a, NULL);
		for (i = 0; i < 64; i++)
			for (j = 0; j < 64; j++)
				assert_int_equal(again->listeners[0].sites[i]
				    .be.ups[j].slot, cfg->listeners[0]
				    .sites[i].be.ups[j].slot);
		config_free(again);
	}
	config_free(cfg);
	/* One more upstream (a site of one) is refused at load. */
	snprintf(text + len, cap - len,
	    "  site \"x.test\" { upstream = \"127.0.0.1:1\" }\n}\n");
	{
		struct config_opts opts = { .pure = true };
		struct config_errors errs = { NULL, NULL, 0, 0 };
		struct config *c = NULL;

		assert_int_equal(config_parse_buffer("t.conf", text,
		    strlen(text), &opts, &c, &errs), -1);
		assert_int_equal(errs.n, 1);
		assert_non_null(strstr(errs.msgs[0], "4097 upstreams in all"));
		config_errors_free(&errs);
	}
	upstate_alloc_free(a);
	free(seen);
	free(text);
}

/* ctl status: every backend and upstream, with its numbers. */
static void
test_json(void **state)
{
	struct upstate_alloc *a;
	struct config *cfg;
	char *j;

	(void)state;
	cfg = parse(HEAD
	    "  site \"a.test\" { upstream = { \"127.0.0.1:1\", "
	    "\"127.0.0.1:2\" } load-balance = \"least-connections\"\n"
	    "    path \"/a\\\"b/\" { upstream = \"[::1]:3\" } }\n}\n");
	assert_non_null(a = upstate_alloc_new());
	assert_int_equal(upstate_assign(a, cfg), 0);
	upstate_commit(a, &U);
	upstate_begin(&U, cfg->listeners[0].sites[0].be.ups[1].slot);
	assert_non_null(j = upstate_json(&U, cfg));
	assert_string_equal(j, "\"backends\":["
	    "{\"listener\":0,\"site\":\"a.test\",\"path\":null,"
	    "\"load_balance\":\"least-connections\",\"max_fails\":1,"
	    "\"fail_timeout\":10,\"health_check\":false,\"upstreams\":["
	    "{\"name\":\"127.0.0.1:1\",\"address\":\"127.0.0.1:1\",\"state\":\"up\","
	    "\"passive_down\":false,\"check\":\"none\",\"in_flight\":0,"
	    "\"fails\":0,\"failures\":0,\"requests\":0},"
	    "{\"name\":\"127.0.0.1:2\",\"address\":\"127.0.0.1:2\",\"state\":\"up\","
	    "\"passive_down\":false,\"check\":\"none\",\"in_flight\":1,"
	    "\"fails\":0,\"failures\":0,\"requests\":1}]},"
	    "{\"listener\":0,\"site\":\"a.test\",\"path\":\"/a\\\"b/\","
	    "\"load_balance\":\"least-connections\",\"max_fails\":1,"
	    "\"fail_timeout\":10,\"health_check\":false,\"upstreams\":["
	    "{\"name\":\"[::1]:3\",\"address\":\"[::1]:3\",\"state\":\"up\","
	    "\"passive_down\":false,\"check\":\"none\",\"in_flight\":0,"
	    "\"fails\":0,\"failures\":0,\"requests\":0}]}]");
	free(j);
	config_free(cfg);
	upstate_alloc_free(a);
}

/*
 * The prober's verdict: read as data (garbage is NONE), written with its
 * time; a generation clears the verdict of every upstream whose backend
 * has no health-check any more, and only theirs.
 */
static void
test_checks(void **state)
{
	struct upstate_alloc *a;
	struct config *cfg;
	uint32_t s_on, s_off, s_path;

	(void)state;
	assert_int_equal(upstate_check(&U, 9), UPSTATE_CHECK_NONE);
	upstate_check_set(&U, 9, UPSTATE_CHECK_DOWN, 1234);
	assert_int_equal(upstate_check(&U, 9), UPSTATE_CHECK_DOWN);
	assert_int_equal(atomic_load(&U.e[9].check_changed), 1234);
	atomic_store(&U.e[9].checked, 77);	/* a worker wrote this */
	assert_int_equal(upstate_check(&U, 9), UPSTATE_CHECK_NONE);

	cfg = parse(HEAD
	    "  site \"a.test\" { upstream = \"127.0.0.1:1\"\n"
	    "    health-check { path = \"/h\" }\n"
	    "    path \"/api/\" { upstream = \"127.0.0.1:3\" } }\n"
	    "  site \"b.test\" { upstream = \"127.0.0.1:2\" }\n}\n");
	assert_non_null(a = upstate_alloc_new());
	assert_int_equal(upstate_assign(a, cfg), 0);
	upstate_commit(a, &U);
	s_on = cfg->listeners[0].sites[0].be.ups[0].slot;
	s_path = cfg->listeners[0].sites[0].paths[0].be.ups[0].slot;
	s_off = cfg->listeners[0].sites[1].be.ups[0].slot;
	/* The path block takes the site's health-check. */
	assert_true(cfg->listeners[0].sites[0].paths[0].be.health.on);
	upstate_check_set(&U, s_on, UPSTATE_CHECK_DOWN, 1);
	upstate_check_set(&U, s_path, UPSTATE_CHECK_UP, 1);
	upstate_check_set(&U, s_off, UPSTATE_CHECK_DOWN, 1);
	upstate_checks_clear(&U, cfg);
	assert_int_equal(upstate_check(&U, s_on), UPSTATE_CHECK_DOWN);
	assert_int_equal(upstate_check(&U, s_path), UPSTATE_CHECK_UP);
	assert_int_equal(upstate_check(&U, s_off), UPSTATE_CHECK_NONE);
	assert_int_equal(atomic_load(&U.e[s_off].check_changed), 0);
	config_free(cfg);
	upstate_alloc_free(a);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_passive),
		T(test_trial),
		T(test_check_passed_ends_mark),
		T(test_passive_off_and_checked),
		T(test_inflight),
		T(test_assign),
		T(test_assign_same_bind),
		T(test_assign_full),
		T(test_json),
		T(test_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
