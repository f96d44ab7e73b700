/*
 * admin_test.c - the admin command parser: the two commands, the blanks
 * and CR around them, and everything else, which must be invalid.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "util.h"

/* A string literal with its length, NULs included. */
#define S(lit)		(lit), (sizeof(lit) - 1)

struct test_case {
	const char	*in;
	size_t		 len;
	enum admin_cmd	 want;
};

#define STATUS	ADMIN_CMD_STATUS
#define RELOAD	ADMIN_CMD_RELOAD
#define INVALID	ADMIN_CMD_INVALID

/* Parse from an exact-size heap copy, so ASan sees a read past len. */
static enum admin_cmd
parse(const char *s, size_t len)
{
	char		*copy = malloc(len > 0 ? len : 1);
	enum admin_cmd	 cmd;

	assert_non_null(copy);
	memcpy(copy, s, len);
	cmd = admin_parse(copy, len, NULL, NULL);
	free(copy);
	return cmd;
}

static void
run_cases(const struct test_case *tc, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		enum admin_cmd got = parse(tc[i].in, tc[i].len);

		if (got != tc[i].want)
			fail_msg("case %zu \"%.*s\": got %d, want %d", i,
			    (int)tc[i].len, tc[i].in, (int)got,
			    (int)tc[i].want);
	}
}

static void
test_commands(void **state)
{
	static const struct test_case tc[] = {
		{ S("status"), STATUS },
		{ S("reload"), RELOAD },
		{ S("status\r"), STATUS },
		{ S("reload\r"), RELOAD },
	};

	(void)state;
	run_cases(tc, nitems(tc));
	/* The enum values the handler switches on. */
	assert_int_equal(ADMIN_CMD_INVALID, 0);
	assert_int_not_equal(ADMIN_CMD_STATUS, ADMIN_CMD_RELOAD);
}

static void
test_blanks(void **state)
{
	static const struct test_case tc[] = {
		{ S(" status"), STATUS },
		{ S("status "), STATUS },
		{ S("\tstatus\t"), STATUS },
		{ S("  \t reload \t  "), RELOAD },
		{ S("reload \r"), RELOAD },
		{ S("reload\r "), RELOAD },
		{ S("reload\r\r"), RELOAD },
		{ S(" \treload\t\r"), RELOAD },
	};

	(void)state;
	run_cases(tc, nitems(tc));
}

static void
test_len_is_respected(void **state)
{
	(void)state;
	/* Bytes past len are not part of the command. */
	assert_int_equal(admin_parse("statusXYZ", 6, NULL, NULL), STATUS);
	assert_int_equal(admin_parse("reload\n", 6, NULL, NULL), RELOAD);
	assert_int_equal(admin_parse("status", 5, NULL, NULL), INVALID);
	assert_int_equal(admin_parse("status", 0, NULL, NULL), INVALID);
}

static void
test_invalid(void **state)
{
	static const struct test_case tc[] = {
		{ S(""), INVALID },
		{ S(" "), INVALID },
		{ S("\r"), INVALID },
		{ S(" \t\r "), INVALID },
		/* Case matters. */
		{ S("STATUS"), INVALID },
		{ S("Status"), INVALID },
		{ S("RELOAD"), INVALID },
		{ S("reLoad"), INVALID },
		/* Prefixes and extensions. */
		{ S("stat"), INVALID },
		{ S("statu"), INVALID },
		{ S("s"), INVALID },
		{ S("statusx"), INVALID },
		{ S("statuss"), INVALID },
		{ S("reloads"), INVALID },
		{ S("xstatus"), INVALID },
		{ S("status reload"), INVALID },
		{ S("status status"), INVALID },
		{ S("reload now"), INVALID },
		{ S("reload;status"), INVALID },
		/* Only blanks, CR at the end, are trimmed. */
		{ S("\rstatus"), INVALID },
		{ S("status\n"), INVALID },
		{ S("\nstatus"), INVALID },
		{ S("status\r\n"), INVALID },
		{ S("status\v"), INVALID },
		{ S("status\f"), INVALID },
		{ S("\vstatus"), INVALID },
		{ S("st atus"), INVALID },
		{ S("status\xa0"), INVALID },	/* Latin-1 no-break space */
		/* Embedded NUL: a C-string compare would stop early. */
		{ S("status\0"), INVALID },
		{ S("\0status"), INVALID },
		{ S("status\0x"), INVALID },
		{ S("stat\0us"), INVALID },
		{ S("reload\0\r"), INVALID },
		{ S("\0"), INVALID },
		/* Garbage. */
		{ S("{\"cmd\":\"status\"}"), INVALID },
		{ S("GET / HTTP/1.1"), INVALID },
		{ S("\xff\xfe"), INVALID },
		{ S("help"), INVALID },
	};

	(void)state;
	run_cases(tc, nitems(tc));
}

/* "renew" alone, or with one word: the name to renew. */
static void
test_renew(void **state)
{
	static const struct {
		const char	*in;
		enum admin_cmd	 want;
		const char	*arg;
	} tc[] = {
		{ "renew", ADMIN_CMD_RENEW, "" },
		{ "  renew \r", ADMIN_CMD_RENEW, "" },
		{ "renew a.test", ADMIN_CMD_RENEW, "a.test" },
		{ "renew\t \tgit.example.com \r", ADMIN_CMD_RENEW,
		    "git.example.com" },
		{ "renew a.test b.test", INVALID, NULL },
		{ "renew a\x01b", INVALID, NULL },
		{ "renew a\xc3\xa9", INVALID, NULL },
		{ "renewa.test", INVALID, NULL },
		{ "RENEW a.test", INVALID, NULL },
		{ "status a.test", INVALID, NULL },
	};
	char long_arg[ADMIN_ARG_MAX + 16];
	const char *arg;
	size_t i, arglen;

	(void)state;
	for (i = 0; i < nitems(tc); i++) {
		assert_int_equal(admin_parse(tc[i].in, strlen(tc[i].in), &arg,
		    &arglen), tc[i].want);
		if (tc[i].arg == NULL)
			continue;
		assert_int_equal(arglen, strlen(tc[i].arg));
		assert_memory_equal(arg, tc[i].arg, arglen);
	}
	/* Bytes past len are not part of the argument. */
	assert_int_equal(admin_parse("renew a.testXYZ", 12, &arg, &arglen),
	    ADMIN_CMD_RENEW);
	assert_int_equal(arglen, 6);
	/* The longest name fits, one byte more does not. */
	memcpy(long_arg, "renew ", 6);
	memset(long_arg + 6, 'a', ADMIN_ARG_MAX);
	assert_int_equal(admin_parse(long_arg, 6 + ADMIN_ARG_MAX, &arg,
	    &arglen), ADMIN_CMD_RENEW);
	assert_int_equal(arglen, ADMIN_ARG_MAX);
	long_arg[6 + ADMIN_ARG_MAX] = 'a';
	assert_int_equal(admin_parse(long_arg, 7 + ADMIN_ARG_MAX, &arg,
	    &arglen), INVALID);
}

/* A line as long as the socket reads, all blanks but the command. */
static void
test_long_lines(void **state)
{
	char	buf[ADMIN_LINE_MAX];

	(void)state;
	memset(buf, ' ', sizeof(buf));
	memcpy(buf + 100, "reload", 6);
	assert_int_equal(parse(buf, sizeof(buf)), RELOAD);
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(parse(buf, sizeof(buf)), INVALID);
	memset(buf, ' ', sizeof(buf));
	assert_int_equal(parse(buf, sizeof(buf)), INVALID);
	memset(buf, '\r', sizeof(buf));
	assert_int_equal(parse(buf, sizeof(buf)), INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_blanks),
		cmocka_unit_test(test_len_is_respected),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_renew),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
