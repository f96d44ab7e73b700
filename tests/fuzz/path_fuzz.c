/*
 * path_fuzz.c - libFuzzer target for the path normaliser (src/path.c).
 *
 * Each input is taken twice: whole, as a path, and as a request target
 * cut at its first '?' (path_query_at()) into a path and a query.  Every
 * path is normalised with and without PATH_MATCH, and:
 *
 * - the answer, result or error, is the one of a reference written here
 *   the obvious way (forward, a stack of segments, memory allocated);
 * - an error of the bytes (step 1 of path.h) is the same for both flags;
 * - a result is no longer than the path, holds nothing path.h says it
 *   never holds, is path_is_normal(), and comes back unchanged when
 *   normalised again; a path is path_is_normal() iff it is
 *   its own result;
 * - output buffers are heap blocks of exactly the capacity given, so ASan
 *   sees a write past it: a result fits in exactly its length, and one
 *   byte less is PATH_E_SPACE with nothing written;
 * - path_prefix_match() on the matching form, for every prefix of it and
 *   a few fixed ones, answers as a segment-boundary comparison does; for
 *   a few matches, path_replace() builds repl, the rest and the query
 *   into exactly the room they need, and refuses one byte less.
 * Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Each costs O(n): at most this many path_replace() checks an input, */
#define REPLACE_MAX	16
/* and every prefix up to this length, beyond it only those near a '/'. */
#define PREFIX_ALL	64

static void *
xmalloc(size_t n)
{
	void	*p = malloc(n > 0 ? n : 1);

	CHECK(p != NULL);
	return p;
}

/*
 * The reference.
 */

static int
ref_hex(uint8_t c)
{
	static const char	digits[] = "0123456789abcdef";
	const char		*p;

	if (c >= 'A' && c <= 'F')
		c = (uint8_t)(c - 'A' + 'a');
	p = c != 0 ? strchr(digits, c) : NULL;
	return p != NULL ? (int)(p - digits) : -1;
}

static bool
ref_unreserved(uint8_t c)
{
	return c != 0 && (strchr("abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", c) != NULL);
}

/* Step 1. */
static int
ref_check(const uint8_t *in, size_t n)
{
	size_t	i;

	if (n == 0 || in[0] != '/')
		return PATH_E_NOT_ABSOLUTE;
	for (i = 0; i < n; i++) {
		if (in[i] < 0x21 || in[i] == 0x7f)
			return PATH_E_CTL;
		if (in[i] == '#')
			return PATH_E_FRAGMENT;
		if (in[i] == '\\')
			return PATH_E_BACKSLASH;
		if (in[i] == '?')
			return PATH_E_QUERY;
		if (in[i] == '%') {
			if (i + 2 >= n || ref_hex(in[i + 1]) < 0 ||
			    ref_hex(in[i + 2]) < 0)
				return PATH_E_PERCENT;
			i += 2;
		}
	}
	return 0;
}

struct ref {
	char	*buf;		/* "/seg" for each segment kept */
	size_t	 len;
	size_t	*start;		/* where each kept one starts in buf */
	size_t	 nkept;
	char	 seg[4];	/* the first bytes of the current segment */
	size_t	 seglen;
	size_t	 segstart;
	bool	 params;	/* in the ";parameters" of the segment */
};

static void
ref_byte(struct ref *r, char c)
{
	if (r->seglen < sizeof(r->seg))
		r->seg[r->seglen] = c;
	r->seglen++;
	r->buf[r->len++] = c;
}

/* The end of a segment: 0 or PATH_E_ABOVE_ROOT.  *dot: "", "." or "..". */
static int
ref_end(struct ref *r, bool *dot)
{
	size_t	n = r->seglen;

	*dot = n == 0 || (n == 1 && r->seg[0] == '.') ||
	    (n == 2 && r->seg[0] == '.' && r->seg[1] == '.');
	if (!*dot) {
		r->start[r->nkept++] = r->segstart;
	} else {
		r->len = r->segstart;	/* the segment goes */
		if (n == 2) {
			if (r->nkept == 0)
				return PATH_E_ABOVE_ROOT;
			r->len = r->start[--r->nkept];
		}
	}
	r->segstart = r->len;
	r->buf[r->len++] = '/';
	r->seglen = 0;
	r->params = false;
	return 0;
}

static int
reference(const uint8_t *in, size_t n, unsigned flags, char **out,
    size_t *outlen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	struct ref		 r;
	size_t			 i;
	uint8_t			 c;
	bool			 dot = false;
	int			 rv;

	if ((rv = ref_check(in, n)) != 0)
		return rv;
	memset(&r, 0, sizeof(r));
	r.buf = xmalloc(n + 2);
	r.start = xmalloc((n + 1) * sizeof(*r.start));
	r.buf[r.len++] = '/';
	for (i = 1; i <= n && rv == 0; i++) {
		if (i == n) {
			rv = ref_end(&r, &dot);
			break;
		}
		c = in[i];
		if (c == '%') {
			c = (uint8_t)(ref_hex(in[i + 1]) * 16 +
			    ref_hex(in[i + 2]));
			i += 2;
			if (c == '/' && (flags & PATH_MATCH)) {
				rv = ref_end(&r, &dot);
				continue;
			}
			if (r.params)
				continue;
			if (ref_unreserved(c))
				ref_byte(&r, (char)c);
			else {
				ref_byte(&r, '%');
				ref_byte(&r, hex[c >> 4]);
				ref_byte(&r, hex[c & 15]);
			}
		} else if (c == '/')
			rv = ref_end(&r, &dot);
		else if (c == ';' && (flags & PATH_MATCH))
			r.params = true;
		else if (!r.params)
			ref_byte(&r, (char)c);
	}
	/* ref_end() left a '/' after the last segment */
	if (rv == 0 && !dot && r.len > 1)
		r.len--;
	free(r.start);
	if (rv != 0) {
		free(r.buf);
		return rv;
	}
	*out = r.buf;
	*outlen = r.len;
	return 0;
}

/*
 * The checks.
 */

/* Normalise into a heap block of exactly cap bytes; *out is the block. */
static int
norm(const char *in, size_t n, unsigned flags, size_t cap, char **out,
    size_t *outlen)
{
	*out = xmalloc(cap);
	if (cap > 0)
		memset(*out, 'Z', cap);
	return path_normalize(in, n, flags, *out, cap, outlen);
}

static bool
boundary(const char *p, size_t len, size_t k)
{
	return p[k - 1] == '/' || k == len || p[k] == '/';
}

static void
check_replace(const char *p, size_t len, size_t plen, const char *query,
    size_t qlen)
{
	static const char *const repls[] = { "/", "/v2", "/v2/", "/a/b" };
	const char	*repl = repls[(plen + len) % 4];
	size_t		 rlen = strlen(repl), r2, tlen, want, got = 0;
	char		*out;

	r2 = repl[rlen - 1] == '/' ? rlen - 1 : rlen;
	tlen = len - (p[plen - 1] == '/' ? plen - 1 : plen);
	want = r2 + tlen > 0 ? r2 + tlen : 1;
	want += query != NULL ? 1 + qlen : 0;
	out = xmalloc(want);
	CHECK(path_replace(p, len, plen, repl, rlen, query, qlen, out, want,
	    &got) == 0);
	CHECK(got == want);
	CHECK(out[0] == '/' && memcmp(out, repl, r2) == 0);
	CHECK(memcmp(out + r2, p + len - tlen, tlen) == 0);
	if (query != NULL)
		CHECK(out[want - qlen - 1] == '?' &&
		    memcmp(out + want - qlen, query, qlen) == 0);
	/* a normal path and repl give a normal path */
	if (path_is_normal(repl, rlen, PATH_MATCH))
		CHECK(path_is_normal(out, want - (query != NULL ? 1 + qlen : 0),
		    PATH_MATCH));
	free(out);
	out = xmalloc(want - 1);
	memset(out, 'Z', want - 1 > 0 ? want - 1 : 1);
	CHECK(path_replace(p, len, plen, repl, rlen, query, qlen, out,
	    want - 1, &got) == PATH_E_SPACE);
	CHECK(out[0] == 'Z');
	free(out);
}

static void
check_prefixes(const char *p, size_t len, const char *query, size_t qlen)
{
	static const char *const fixed[] = {
		"/", "/api", "/api/", "/static/", "/a/b",
	};
	size_t	k, i, pl, replaced = 0;
	bool	m;

	for (k = 1; k <= len; k++) {
		/* the short ones, and those next to a '/' */
		if (k > PREFIX_ALL && p[k - 1] != '/' && k < len &&
		    p[k] != '/' && (k + 1 == len || p[k + 1] != '/'))
			continue;
		m = path_prefix_match(p, len, p, k);
		CHECK(m == boundary(p, len, k));
		if (m && replaced++ < REPLACE_MAX)
			check_replace(p, len, k, query, qlen);
	}
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		pl = strlen(fixed[i]);
		m = len >= pl && memcmp(p, fixed[i], pl) == 0 &&
		    boundary(p, len, pl);
		CHECK(path_prefix_match(p, len, fixed[i], pl) == m);
	}
	CHECK(!path_prefix_match(p, len, p, 0));
}

/* Does p[0..len) hold s[0..n) at a segment boundary, ending at one? */
static bool
has_segment(const char *p, size_t len, const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(p + i, s, n) == 0 && (i == 0 || p[i - 1] == '/') &&
		    (i + n == len || p[i + n] == '/'))
			return true;
	return false;
}

/* What a result never holds, checked by hand. */
static void
check_output(const char *p, size_t len, unsigned flags)
{
	size_t	i;
	uint8_t	c;

	CHECK(len >= 1 && p[0] == '/');
	for (i = 0; i < len; i++) {
		c = (uint8_t)p[i];
		CHECK(c > 0x20 && c != 0x7f && c != '#' && c != '\\' &&
		    c != '?');
		CHECK(c != '/' || i + 1 == len || p[i + 1] != '/');
		CHECK(c != ';' || !(flags & PATH_MATCH));
		if (c == '%') {
			CHECK(i + 2 < len && strchr("0123456789ABCDEF",
			    p[i + 1]) != NULL && strchr("0123456789ABCDEF",
			    p[i + 2]) != NULL && p[i + 1] != 0 &&
			    p[i + 2] != 0);
			CHECK(!ref_unreserved((uint8_t)(ref_hex(p[i + 1]) *
			    16 + ref_hex(p[i + 2]))));
			CHECK(!(flags & PATH_MATCH) || p[i + 1] != '2' ||
			    p[i + 2] != 'F');
			i += 2;
		}
	}
	CHECK(!has_segment(p, len, ".", 1) && !has_segment(p, len, "..", 2));
}

/* path_normalize() with flags on in[0..n); its error, or 0. */
static int
check_path(const char *in, size_t n, unsigned flags, const char *query,
    size_t qlen)
{
	char	*a, *b, *ref = NULL;
	size_t	 alen = 0, blen = 0, rlen = 0;
	int	 rv, rrv;

	rv = norm(in, n, flags, n, &a, &alen);
	rrv = reference((const uint8_t *)in, n, flags, &ref, &rlen);
	CHECK(rv == rrv);
	CHECK(rv <= 0 && rv >= PATH_E_ABOVE_ROOT);
	CHECK(path_is_normal(in, n, flags) == (rv == 0 && alen == n &&
	    memcmp(a, in, n) == 0));
	if (rv != 0) {
		CHECK(n == 0 || a[0] == 'Z');
		free(a);
		return rv;
	}
	CHECK(alen == rlen && memcmp(a, ref, alen) == 0);
	free(ref);
	CHECK(alen <= n);
	check_output(a, alen, flags);
	CHECK(path_is_normal(a, alen, flags));

	/* idempotent, in exactly its length */
	CHECK(norm(a, alen, flags, alen, &b, &blen) == 0);
	CHECK(blen == alen && memcmp(a, b, alen) == 0);
	free(b);
	/* the result fits in its length, and not in one byte less */
	CHECK(norm(in, n, flags, alen, &b, &blen) == 0);
	CHECK(blen == alen && memcmp(a, b, alen) == 0);
	free(b);
	CHECK(norm(in, n, flags, alen - 1, &b, &blen) == PATH_E_SPACE);
	CHECK(alen == 1 || b[0] == 'Z');
	free(b);

	if (flags & PATH_MATCH)
		check_prefixes(a, alen, query, qlen);
	free(a);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*in = (const char *)data;
	size_t		 q;
	int		 rp, rm;

	/* the whole input as a path */
	rp = check_path(in, size, 0, NULL, 0);
	rm = check_path(in, size, PATH_MATCH, NULL, 0);
	/* the flags change nothing in step 1 */
	if (rp != PATH_E_ABOVE_ROOT && rm != PATH_E_ABOVE_ROOT)
		CHECK(rp == rm);

	/* as a target: path '?' query */
	q = path_query_at(in, size);
	CHECK(q <= size && memchr(in, '?', q) == NULL);
	CHECK(q == size || in[q] == '?');
	if (q < size) {
		(void)check_path(in, q, 0, in + q + 1, size - q - 1);
		(void)check_path(in, q, PATH_MATCH, in + q + 1,
		    size - q - 1);
	}

	(void)path_strerror((int)(size % 16) - 12);
	return 0;
}
