/*
 * master_test.c - the respawn backoff: doubled from MASTER_BACKOFF_MIN
 * up to MASTER_BACKOFF_MAX, the one formula both respawn paths use (a
 * worker that died young, a fork or control channel that failed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "master.h"

static void
assert_secs(double got, double want)
{
	if (fabs(got - want) > 1e-9)
		fail_msg("backoff %.9f, want %.9f", got, want);
}

static void
test_backoff_doubles_from_min(void **state)
{
	static const double want[] = { 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4,
	    12.8, 25.6, 30.0, 30.0 };
	double b = 0;		/* no respawn yet */
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		b = master_backoff(b);
		assert_secs(b, want[i]);
	}
}

static void
test_backoff_bounds(void **state)
{
	(void)state;
	/* Below the minimum, even doubled: the minimum. */
	assert_secs(master_backoff(0.01), MASTER_BACKOFF_MIN);
	assert_secs(master_backoff(MASTER_BACKOFF_MIN / 2), MASTER_BACKOFF_MIN);
	/* Doubling past the maximum, or from it: the maximum. */
	assert_secs(master_backoff(MASTER_BACKOFF_MAX / 2 + 0.5),
	    MASTER_BACKOFF_MAX);
	assert_secs(master_backoff(MASTER_BACKOFF_MAX), MASTER_BACKOFF_MAX);
	assert_secs(master_backoff(1e9), MASTER_BACKOFF_MAX);
	/* Just under half the maximum: doubled, not capped. */
	assert_secs(master_backoff(14.0), 28.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_doubles_from_min),
		cmocka_unit_test(test_backoff_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
