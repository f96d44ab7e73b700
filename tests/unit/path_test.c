/*
 * path_test.c - the path normaliser of path blocks (src/path.c): every
 * rule and error of path.h for both forms, the attack vectors of issue 17
 * with the block they choose among "/api/" and "/static/", prefix
 * matching, replace-path, buffers that are too small, and the invariants
 * (idempotence, no longer than the input, path_is_normal()) over every
 * vector of this file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "path.h"
#include "util.h"

#define M	PATH_MATCH
#define P	0u		/* the forwarded form */
#define BOTH	0x100u		/* the same answer for M and P */

/* A literal with its length: some hold a NUL. */
#define S(lit)	lit, sizeof(lit) - 1

struct norm_case {
	const char	*in;
	size_t		 len;
	unsigned	 flags;		/* M, P or BOTH */
	const char	*out;		/* NULL: err */
	int		 err;
};

#define OK(in, flags, out)	{ S(in), flags, out, 0 }
#define ERR(in, flags, err)	{ S(in), flags, NULL, err }

static const struct norm_case rules[] = {
	/* nothing to do */
	OK("/", BOTH, "/"),
	OK("/a/b", BOTH, "/a/b"),
	OK("/a/b/", BOTH, "/a/b/"),
	OK("/a-b_c~d.e!$&'()*+,=:@", BOTH, "/a-b_c~d.e!$&'()*+,=:@"),
	/* runs of '/' */
	OK("//", BOTH, "/"),
	OK("///a//b///", BOTH, "/a/b/"),
	/* dot segments, RFC 3986 5.2.4, with its trailing '/' */
	OK("/.", BOTH, "/"),
	OK("/a/.", BOTH, "/a/"),
	OK("/a/./b/.", BOTH, "/a/b/"),
	OK("/a/..", BOTH, "/"),
	OK("/a/b/..", BOTH, "/a/"),
	OK("/a/b/../", BOTH, "/a/"),
	OK("/a/b/../c", BOTH, "/a/c"),
	OK("/a/b/../../c/", BOTH, "/c/"),
	OK("/a/b/c/./../../g", BOTH, "/a/g"),
	OK("/a//..", BOTH, "/"),
	OK("/a/.//b", BOTH, "/a/b"),
	/* not dot segments */
	OK("/...", BOTH, "/..."),
	OK("/.a/..b/a../.%2e.", BOTH, "/.a/..b/a../..."),
	/* unreserved decoded, the rest upper-cased, never decoded twice */
	OK("/%7e%41%7A%30%2D%2e%5F", BOTH, "/~Az0-._"),
	OK("/%61%62c", BOTH, "/abc"),
	OK("/%3a%3A%2c%40%20%7f", BOTH, "/%3A%3A%2C%40%20%7F"),
	OK("/%00", BOTH, "/%00"),
	OK("/%25", BOTH, "/%25"),
	OK("/%252e%252E", BOTH, "/%252e%252E"),
	OK("/%2541", BOTH, "/%2541"),
	OK("/%c3%a9", BOTH, "/%C3%A9"),
	OK("/a%3bp/b", BOTH, "/a%3Bp/b"),
	OK("/a%5cb", BOTH, "/a%5Cb"),
	OK("/a%3Fb%23c", BOTH, "/a%3Fb%23c"),
	/* dots from escapes */
	OK("/%2e", BOTH, "/"),
	OK("/a/%2E%2e", BOTH, "/"),
	OK("/a/.%2e/b", BOTH, "/b"),
	OK("/a/%2e./b", BOTH, "/b"),
	/* bytes from 0x80 up, kept */
	OK("/\xc3\xa9/\xff\x80", BOTH, "/\xc3\xa9/\xff\x80"),
	OK("/\xc0\xae\xc0\xae/x", BOTH, "/\xc0\xae\xc0\xae/x"),
	/* %2F: a separator only for matching */
	OK("/a%2fb", P, "/a%2Fb"),
	OK("/a%2fb", M, "/a/b"),
	OK("/a%2F%2Fb%2f", P, "/a%2F%2Fb%2F"),
	OK("/a%2F%2Fb%2f", M, "/a/b/"),
	OK("/a%2F..%2Fb", P, "/a%2F..%2Fb"),
	OK("/a%2F..%2Fb", M, "/b"),
	OK("/%2F", M, "/"),
	OK("/a%2Fb/../..", M, "/"),
	ERR("/a%2Fb/../..", P, PATH_E_ABOVE_ROOT),
	/* ;parameters: dropped only for matching */
	OK("/a;p=1/b;q", P, "/a;p=1/b;q"),
	OK("/a;p=1/b;q", M, "/a/b"),
	OK("/a/..;x/b", P, "/a/..;x/b"),
	OK("/a/..;x/b", M, "/b"),
	OK("/a/.;/b", M, "/a/b"),
	OK("/;x", P, "/;x"),
	OK("/;x", M, "/"),
	OK("/a/;x", M, "/a/"),
	OK("/a/;x/b", M, "/a/b"),
	OK("/a;x%2F../b", M, "/b"),
	OK("/a;%2e%2e/b", M, "/a/b"),
	OK("/a/b/..;/..;", M, "/"),
	OK("/a/b/..;/..;", P, "/a/b/..;/..;"),
	OK("/x/..;/..", P, "/x/"),
	ERR("/x/..;/..", M, PATH_E_ABOVE_ROOT),
	/* not starting with '/' */
	ERR("", BOTH, PATH_E_NOT_ABSOLUTE),
	ERR("a/b", BOTH, PATH_E_NOT_ABSOLUTE),
	ERR("%2Fa", BOTH, PATH_E_NOT_ABSOLUTE),
	ERR("*", BOTH, PATH_E_NOT_ABSOLUTE),
	ERR(" /a", BOTH, PATH_E_NOT_ABSOLUTE),
	/* bytes */
	ERR("/a b", BOTH, PATH_E_CTL),
	ERR("/a\tb", BOTH, PATH_E_CTL),
	ERR("/a\0b", BOTH, PATH_E_CTL),
	ERR("/a\r\n", BOTH, PATH_E_CTL),
	ERR("/a\x1f", BOTH, PATH_E_CTL),
	ERR("/a\x7f", BOTH, PATH_E_CTL),
	ERR("/a#b", BOTH, PATH_E_FRAGMENT),
	ERR("/#", BOTH, PATH_E_FRAGMENT),
	ERR("/a\\b", BOTH, PATH_E_BACKSLASH),
	ERR("/..\\..\\x", BOTH, PATH_E_BACKSLASH),
	ERR("/a?b", BOTH, PATH_E_QUERY),
	ERR("/?", BOTH, PATH_E_QUERY),
	/* escapes */
	ERR("/%", BOTH, PATH_E_PERCENT),
	ERR("/a%2", BOTH, PATH_E_PERCENT),
	ERR("/a%zz", BOTH, PATH_E_PERCENT),
	ERR("/a%g0", BOTH, PATH_E_PERCENT),
	ERR("/a%0g", BOTH, PATH_E_PERCENT),
	ERR("/a%%41", BOTH, PATH_E_PERCENT),
	ERR("/%u002e", BOTH, PATH_E_PERCENT),
	ERR("/a;%", M, PATH_E_PERCENT),	/* in a parameter too */
	ERR("/a;\x01", M, PATH_E_CTL),
	/* above the root */
	ERR("/..", BOTH, PATH_E_ABOVE_ROOT),
	ERR("/../a", BOTH, PATH_E_ABOVE_ROOT),
	ERR("/a/../..", BOTH, PATH_E_ABOVE_ROOT),
	ERR("/a/../../x", BOTH, PATH_E_ABOVE_ROOT),
	ERR("/a/b/../../../c", BOTH, PATH_E_ABOVE_ROOT),
	ERR("/./..", BOTH, PATH_E_ABOVE_ROOT),
	ERR("//..//a", BOTH, PATH_E_ABOVE_ROOT),
	/* the first bad byte from the left, before any other error */
	ERR("/../a b", BOTH, PATH_E_CTL),
	ERR("/a#b\\c?d", BOTH, PATH_E_FRAGMENT),
	ERR("/a\\b#c", BOTH, PATH_E_BACKSLASH),
	ERR("/%zz b", BOTH, PATH_E_PERCENT),
	ERR("/a b%zz", BOTH, PATH_E_CTL),
};

/*
 * The attack vectors: the PATH_MATCH form (NULL: the error) and the block
 * it chooses, the longest of "/api/" and "/static/" that matches (NULL:
 * none, the site's own upstream).
 */
struct attack {
	const char	*in;
	size_t		 len;
	const char	*norm;
	int		 err;
	const char	*block;
};

#define TO(in, norm, block)	{ S(in), norm, 0, block }
#define BAD(in, err)		{ S(in), NULL, err, NULL }

static const struct attack attacks[] = {
	TO("/api/x", "/api/x", "/api/"),
	TO("/static/x", "/static/x", "/static/"),
	TO("/static/../api/x", "/api/x", "/api/"),
	BAD("/%2e%2e/api/x", PATH_E_ABOVE_ROOT),
	BAD("/%2E%2E/api/x", PATH_E_ABOVE_ROOT),
	TO("//api/x", "/api/x", "/api/"),
	TO("/api%2Fx", "/api/x", "/api/"),
	TO("/api%2fx", "/api/x", "/api/"),
	TO("/%2fapi/x", "/api/x", "/api/"),
	TO("/api", "/api", NULL),
	TO("/apix", "/apix", NULL),
	TO("/api;x/y", "/api/y", "/api/"),
	TO("/api;/x", "/api/x", "/api/"),
	TO("/static/..;/api/x", "/api/x", "/api/"),
	TO("/static;/../api/x", "/api/x", "/api/"),
	TO("/static;x/../api/x", "/api/x", "/api/"),
	TO("/static/..;a=b;c/api/x", "/api/x", "/api/"),
	TO("/API/x", "/API/x", NULL),
	TO("/Static/x", "/Static/x", NULL),
	TO("/./api/x", "/api/x", "/api/"),
	TO("/static/%2e%2e/api/x", "/api/x", "/api/"),
	TO("/static/.%2e/api/x", "/api/x", "/api/"),
	TO("/static/%2e%2e%2fapi/x", "/api/x", "/api/"),
	TO("/static%2F..%2Fapi/x", "/api/x", "/api/"),
	TO("/static/%252e%252e/api/x", "/static/%252e%252e/api/x",
	    "/static/"),
	TO("/static/%252e%252e%252fapi/x", "/static/%252e%252e%252fapi/x",
	    "/static/"),
	TO("/static/%c0%ae%c0%ae/api/x", "/static/%C0%AE%C0%AE/api/x",
	    "/static/"),
	TO("/static/\xc0\xae\xc0\xae/api/x", "/static/\xc0\xae\xc0\xae/api/x",
	    "/static/"),
	TO("/static/..%5capi/x", "/static/..%5Capi/x", "/static/"),
	TO("/static/x/..%2f..%2fapi", "/api", NULL),
	TO("/static/x/..%2f..%2fapi/", "/api/", "/api/"),
	TO("/api/../static/x", "/static/x", "/static/"),
	TO("/api/x/../../static/y", "/static/y", "/static/"),
	TO("/api/..;", "/", NULL),
	TO("/static/;/../api", "/api", NULL),
	TO("/%61pi/x", "/api/x", "/api/"),
	TO("/api/%2e%2E/%2E/static/x", "/static/x", "/static/"),
	TO("/api/%00", "/api/%00", "/api/"),
	TO("/api/", "/api/", "/api/"),
	TO("/api/x/..", "/api/", "/api/"),
	TO("/api/x/../..", "/", NULL),
	BAD("/..", PATH_E_ABOVE_ROOT),
	BAD("/a/../../x", PATH_E_ABOVE_ROOT),
	BAD("/api/../../api/x", PATH_E_ABOVE_ROOT),
	BAD("/static/..;/..;/api/x", PATH_E_ABOVE_ROOT),
	BAD("/a\\b", PATH_E_BACKSLASH),
	BAD("/static\\..\\api/x", PATH_E_BACKSLASH),
	BAD("/a%2", PATH_E_PERCENT),
	BAD("/a%zz", PATH_E_PERCENT),
	BAD("/api%", PATH_E_PERCENT),
	BAD("/api/x#/../../static", PATH_E_FRAGMENT),
	BAD("/api\0/x", PATH_E_CTL),
	BAD("/api/ x", PATH_E_CTL),
	BAD("/api/x?y", PATH_E_QUERY),
	BAD("api/x", PATH_E_NOT_ABSOLUTE),
};

static const char *const blocks[] = { "/api/", "/static/" };

/* The longest block that matches norm[0..len), or NULL. */
static const char *
choose(const char *norm, size_t len)
{
	const char	*best = NULL;
	size_t		 i;

	for (i = 0; i < nitems(blocks); i++)
		if (path_prefix_match(norm, len, blocks[i],
		    strlen(blocks[i])) && (best == NULL ||
		    strlen(blocks[i]) > strlen(best)))
			best = blocks[i];
	return best;
}

/* A result's bytes, as a string for assertion messages. */
static char	outstr[512];

static const char *
norm(const char *in, size_t len, unsigned flags, int *rv)
{
	size_t	n = 0;

	assert_true(len < sizeof(outstr));
	memset(outstr, 'Z', sizeof(outstr));
	*rv = path_normalize(in, len, flags, outstr, sizeof(outstr) - 1, &n);
	if (*rv != 0) {
		/* nothing written on an error */
		assert_true(outstr[0] == 'Z' && outstr[len] == 'Z');
		return NULL;
	}
	outstr[n] = '\0';
	assert_int_equal(strlen(outstr), n);	/* never a NUL */
	return outstr;
}

static void
check_case(const char *in, size_t len, unsigned flags, const char *want,
    int err)
{
	const char	*got;
	int		 rv;

	got = norm(in, len, flags, &rv);
	if (want == NULL) {
		assert_int_equal(rv, err);
		assert_null(got);
	} else {
		assert_int_equal(rv, 0);
		assert_string_equal(got, want);
	}
}

static void
test_rules(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(rules); i++) {
		const struct norm_case *c = &rules[i];

		if (c->flags != M)
			check_case(c->in, c->len, P, c->out, c->err);
		if (c->flags != P)
			check_case(c->in, c->len, M, c->out, c->err);
	}
}

static void
test_attacks(void **state)
{
	const char	*got;
	size_t		 i;
	int		 rv;

	(void)state;
	for (i = 0; i < nitems(attacks); i++) {
		const struct attack *a = &attacks[i];

		check_case(a->in, a->len, M, a->norm, a->err);
		if (a->norm == NULL)
			continue;
		got = choose(a->norm, strlen(a->norm));
		if (a->block == NULL)
			assert_null(got);
		else {
			assert_non_null(got);
			assert_string_equal(got, a->block);
		}
	}
	/* the forwarded form refuses what the matching form refuses */
	for (i = 0; i < nitems(attacks); i++)
		if (attacks[i].err != 0 &&
		    attacks[i].err != PATH_E_ABOVE_ROOT) {
			(void)norm(attacks[i].in, attacks[i].len, P, &rv);
			assert_int_equal(rv, attacks[i].err);
		}
}

/*
 * The invariants of path.h for one input and flags: a result is no
 * longer than the input, has no "//", no NUL, no ';' or "%2F" when
 * matching, is path_is_normal() and comes back unchanged; it needs
 * exactly its length of room; the input is normal iff it is its result.
 */
static void
check_invariants(const char *in, size_t len, unsigned flags)
{
	char	a[512], b[512];
	size_t	alen = 0, blen = 0, cap;
	int	rv;

	assert_true(len <= sizeof(a));
	rv = path_normalize(in, len, flags, a, len, &alen);
	assert_int_equal(path_is_normal(in, len, flags), rv == 0 &&
	    alen == len && memcmp(a, in, len) == 0);
	if (rv != 0) {
		assert_true(rv < 0 && rv >= PATH_E_ABOVE_ROOT);
		return;
	}
	assert_true(alen >= 1 && alen <= len && a[0] == '/');
	assert_true(path_is_normal(a, alen, flags));
	assert_null(memchr(a, '\0', alen));
	for (cap = 0; cap + 1 < alen; cap++)
		assert_false(a[cap] == '/' && a[cap + 1] == '/');
	if (flags & PATH_MATCH) {
		assert_null(memchr(a, ';', alen));
		for (cap = 0; cap + 2 < alen; cap++)
			assert_false(a[cap] == '%' && a[cap + 1] == '2' &&
			    a[cap + 2] == 'F');
	}
	/* idempotent */
	assert_int_equal(path_normalize(a, alen, flags, b, alen, &blen), 0);
	assert_int_equal(blen, alen);
	assert_memory_equal(a, b, alen);
	/* room: exactly the result, whatever the input's length */
	memset(b, 'Z', sizeof(b));
	assert_int_equal(path_normalize(in, len, flags, b, alen, &blen), 0);
	assert_int_equal(blen, alen);
	assert_memory_equal(a, b, alen);
	memset(b, 'Z', sizeof(b));
	assert_int_equal(path_normalize(in, len, flags, b, alen - 1, &blen),
	    PATH_E_SPACE);
	assert_true(b[0] == 'Z');
}

static void
test_invariants(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(rules); i++) {
		check_invariants(rules[i].in, rules[i].len, P);
		check_invariants(rules[i].in, rules[i].len, M);
	}
	for (i = 0; i < nitems(attacks); i++) {
		check_invariants(attacks[i].in, attacks[i].len, P);
		check_invariants(attacks[i].in, attacks[i].len, M);
	}
}

/*
 * The two forms of one path (path.h): the forwarded one, normalised for
 * matching, may be another path or none; it may be forwarded when it is
 * the matching form again and starts with the block's prefix.
 */
static void
test_forms(void **state)
{
	char	out[32];
	size_t	n;

	(void)state;
	check_case(S("/a/x/..;/../b"), M, "/b", 0);
	check_case(S("/a/x/..;/../b"), P, "/a/x/b", 0);
	check_case(S("/a/x/b"), M, "/a/x/b", 0);
	check_case(S("/a%2Fb/../..;/c"), M, "/c", 0);
	check_case(S("/a%2Fb/../..;/c"), P, "/..;/c", 0);
	check_case(S("/..;/c"), M, NULL, PATH_E_ABOVE_ROOT);
	/* the same path again, but not under the prefix: forward "/api/x" */
	check_case(S("/api;v=1/x"), M, "/api/x", 0);
	check_case(S("/api;v=1/x"), P, "/api;v=1/x", 0);
	assert_false(path_prefix_match(S("/api;v=1/x"), S("/api/")));
	/* both: the forwarded form keeps its parameter */
	check_case(S("/api/x;v=1"), M, "/api/x", 0);
	check_case(S("/api/x;v=1"), P, "/api/x;v=1", 0);
	assert_true(path_prefix_match(S("/api/x;v=1"), S("/api/")));
	assert_int_equal(path_replace(S("/api/x;v=1"), 5, S("/"), NULL, 0,
	    out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "/x;v=1", 6);
}

/* path_is_normal() by itself, both ways. */
static void
test_is_normal(void **state)
{
	static const struct {
		const char	*p;
		unsigned	 flags;
		bool		 normal;
	} t[] = {
		{ "/", BOTH, true },
		{ "/a/b", BOTH, true },
		{ "/a/b/", BOTH, true },
		{ "/%3A%00%25/\xff", BOTH, true },
		{ "/...", BOTH, true },
		{ "/a%2Fb", P, true },
		{ "/a%2Fb", M, false },
		{ "/a;b", P, true },
		{ "/a;b", M, false },
		{ "", BOTH, false },
		{ "a", BOTH, false },
		{ "//", BOTH, false },
		{ "/a//b", BOTH, false },
		{ "/.", BOTH, false },
		{ "/./", BOTH, false },
		{ "/a/..", BOTH, false },
		{ "/../a", BOTH, false },
		{ "/%3a", BOTH, false },
		{ "/%41", BOTH, false },
		{ "/%2f", BOTH, false },
		{ "/%", BOTH, false },
		{ "/%4", BOTH, false },
		{ "/a b", BOTH, false },
		{ "/a#", BOTH, false },
		{ "/a\\", BOTH, false },
		{ "/a?", BOTH, false },
		{ "/a\x7f", BOTH, false },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		if (t[i].flags != M)
			assert_int_equal(path_is_normal(t[i].p,
			    strlen(t[i].p), P), t[i].normal);
		if (t[i].flags != P)
			assert_int_equal(path_is_normal(t[i].p,
			    strlen(t[i].p), M), t[i].normal);
	}
	assert_false(path_is_normal("/a\0b", 4, P));
}

/* A result that fits is never refused for what a later ".." removes. */
static void
test_space(void **state)
{
	char	out[16];
	size_t	n = 99;

	(void)state;
	memset(out, 'Z', sizeof(out));
	assert_int_equal(path_normalize(S("/aaaaaaaa/../b"), M, out, 2, &n),
	    0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "/bZ", 3);
	n = 99;
	memset(out, 'Z', sizeof(out));
	assert_int_equal(path_normalize(S("/aaaaaaaa/../b"), M, out, 1, &n),
	    PATH_E_SPACE);
	assert_int_equal(n, 99);
	assert_true(out[0] == 'Z');
	assert_int_equal(path_normalize(S("/"), P, out, 0, &n), PATH_E_SPACE);
	/* another error comes first, whatever the room */
	assert_int_equal(path_normalize(S("/aaaa/../../b"), P, out, 0, &n),
	    PATH_E_ABOVE_ROOT);
	assert_int_equal(path_normalize(S("/aaaa/b#"), P, out, 0, &n),
	    PATH_E_FRAGMENT);
	assert_int_equal(path_normalize(NULL, 0, P, out, sizeof(out), &n),
	    PATH_E_NOT_ABSOLUTE);
	assert_int_equal(n, 99);
}

static void
test_query_at(void **state)
{
	(void)state;
	assert_int_equal(path_query_at(S("/a/b")), 4);
	assert_int_equal(path_query_at(S("/a?b?c")), 2);
	assert_int_equal(path_query_at(S("/a?")), 2);
	assert_int_equal(path_query_at(S("?")), 0);
	assert_int_equal(path_query_at(S("")), 0);
	assert_int_equal(path_query_at(NULL, 0), 0);
	assert_int_equal(path_query_at(S("/a%3Fb")), 6);
}

static void
test_prefix_match(void **state)
{
	static const struct {
		const char	*norm;
		const char	*prefix;
		bool		 match;
	} t[] = {
		{ "/api/", "/api/", true },
		{ "/api/x", "/api/", true },
		{ "/api/x/y", "/api/", true },
		{ "/api", "/api/", false },
		{ "/apix", "/api/", false },
		{ "/ap", "/api/", false },
		{ "/API/x", "/api/", false },
		{ "/api", "/api", true },
		{ "/api/", "/api", true },
		{ "/api/x", "/api", true },
		{ "/apix", "/api", false },
		{ "/api%2Fx", "/api", false },
		{ "/ap", "/api", false },
		{ "/", "/", true },
		{ "/x", "/", true },
		{ "/a/b/c", "/a/b", true },
		{ "/a/bc", "/a/b", false },
		{ "/x", "", false },
		{ "/x", "x", false },
		{ "x/y", "x", false },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(t); i++)
		assert_int_equal(path_prefix_match(t[i].norm,
		    strlen(t[i].norm), t[i].prefix, strlen(t[i].prefix)),
		    t[i].match);
	/* only the given length counts */
	assert_true(path_prefix_match("/api/x", 4, "/api/", 4));
	assert_false(path_prefix_match("/api/x", 4, "/api/", 5));
}

static void
check_replace(const char *norm, const char *prefix, const char *repl,
    const char *query, const char *want)
{
	char	out[64];
	size_t	n = 0, len = strlen(norm), plen = strlen(prefix);
	size_t	rlen = strlen(repl), qlen = query != NULL ? strlen(query) : 0;

	assert_true(path_prefix_match(norm, len, prefix, plen));
	memset(out, 'Z', sizeof(out));
	assert_int_equal(path_replace(norm, len, plen, repl, rlen, query, qlen,
	    out, sizeof(out), &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	assert_true(out[n] == 'Z');
	/* exactly its length of room */
	memset(out, 'Z', sizeof(out));
	assert_int_equal(path_replace(norm, len, plen, repl, rlen, query, qlen,
	    out, n, &n), 0);
	assert_memory_equal(out, want, n);
	memset(out, 'Z', sizeof(out));
	assert_int_equal(path_replace(norm, len, plen, repl, rlen, query, qlen,
	    out, n - 1, &n), PATH_E_SPACE);
	assert_true(out[0] == 'Z');
}

static void
test_replace(void **state)
{
	char	out[8];
	size_t	n = 99;

	(void)state;
	/* the table of path.h */
	check_replace("/api/users", "/api/", "/", NULL, "/users");
	check_replace("/api/users", "/api/", "/v2", NULL, "/v2/users");
	check_replace("/api/users", "/api/", "/v2/", NULL, "/v2/users");
	check_replace("/api/", "/api/", "/v2", NULL, "/v2/");
	check_replace("/api/", "/api/", "/", NULL, "/");
	check_replace("/api/users", "/api", "/", NULL, "/users");
	check_replace("/api/users", "/api", "/v2/", NULL, "/v2/users");
	check_replace("/api/", "/api", "/v2", NULL, "/v2/");
	check_replace("/api", "/api", "/v2/", NULL, "/v2");
	check_replace("/api", "/api", "/", NULL, "/");
	check_replace("/x/y", "/", "/v2", NULL, "/v2/x/y");
	check_replace("/", "/", "/", NULL, "/");
	check_replace("/a/b/c/", "/a/b/", "/z", NULL, "/z/c/");
	/* the query: none, empty, kept as it was */
	check_replace("/api/users", "/api/", "/", "q=1", "/users?q=1");
	check_replace("/api/users", "/api/", "/", "", "/users?");
	check_replace("/api", "/api", "/", "", "/?");
	check_replace("/api/", "/api/", "/v2", "a=%2F&b", "/v2/?a=%2F&b");
	/* misuse */
	assert_int_equal(path_replace(S("/api/x"), 0, S("/"), NULL, 0, out,
	    sizeof(out), &n), PATH_E_REPLACE);
	assert_int_equal(path_replace(S("/api"), 5, S("/"), NULL, 0, out,
	    sizeof(out), &n), PATH_E_REPLACE);
	assert_int_equal(path_replace(S("/apix"), 4, S("/"), NULL, 0, out,
	    sizeof(out), &n), PATH_E_REPLACE);
	assert_int_equal(path_replace(S("/api/x"), 4, "", 0, NULL, 0, out,
	    sizeof(out), &n), PATH_E_REPLACE);
	assert_int_equal(path_replace(S("/api/x"), 4, S("v2"), NULL, 0, out,
	    sizeof(out), &n), PATH_E_REPLACE);
	/* too long, with or without the query */
	assert_int_equal(path_replace(S("/api/x"), 5, S("/longer"), NULL, 0,
	    out, sizeof(out), &n), PATH_E_SPACE);
	assert_int_equal(path_replace(S("/api/x"), 5, S("/"), S("1234567"),
	    out, sizeof(out), &n), PATH_E_SPACE);
	assert_int_equal(path_replace(S("/api/x"), 5, S("/"), S("12345"),
	    out, sizeof(out), &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "/x?12345", 8);
}

static void
test_strerror(void **state)
{
	int	i, j;

	(void)state;
	for (i = PATH_E_REPLACE; i <= PATH_OK; i++) {
		assert_string_not_equal(path_strerror(i), "unknown error");
		for (j = PATH_E_REPLACE; j < i; j++)
			assert_string_not_equal(path_strerror(i),
			    path_strerror(j));
	}
	assert_string_equal(path_strerror(PATH_E_REPLACE - 1),
	    "unknown error");
	assert_string_equal(path_strerror(1), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_attacks),
		cmocka_unit_test(test_invariants),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_is_normal),
		cmocka_unit_test(test_space),
		cmocka_unit_test(test_query_at),
		cmocka_unit_test(test_prefix_match),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
