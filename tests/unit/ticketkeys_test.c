/*
 * ticketkeys_test.c - the master's session-ticket keys: one random key at
 * first; a rotation makes a new current key and keeps the one it replaces
 * as the previous one; the one before is gone (nowhere in the ring); the
 * bytes published are the current key then the previous one; wipe zeroes
 * everything.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ticketkeys.h"

static void
test_ring(void **state)
{
	struct ticketkeys tk;
	unsigned char k0[TICKETKEYS_SIZE], k1[TICKETKEYS_SIZE];
	unsigned char zero[sizeof(tk.key)] = { 0 };
	const unsigned char *b;
	size_t len;

	(void)state;
	assert_int_equal(ticketkeys_init(&tk), 0);
	assert_int_equal(tk.n, 1);
	assert_true(tk.rotations == 0);
	assert_memory_not_equal(tk.key[0], zero, TICKETKEYS_SIZE);
	b = ticketkeys_bytes(&tk, &len);
	assert_int_equal(len, TICKETKEYS_SIZE);
	assert_memory_equal(b, tk.key[0], len);
	memcpy(k0, tk.key[0], sizeof(k0));

	assert_int_equal(ticketkeys_rotate(&tk), 0);
	assert_int_equal(tk.n, 2);
	assert_true(tk.rotations == 1);
	assert_memory_equal(tk.key[1], k0, sizeof(k0));
	assert_memory_not_equal(tk.key[0], k0, sizeof(k0));
	b = ticketkeys_bytes(&tk, &len);
	assert_int_equal(len, 2 * TICKETKEYS_SIZE);
	assert_memory_equal(b + TICKETKEYS_SIZE, k0, sizeof(k0));
	memcpy(k1, tk.key[0], sizeof(k1));

	assert_int_equal(ticketkeys_rotate(&tk), 0);
	assert_true(tk.rotations == 2);
	assert_memory_equal(tk.key[1], k1, sizeof(k1));
	assert_memory_not_equal(tk.key[0], k1, sizeof(k1));
	assert_memory_not_equal(tk.key[0], k0, sizeof(k0));
	assert_memory_not_equal(tk.key[1], k0, sizeof(k0));

	ticketkeys_wipe(&tk);
	assert_int_equal(tk.n, 0);
	assert_memory_equal(tk.key, zero, sizeof(zero));
	/* An empty ring does not rotate. */
	assert_int_equal(ticketkeys_rotate(&tk), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
