/*
 * acme_test.c - the ACME process's pure parts: when a certificate is due
 * for renewal, and the backoff after a failure.  (The process itself is
 * tested against a real ACME server, pebble, in the integration tests.)
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "acme.h"

#define DAY	86400

static void
test_renew_at(void **state)
{
	const int64_t nb = 1800000000;

	(void)state;
	/* 90 days: min(30 days, 30 days). */
	assert_true(acme_renew_at(nb, nb + 90 * DAY, 0) == nb + 60 * DAY);
	/* A year: 30 days before the end. */
	assert_true(acme_renew_at(nb, nb + 365 * DAY, 0) == nb + 335 * DAY);
	/* Six days (short-lived): a third of the lifetime, 2 days. */
	assert_true(acme_renew_at(nb, nb + 6 * DAY, 0) == nb + 4 * DAY);
	/* acme-renew-days wins, whatever the lifetime. */
	assert_true(acme_renew_at(nb, nb + 6 * DAY, 1) == nb + 5 * DAY);
	assert_true(acme_renew_at(nb, nb + 90 * DAY, 45) == nb + 45 * DAY);
	/* As many days as the lifetime or more would be due at once, for
	   every new certificate: a third of the lifetime instead. */
	assert_true(acme_renew_at(nb, nb + 9 * DAY, 30) == nb + 6 * DAY);
	assert_true(acme_renew_at(nb, nb + 9 * DAY, 9) == nb + 6 * DAY);
	assert_true(acme_renew_at(nb, nb + 9 * DAY, 8) == nb + 1 * DAY);
	/* not_before unknown: the days as they are. */
	assert_true(acme_renew_at(0, nb, 30) == nb - 30 * DAY);
	/* not_before unknown: 30 days. */
	assert_true(acme_renew_at(0, nb, 0) == nb - 30 * DAY);
}

static void
test_backoff_unreachable(void **state)
{
	static const int64_t want[] = { 5, 10, 20, 40, 80, 160, 320, 600,
	    600 };
	int64_t d = 0;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = acme_backoff(true, d);
		assert_true(d == want[i]);
	}
}

static void
test_backoff_refused(void **state)
{
	static const int64_t want[] = { 120, 240, 480, 960, 1920, 3600,
	    3600 };
	int64_t d = 0, hour = 0, t = 0;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = acme_backoff(false, d);
		assert_true(d == want[i]);
	}
	/* Once at the cap: at most a few attempts an hour. */
	for (i = 0, d = 3600; i < 10; i++) {
		d = acme_backoff(false, d);
		t += d;
		if (t <= 3600)
			hour++;
	}
	assert_true(hour <= 4);
	/* A delay of the other kind is no starting point: the minimum. */
	assert_true(acme_backoff(false, 5) >= 120);
	assert_true(acme_backoff(true, 1) >= 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_renew_at),
		cmocka_unit_test(test_backoff_unreachable),
		cmocka_unit_test(test_backoff_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
