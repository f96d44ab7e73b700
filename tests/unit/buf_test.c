/*
 * buf_test.c - the bounded buffer: capacity is a hard limit, space is
 * reclaimed at the front, nothing is ever written past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "util.h"

static void
test_new_limits(void **state)
{
	(void)state;
	assert_null(buf_new(0));
	assert_null(buf_new(((size_t)1 << 30) + 1));
	struct buf *b = buf_new(8);
	assert_non_null(b);
	assert_int_equal(buf_cap(b), 8);
	assert_int_equal(buf_len(b), 0);
	assert_true(buf_empty(b));
	buf_free(b);
	buf_free(NULL);
}

static void
test_add_fits_exactly(void **state)
{
	struct buf *b = buf_new(8);

	(void)state;
	assert_int_equal(buf_add(b, "12345678", 8), 0);
	assert_int_equal(buf_len(b), 8);
	assert_int_equal(buf_space(b), 0);
	/* One byte more does not fit, and nothing is written. */
	assert_int_equal(buf_add(b, "9", 1), -1);
	assert_int_equal(buf_len(b), 8);
	assert_memory_equal(buf_data(b), "12345678", 8);
	buf_free(b);
}

static void
test_reserve(void **state)
{
	struct buf *b = buf_new(8);
	char *p;

	(void)state;
	assert_int_equal(buf_add(b, "abcdef", 6), 0);
	buf_consume(b, 4);
	/* 6 bytes fit only once "ef" moves down; then they follow it. */
	assert_non_null(p = buf_reserve(b, 6));
	memcpy(p, "ghijkl", 6);
	buf_produce(b, 6);
	assert_int_equal(buf_len(b), 8);
	assert_memory_equal(buf_data(b), "efghijkl", 8);
	/* Full: nothing more, not even one byte; zero bytes always fit. */
	assert_null(buf_reserve(b, 1));
	assert_non_null(buf_reserve(b, 0));
	assert_int_equal(buf_len(b), 8);
	buf_free(b);
}

static void
test_consume_then_reuse(void **state)
{
	struct buf *b = buf_new(8);

	(void)state;
	assert_int_equal(buf_add(b, "abcdefgh", 8), 0);
	buf_consume(b, 6);
	assert_int_equal(buf_len(b), 2);
	assert_memory_equal(buf_data(b), "gh", 2);
	/* The 6 consumed bytes are reclaimed by moving "gh" down. */
	assert_int_equal(buf_add(b, "ijklmn", 6), 0);
	assert_int_equal(buf_len(b), 8);
	assert_memory_equal(buf_data(b), "ghijklmn", 8);
	assert_int_equal(buf_add(b, "x", 1), -1);
	buf_free(b);
}

static void
test_resize(void **state)
{
	struct buf *b = buf_new(8), *g;

	(void)state;
	assert_int_equal(buf_add(b, "abcdefgh", 8), 0);
	buf_consume(b, 3);
	/* Smaller than what it holds: refused, b untouched. */
	assert_null(buf_resize(b, 4));
	assert_int_equal(buf_len(b), 5);
	assert_memory_equal(buf_data(b), "defgh", 5);
	/* Grown: the unread bytes at the front, the rest free. */
	g = buf_resize(b, 32);
	assert_non_null(g);
	assert_int_equal(buf_cap(g), 32);
	assert_int_equal(buf_len(g), 5);
	assert_memory_equal(buf_data(g), "defgh", 5);
	assert_int_equal(buf_space(g), 27);
	assert_int_equal(buf_add(g, "0123456789012345678901234567", 28), -1);
	assert_int_equal(buf_add(g, "012345678901234567890123456", 27), 0);
	assert_int_equal(buf_len(g), 32);
	/* Exactly what it holds: fits. */
	b = buf_resize(g, 32);
	assert_non_null(b);
	assert_memory_equal(buf_data(b), "defgh0123", 9);
	assert_null(buf_resize(b, 31));
	buf_free(b);
	/* Empty: any size. */
	b = buf_new(8);
	g = buf_resize(b, 1);
	assert_non_null(g);
	assert_true(buf_empty(g));
	assert_null(buf_resize(g, 0));
	buf_free(g);
}

static void
test_space_and_produce(void **state)
{
	struct buf *b = buf_new(16);
	size_t room;

	(void)state;
	room = buf_space(b);
	assert_int_equal(room, 16);
	memcpy(buf_tail(b), "hello", 5);
	buf_produce(b, 5);
	buf_consume(b, 4);
	/* Little room left behind the data: it is moved to the front. */
	memcpy(buf_tail(b), "0123456789", 10);
	buf_produce(b, 10);
	room = buf_space(b);
	assert_int_equal(room, 16 - 11);
	assert_memory_equal(buf_data(b), "o0123456789", 11);
	buf_consume(b, 11);
	assert_true(buf_empty(b));
	assert_int_equal(buf_space(b), 16);
	buf_free(b);
}

static void
test_adddec(void **state)
{
	struct buf *b = buf_new(64);

	(void)state;
	assert_int_equal(buf_adddec(b, 0), 0);
	assert_int_equal(buf_add(b, " ", 1), 0);
	assert_int_equal(buf_adddec(b, 42), 0);
	assert_int_equal(buf_add(b, " ", 1), 0);
	assert_int_equal(buf_adddec(b, UINT64_MAX), 0);
	assert_int_equal(buf_len(b), 1 + 1 + 2 + 1 + 20);
	assert_memory_equal(buf_data(b), "0 42 18446744073709551615", 25);
	buf_free(b);
	/* All or nothing: 5 digits do not fit in 4 bytes. */
	b = buf_new(4);
	assert_int_equal(buf_adddec(b, 12345), -1);
	assert_int_equal(buf_len(b), 0);
	assert_int_equal(buf_adddec(b, 1234), 0);
	assert_memory_equal(buf_data(b), "1234", 4);
	buf_free(b);
}

static void
test_printf_bounds(void **state)
{
	struct buf *b = buf_new(10);

	(void)state;
	assert_int_equal(buf_printf(b, "%d", 12345), 0);
	assert_int_equal(buf_len(b), 5);
	/* vsnprintf needs a byte for its NUL: 5 more do not fit in 5. */
	assert_int_equal(buf_printf(b, "%s", "abcde"), -1);
	assert_int_equal(buf_len(b), 5);
	assert_int_equal(buf_printf(b, "%s", "abcd"), 0);
	assert_memory_equal(buf_data(b), "12345abcd", 9);
	buf_consume(b, 9);
	assert_int_equal(buf_printf(b, "%s", "123456789"), 0);
	buf_free(b);
}

static void
test_reset_and_addstr(void **state)
{
	struct buf *b = buf_new(4);

	(void)state;
	assert_int_equal(buf_addstr(b, "abc"), 0);
	buf_reset(b);
	assert_true(buf_empty(b));
	assert_int_equal(buf_addstr(b, "abcd"), 0);
	assert_int_equal(buf_addstr(b, ""), 0);
	assert_int_equal(buf_addstr(b, "e"), -1);
	buf_free(b);
}
/*
 * The caches are per size: the first 8 sizes freed in the process each
 * get one, for good.  So this runs first, and gives two of its eight to
 * the sizes test_cache_bounds_and_trim uses.
 */
static void
test_cache_size_classes(void **state)
{
	static const size_t sizes[8] = { 1000, 65536, 3001, 3002, 3003, 3004,
	    3005, 3006 };
	struct buf *b[8], *other;
	size_t before = buf_cache_bytes(), i;

	(void)state;
	assert_int_equal(before, 0);
	for (i = 0; i < 8; i++)
		assert_non_null(b[i] = buf_new(sizes[i]));
	assert_non_null(other = buf_new(3007));
	for (i = 0; i < 8; i++) {
		buf_free(b[i]);
		before += UTIL_ASAN ? 0 : sizes[i];
		assert_int_equal(buf_cache_bytes(), before);
	}
	/* A ninth size has no cache: freed at once. */
	buf_free(other);
	assert_int_equal(buf_cache_bytes(), before);
	/* A size takes from its own cache only, whatever else is kept. */
	assert_non_null(other = buf_new(3007));
	assert_int_equal(buf_cache_bytes(), before);
	buf_free(other);
	for (i = 0; i < 8; i++) {
		assert_non_null(b[i] = buf_new(sizes[i]));
		assert_int_equal(buf_cap(b[i]), sizes[i]);
		assert_true(buf_empty(b[i]));
		before -= UTIL_ASAN ? 0 : sizes[i];
		assert_int_equal(buf_cache_bytes(), before);
	}
	for (i = 0; i < 8; i++)
		buf_free(b[i]);
}

/*
 * The cache of freed buffers: reused last in, first out; at most 256 per
 * size and 8 MiB in all; what stays unused for 1,024 frees goes back to
 * malloc.  Under AddressSanitizer nothing is kept (a use after free must
 * be seen).
 */
static void
test_cache_bounds_and_trim(void **state)
{
	struct buf *many[300], *b, *again;
	size_t before = buf_cache_bytes(), i;

	(void)state;
	b = buf_new(1000);
	assert_non_null(b);
	buf_free(b);
#if UTIL_ASAN
	for (i = 0; i < 300; i++)
		assert_non_null(many[i] = buf_new(1000));
	for (i = 0; i < 300; i++)
		buf_free(many[i]);
	assert_int_equal(buf_cache_bytes(), 0);
	(void)again;
	return;
#endif
	again = buf_new(1000);
	assert_ptr_equal(again, b);		/* reused */
	buf_free(again);
	before = buf_cache_bytes() - 1000;

	/* A burst of 300: 256 kept. */
	for (i = 0; i < 300; i++)
		assert_non_null(many[i] = buf_new(1000));
	assert_int_equal(buf_cache_bytes(), before);
	for (i = 0; i < 300; i++)
		buf_free(many[i]);
	assert_int_equal(buf_cache_bytes(), before + 256 * 1000);

	/* Then one at a time: the 255 never used again go back. */
	for (i = 0; i < 3 * 1024; i++) {
		assert_non_null(b = buf_new(1000));
		buf_free(b);
	}
	assert_true(buf_cache_bytes() <= before + 2 * 1000);

	/* 64 KiB buffers: the 8 MiB cap holds before the 256 do. */
	before = buf_cache_bytes();
	for (i = 0; i < 300; i++)
		assert_non_null(many[i] = buf_new(65536));
	for (i = 0; i < 300; i++)
		buf_free(many[i]);
	assert_true(buf_cache_bytes() <= ((size_t)8 << 20));
	assert_true(buf_cache_bytes() >= before + 64 * 65536);
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_size_classes),
		cmocka_unit_test(test_cache_bounds_and_trim),
		cmocka_unit_test(test_new_limits),
		cmocka_unit_test(test_adddec),
		cmocka_unit_test(test_add_fits_exactly),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_consume_then_reuse),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_space_and_produce),
		cmocka_unit_test(test_printf_bounds),
		cmocka_unit_test(test_reset_and_addstr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
