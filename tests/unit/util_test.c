/*
 * util_test.c - the strict number parser, ASCII case folding and
 * util_write_all: the valid, the boundary and the hostile.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "util.h"

/* A string literal with its length, NULs included. */
#define S(lit)		(lit), (sizeof(lit) - 1)

#define SENTINEL	0x5a5a5a5a5a5a5a5aULL

/*
 * Parse from an exact-size heap copy, so that ASan sees a read past len,
 * and check that *out is written on success only.
 */
static int
parse(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
	char		*copy = malloc(len > 0 ? len : 1);
	uint64_t	 v = SENTINEL;
	int		 rc;

	assert_non_null(copy);
	memcpy(copy, s, len);
	rc = util_parse_u64(copy, len, min, max, &v);
	free(copy);
	assert_true(rc == 0 || rc == -1);
	if (rc == -1)
		assert_true(v == SENTINEL);
	*out = v;
	return rc;
}

static void
accepts(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t want)
{
	uint64_t v;

	if (parse(s, len, min, max, &v) != 0)
		fail_msg("rejected \"%.*s\"", (int)len, s);
	assert_true(v == want);
}

static void
rejects(const char *s, size_t len, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (parse(s, len, min, max, &v) != -1)
		fail_msg("accepted \"%.*s\"", (int)len, s);
}

static void
test_parse_u64_valid(void **state)
{
	(void)state;
	accepts(S("0"), 0, UINT64_MAX, 0);
	accepts(S("1"), 0, UINT64_MAX, 1);
	accepts(S("42"), 0, UINT64_MAX, 42);
	accepts(S("65535"), 0, UINT64_MAX, 65535);
	accepts(S("4294967296"), 0, UINT64_MAX, 4294967296ULL);
	accepts(S("007"), 0, UINT64_MAX, 7);
	/* Only s[0..len) counts: the rest of the string is not looked at. */
	accepts("123abc", 3, 0, UINT64_MAX, 123);
	accepts("9-", 1, 0, UINT64_MAX, 9);
}

static void
test_parse_u64_max_and_overflow(void **state)
{
	(void)state;
	accepts(S("18446744073709551615"), 0, UINT64_MAX, UINT64_MAX);
	accepts(S("18446744073709551614"), 0, UINT64_MAX, UINT64_MAX - 1);
	accepts(S("18446744073709551610"), 0, UINT64_MAX, UINT64_MAX - 5);
	accepts(S("09999999999999999999"), 0, UINT64_MAX,
	    9999999999999999999ULL);
	/* UINT64_MAX + 1, and every other 20-digit value past it. */
	rejects(S("18446744073709551616"), 0, UINT64_MAX);
	rejects(S("18446744073709551619"), 0, UINT64_MAX);
	rejects(S("18446744073709551620"), 0, UINT64_MAX);
	rejects(S("18446744073709551700"), 0, UINT64_MAX);
	rejects(S("18446744073709552000"), 0, UINT64_MAX);
	rejects(S("19000000000000000000"), 0, UINT64_MAX);
	rejects(S("20000000000000000000"), 0, UINT64_MAX);
	rejects(S("99999999999999999999"), 0, UINT64_MAX);
	/* Values that wrap to something small modulo 2^64. */
	rejects(S("36893488147419103232"), 0, UINT64_MAX);	/* 2^65 */
	rejects(S("18446744073709551617"), 0, 10);		/* wraps to 1 */
}

static void
test_parse_u64_length(void **state)
{
	char	buf[64];

	(void)state;
	rejects("", 0, 0, UINT64_MAX);
	rejects("5", 0, 0, UINT64_MAX);		/* len 0, however s looks */
	/* 20 digits is the most a uint64_t needs: 21 are refused outright. */
	memset(buf, '0', sizeof(buf));
	buf[19] = '1';
	accepts(buf, 20, 0, UINT64_MAX, 1);
	buf[20] = '1';
	rejects(buf, 21, 0, UINT64_MAX);
	rejects(S("100000000000000000000"), 0, UINT64_MAX);	/* 10^20 */
	rejects(S("000000000000000000000"), 0, UINT64_MAX);
	rejects(buf, sizeof(buf), 0, UINT64_MAX);
}

static void
test_parse_u64_bounds(void **state)
{
	(void)state;
	rejects(S("0"), 1, 65535);
	accepts(S("1"), 1, 65535, 1);
	accepts(S("65535"), 1, 65535, 65535);
	rejects(S("65536"), 1, 65535);
	rejects(S("4294967297"), 1, 65535);	/* 2^32 + 1 */
	accepts(S("16"), 16, 16, 16);
	rejects(S("15"), 16, 16);
	rejects(S("17"), 16, 16);
	accepts(S("18446744073709551615"), UINT64_MAX, UINT64_MAX,
	    UINT64_MAX);
	rejects(S("18446744073709551614"), UINT64_MAX, UINT64_MAX);
	rejects(S("0"), 1, 0);			/* an empty range */
}

static void
test_parse_u64_hostile(void **state)
{
	static const struct {
		const char	*s;
		size_t		 len;
	} bad[] = {
		{ S("+1") }, { S("-1") }, { S("-0") }, { S("+0") },
		{ S(" 1") }, { S("1 ") }, { S("1 2") }, { S("\t1") },
		{ S("1\n") }, { S("\n1") }, { S("1\r") }, { S("\v1") },
		{ S("0x10") }, { S("0X10") }, { S("0x") }, { S("x1") },
		{ S("1e3") }, { S("1.0") }, { S("1,000") }, { S("1_000") },
		{ S("1\0") }, { S("\0001") }, { S("12\0003") }, { S("\0") },
		{ S("a") }, { S("/") }, { S(":") },	/* '0' - 1, '9' + 1 */
		{ S("\xb9") },			/* Latin-1 superscript 1 */
		{ S("\xd9\xa1") },			/* Arabic-Indic one */
		{ S("\xef\xbc\x91") },			/* fullwidth one */
		{ S("\x80" "1") }, { S("1\xff") },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(bad); i++)
		rejects(bad[i].s, bad[i].len, 0, UINT64_MAX);
}

static void
test_lower(void **state)
{
	int	c;

	(void)state;
	for (c = 0; c < 256; c++) {
		char want = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;

		assert_int_equal((unsigned char)util_lower((char)c),
		    (unsigned char)want);
	}
}

static void
test_cache(void **state)
{
	struct util_cache c;
	void *p[UTIL_CACHE_DEPTH + 1];
	size_t i;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_null(util_cache_get(&c));
	for (i = 0; i < nitems(p); i++) {
		assert_non_null(p[i] = malloc(16));
		util_cache_put(&c, p[i]);	/* the last one is freed */
	}
	util_cache_put(&c, NULL);		/* ignored */
	if (UTIL_ASAN) {
		/* nothing kept: a use after free stays visible */
		assert_int_equal(c.n, 0);
		assert_null(util_cache_get(&c));
		return;
	}
	assert_int_equal(c.n, UTIL_CACHE_DEPTH);
	/* last in, first out; clear frees what is left (LeakSanitizer) */
	for (i = UTIL_CACHE_DEPTH; i > UTIL_CACHE_DEPTH / 2; i--) {
		void *q = util_cache_get(&c);

		assert_ptr_equal(q, p[i - 1]);
		free(q);
	}
	util_cache_clear(&c);
	assert_int_equal(c.n, 0);
	assert_null(util_cache_get(&c));
}

/*
 * Trim frees what no get needed since the last trim (the low-water mark),
 * oldest first, and keeps the rest in order; put says whether it kept.
 */
static void
test_cache_trim(void **state)
{
	struct util_cache c;
	void *p[5], *q[2];
	size_t i;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (i = 0; i < nitems(p); i++) {
		assert_non_null(p[i] = malloc(16));
		assert_int_equal(util_cache_put(&c, p[i]), !UTIL_ASAN);
	}
	if (UTIL_ASAN) {
		assert_int_equal(c.n, 0);
		assert_int_equal(util_cache_trim(&c), 0);
		return;
	}
	/* Nothing was got before: the first trim has no mark to go by. */
	assert_int_equal(util_cache_trim(&c), 0);
	assert_int_equal(c.n, 5);
	/* Two taken, both put back: three stayed unused all along. */
	q[0] = util_cache_get(&c);
	q[1] = util_cache_get(&c);
	assert_ptr_equal(q[0], p[4]);
	assert_ptr_equal(q[1], p[3]);
	assert_true(util_cache_put(&c, q[1]));
	assert_true(util_cache_put(&c, q[0]));
	assert_int_equal(util_cache_trim(&c), 3);	/* p[0..2] freed */
	assert_int_equal(c.n, 2);
	assert_ptr_equal(util_cache_get(&c), p[4]);
	assert_ptr_equal(util_cache_get(&c), p[3]);
	assert_true(util_cache_put(&c, p[3]));
	assert_true(util_cache_put(&c, p[4]));
	/* Since that trim the fewest kept was 0: nothing is dropped. */
	assert_int_equal(util_cache_trim(&c), 0);
	assert_int_equal(c.n, 2);
	/* No get since: all of it goes. */
	assert_int_equal(util_cache_trim(&c), 2);
	assert_int_equal(c.n, 0);
	assert_null(util_cache_get(&c));
	assert_false(util_cache_put(&c, NULL));
	util_cache_clear(&c);
}

/* UTIL_LIT_IS on a literal span with its length, NULs included. */
#define SPAN_IS(span, lit)	UTIL_LIT_IS((span), sizeof(span) - 1, lit)

static void
test_lit_is(void **state)
{
	(void)state;
	assert_true(SPAN_IS("Content-Length", "content-length"));
	assert_true(SPAN_IS("HOST", "host"));
	assert_true(SPAN_IS("host", "HoSt"));
	assert_true(UTIL_LIT_IS("", 0, ""));
	assert_true(UTIL_LIT_IS("xyz", 0, ""));
	/* Length: the span shorter, longer, or ending inside the literal. */
	assert_false(SPAN_IS("hos", "host"));
	assert_false(SPAN_IS("hosts", "host"));
	assert_false(SPAN_IS("host", ""));
	assert_false(UTIL_LIT_IS("", 0, "host"));
	/* A NUL inside the span never matches the literal's end. */
	assert_false(SPAN_IS("ho\0t", "ho"));
	assert_false(SPAN_IS("ho\0", "ho"));
	assert_false(SPAN_IS("hust", "host"));
	assert_false(SPAN_IS("@", "`"));
	assert_false(SPAN_IS("\xc3\xa9", "\xc3\x89"));
}

static void
test_strcaseeq(void **state)
{
	(void)state;
	assert_true(util_strcaseeq(S("Host"), S("host")));
	assert_true(util_strcaseeq(S("CONTENT-LENGTH"), S("content-length")));
	assert_true(util_strcaseeq(S("a1-_.z"), S("A1-_.Z")));
	assert_true(util_strcaseeq("", 0, "", 0));
	assert_true(util_strcaseeq("abc", 0, "xyz", 0));
	assert_false(util_strcaseeq(S("host"), S("hosts")));
	assert_false(util_strcaseeq(S("hosts"), S("host")));
	assert_false(util_strcaseeq(S("host"), S("hust")));
	assert_false(util_strcaseeq(S("a"), "", 0));
	/* Only lengths count, not NUL terminators. */
	assert_true(util_strcaseeq(S("a\0b"), S("A\0B")));
	assert_false(util_strcaseeq(S("a\0b"), S("a\0c")));
	assert_false(util_strcaseeq(S("ab"), S("a\0")));
	/* Bytes one case bit apart that are not letters. */
	assert_false(util_strcaseeq(S("@"), S("`")));
	assert_false(util_strcaseeq(S("["), S("{")));
	assert_false(util_strcaseeq(S("^"), S("~")));
	assert_false(util_strcaseeq(S("\x0d"), S("\x2d")));
	/* No locale: Latin-1 upper and lower case stay different. */
	assert_false(util_strcaseeq(S("\xc0"), S("\xe0")));
	assert_false(util_strcaseeq(S("\xc9t\xc9"), S("\xe9t\xe9")));
	assert_true(util_strcaseeq(S("\xc0"), S("\xc0")));
}

/*
 * util_write_all
 */

struct reader {
	int		 fd;
	unsigned char	*buf;
	size_t		 cap;
	size_t		 len;
	volatile sig_atomic_t *wait_for;	/* start once this is set */
};

static void *
reader_main(void *arg)
{
	struct reader	*r = arg;
	ssize_t		 n;

	while (r->wait_for != NULL && *r->wait_for == 0)
		usleep(1000);
	while (r->len < r->cap &&
	    (n = read(r->fd, r->buf + r->len, r->cap - r->len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		r->len += (size_t)n;
	}
	return NULL;
}

static void
fill_pattern(unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + i / 251);
}

static void
test_write_all_small(void **state)
{
	char	out[16];
	int	p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(util_write_all(p[1], "hello", 5), 0);
	assert_int_equal(util_write_all(p[1], "", 0), 0);
	assert_int_equal(util_write_all(p[1], NULL, 0), 0);
	close(p[1]);
	assert_int_equal(read(p[0], out, sizeof(out)), 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(read(p[0], out, sizeof(out)), 0);
	close(p[0]);
}

/* Far more than a pipe holds: only a loop over short writes gets it all. */
static void
test_write_all_large(void **state)
{
	const size_t	 n = 4 * 1024 * 1024 + 3;
	unsigned char	*src = malloc(n);
	struct reader	 r = { 0 };
	pthread_t	 t;
	int		 p[2];

	(void)state;
	assert_non_null(src);
	fill_pattern(src, n);
	assert_int_equal(pipe(p), 0);
	r.fd = p[0];
	r.cap = n + 1;
	r.buf = malloc(r.cap);
	assert_non_null(r.buf);
	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	assert_int_equal(util_write_all(p[1], src, n), 0);
	close(p[1]);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(p[0]);
	assert_int_equal(r.len, n);
	assert_memory_equal(r.buf, src, n);
	free(r.buf);
	free(src);
}

static volatile sig_atomic_t alarmed;

static void
on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

/*
 * A signal without SA_RESTART interrupts a write blocked on a full pipe:
 * the write fails with EINTR before any byte moved, and must be retried.
 */
static void
test_write_all_retries_eintr(void **state)
{
	struct sigaction sa, old;
	struct itimerval it = { { 0, 0 }, { 0, 50000 } };
	unsigned char	 chunk[4096], msg[100];
	struct reader	 r = { 0 };
	sigset_t	 block, prev;
	size_t		 filled = 0;
	pthread_t	 t;
	ssize_t		 n;
	int		 p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	/* Fill the pipe to the brim. */
	assert_int_equal(util_set_nonblock(p[1]), 0);
	memset(chunk, 'f', sizeof(chunk));
	while ((n = write(p[1], chunk, sizeof(chunk))) > 0)
		filled += (size_t)n;
	assert_int_equal(errno, EAGAIN);
	while ((n = write(p[1], chunk, 1)) > 0)
		filled += (size_t)n;
	assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = 0;		/* no SA_RESTART */
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	alarmed = 0;

	/* The reader drains only after the signal; it never takes SIGALRM. */
	fill_pattern(msg, sizeof(msg));
	r.fd = p[0];
	r.cap = filled + sizeof(msg);
	r.buf = malloc(r.cap);
	r.wait_for = &alarmed;
	assert_non_null(r.buf);
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &prev), 0);
	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &prev, NULL), 0);

	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(util_write_all(p[1], msg, sizeof(msg)), 0);
	assert_true(alarmed);
	close(p[1]);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(p[0]);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	assert_int_equal(r.len, filled + sizeof(msg));
	assert_memory_equal(r.buf + filled, msg, sizeof(msg));
	free(r.buf);
}

static void
test_write_all_errors(void **state)
{
	void	(*oldpipe)(int);
	int	p[2], fd;

	(void)state;
	/* A closed reader: EPIPE (with SIGPIPE ignored, as the daemon does). */
	oldpipe = signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	errno = 0;
	assert_int_equal(util_write_all(p[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
	signal(SIGPIPE, oldpipe);

	/* Not open for writing. */
	assert_int_equal(pipe(p), 0);
	errno = 0;
	assert_int_equal(util_write_all(p[0], "x", 1), -1);
	assert_int_equal(errno, EBADF);
	close(p[0]);
	close(p[1]);

	fd = p[1];			/* now closed */
	errno = 0;
	assert_int_equal(util_write_all(fd, "x", 1), -1);
	assert_int_equal(errno, EBADF);

	/* A full nonblocking pipe: EAGAIN is an error, not a busy loop. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(util_set_nonblock(p[1]), 0);
	{
		static char	big[1 << 20];

		errno = 0;
		assert_int_equal(util_write_all(p[1], big, sizeof(big)), -1);
		assert_int_equal(errno, EAGAIN);
	}
	close(p[0]);
	close(p[1]);
}

static void
test_fd_flags(void **state)
{
	int	p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(util_set_nonblock(p[0]), 0);
	assert_int_not_equal(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
	/* Other status flags survive. */
	assert_int_equal(fcntl(p[1], F_SETFL, O_APPEND), 0);
	assert_int_equal(util_set_nonblock(p[1]), 0);
	assert_int_not_equal(fcntl(p[1], F_GETFL) & O_APPEND, 0);

	assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(util_set_cloexec(p[0], true), 0);
	assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(util_set_cloexec(p[0], true), 0);
	assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(util_set_cloexec(p[0], false), 0);
	assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
	close(p[0]);
	close(p[1]);
	assert_int_equal(util_set_nonblock(p[0]), -1);
	assert_int_equal(util_set_cloexec(p[0], true), -1);
	assert_int_equal(util_set_cloexec(-1, false), -1);
}

static void
test_now(void **state)
{
	double	a, b;

	(void)state;
	a = util_now();
	usleep(20000);
	b = util_now();
	assert_true(a > 0);
	assert_true(b - a >= 0.015);
	assert_true(b - a < 5.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lit_is),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_trim),
		cmocka_unit_test(test_parse_u64_valid),
		cmocka_unit_test(test_parse_u64_max_and_overflow),
		cmocka_unit_test(test_parse_u64_length),
		cmocka_unit_test(test_parse_u64_bounds),
		cmocka_unit_test(test_parse_u64_hostile),
		cmocka_unit_test(test_lower),
		cmocka_unit_test(test_strcaseeq),
		cmocka_unit_test(test_write_all_small),
		cmocka_unit_test(test_write_all_large),
		cmocka_unit_test(test_write_all_retries_eintr),
		cmocka_unit_test(test_write_all_errors),
		cmocka_unit_test(test_fd_flags),
		cmocka_unit_test(test_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
