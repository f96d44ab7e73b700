/*
 * log_test.c - value escaping and whole log lines.
 *
 * The escapes are checked three ways: byte for byte against a reference
 * encoder written from log.h, through strict decoders that accept only
 * the grammar log.h promises (and give back the bytes that went in), and
 * by parsing whole lines as a log reader would, to show that no value can
 * forge a field or a line.  Lines are captured by pointing fd 2 at a
 * memfd for the duration of a call.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* A string literal with its length, NULs included. */
#define S(lit)		(lit), (sizeof(lit) - 1)

#define TS_LEN		24	/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
#define CAP_MAX		(64 * 1024)

enum mode { TEXT, JSON };

/*
 * Reference encoders, from the contract in log.h.
 */

static bool
ref_text_plain(const unsigned char *s, size_t len)
{
	size_t	i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' ||
		    s[i] == '\\')
			return false;
	return true;
}

/* The escape of one byte inside quotes; returns its length. */
static size_t
ref_escape(enum mode mode, unsigned char c, char *out)
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"':
	case '\\':
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		memcpy(out, "\\t", 2);
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	if (mode == TEXT) {
		out[0] = '\\';
		out[1] = 'x';
		out[2] = hex[c >> 4];
		out[3] = hex[c & 15];
		return 4;
	}
	memcpy(out, "\\u00", 4);
	out[4] = hex[c >> 4];
	out[5] = hex[c & 15];
	return 6;
}

/* The whole value, uncut, into out (big enough: 6 * len + 2). */
static size_t
ref_value(enum mode mode, const unsigned char *s, size_t len, char *out)
{
	size_t	i, n = 0;

	if (mode == TEXT && ref_text_plain(s, len)) {
		memcpy(out, s, len);
		return len;
	}
	out[n++] = '"';
	for (i = 0; i < len; i++)
		n += ref_escape(mode, s[i], out + n);
	out[n++] = '"';
	return n;
}

/*
 * Strict decoders: only the grammar of log.h, canonical escapes only.
 * Return the decoded length, or -1.
 */

/* A byte that must be written with \xHH / \u00HH, never raw or short. */
static bool
needs_hex(unsigned char c)
{
	return (c < 0x20 || c >= 0x7f) && c != '\n' && c != '\r' && c != '\t';
}

static long
decode_value(enum mode mode, const char *p, size_t n, unsigned char *out,
    bool *quoted)
{
	size_t	i, o = 0;
	int	hi, lo;

	*quoted = n >= 1 && p[0] == '"';
	if (!*quoted) {
		if (mode == JSON || n == 0 ||
		    !ref_text_plain((const unsigned char *)p, n))
			return -1;
		memcpy(out, p, n);
		return (long)n;
	}
	if (n < 2 || p[n - 1] != '"')
		return -1;
	for (i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c >= 0x7f || c == '"')
			return -1;
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (++i >= n - 1)
			return -1;	/* a lone backslash before the quote */
		switch (p[i]) {
		case '"':
		case '\\':
			out[o++] = (unsigned char)p[i];
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'x':
			if (mode != TEXT || i + 2 >= n - 1)
				return -1;
			hi = util_hex_value((unsigned char)p[i + 1]);
			lo = util_hex_value((unsigned char)p[i + 2]);
			if (hi < 0 || lo < 0 || !needs_hex((unsigned char)
			    (hi * 16 + lo)))
				return -1;
			out[o++] = (unsigned char)(hi * 16 + lo);
			i += 2;
			break;
		case 'u':
			if (mode != JSON || i + 4 >= n - 1 ||
			    p[i + 1] != '0' || p[i + 2] != '0')
				return -1;
			hi = util_hex_value((unsigned char)p[i + 3]);
			lo = util_hex_value((unsigned char)p[i + 4]);
			if (hi < 0 || lo < 0 || !needs_hex((unsigned char)
			    (hi * 16 + lo)))
				return -1;
			out[o++] = (unsigned char)(hi * 16 + lo);
			i += 4;
			break;
		default:
			return -1;
		}
	}
	return (long)o;
}

/*
 * A minimal JSON validator (RFC 8259 grammar; raw bytes >= 0x7f are
 * refused, since log.h escapes them all), which also hands back the keys
 * and raw values of the top-level object.
 */

struct jfield {
	char		 key[64];
	const char	*val;
	size_t		 vlen;
};

struct jparser {
	const char	*p;
	size_t		 n;
	size_t		 i;
	int		 depth;
};

static void
j_ws(struct jparser *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' ||
	    j->p[j->i] == '\n' || j->p[j->i] == '\r'))
		j->i++;
}

static bool
j_lit(struct jparser *j, const char *lit)
{
	size_t	l = strlen(lit);

	if (j->n - j->i < l || memcmp(j->p + j->i, lit, l) != 0)
		return false;
	j->i += l;
	return true;
}

/* A string; its decoded ASCII form (if short enough) into key. */
static bool
j_string(struct jparser *j, char *key, size_t keysz)
{
	size_t	k = 0;
	int	h;

	if (j->i >= j->n || j->p[j->i] != '"')
		return false;
	j->i++;
	while (j->i < j->n) {
		unsigned char c = (unsigned char)j->p[j->i++];

		if (c == '"') {
			if (key != NULL)
				key[k < keysz ? k : keysz - 1] = '\0';
			return true;
		}
		if (c < 0x20 || c >= 0x7f)
			return false;
		if (c == '\\') {
			if (j->i >= j->n)
				return false;
			c = (unsigned char)j->p[j->i++];
			if (c == 'u') {
				for (h = 0; h < 4; h++)
					if (j->i >= j->n || util_hex_value(
					    (unsigned char)j->p[j->i++]) < 0)
						return false;
				c = '?';
			} else if (strchr("\"\\/bfnrt", c) == NULL || c == 0)
				return false;
		}
		if (key != NULL && k < keysz)
			key[k++] = (char)c;
	}
	return false;
}

static bool
j_number(struct jparser *j)
{
	size_t	start;

	if (j->i < j->n && j->p[j->i] == '-')
		j->i++;
	if (j->i >= j->n)
		return false;
	if (j->p[j->i] == '0')
		j->i++;
	else if (j->p[j->i] >= '1' && j->p[j->i] <= '9')
		while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
			j->i++;
	else
		return false;
	if (j->i < j->n && j->p[j->i] == '.') {
		start = ++j->i;
		while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
			j->i++;
		if (j->i == start)
			return false;
	}
	if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
			j->i++;
		start = j->i;
		while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
			j->i++;
		if (j->i == start)
			return false;
	}
	return true;
}

static bool j_value(struct jparser *, struct jfield *, size_t, size_t *);

static bool
j_members(struct jparser *j, char open, struct jfield *f, size_t max,
    size_t *nf)
{
	char	close = open == '{' ? '}' : ']';
	size_t	n = 0, vstart;

	if (++j->depth > 32)
		return false;
	j->i++;
	j_ws(j);
	if (j->i < j->n && j->p[j->i] == close) {
		j->i++;
		j->depth--;
		return true;
	}
	for (;;) {
		char key[64];

		j_ws(j);
		if (open == '{') {
			if (!j_string(j, key, sizeof(key)))
				return false;
			j_ws(j);
			if (!j_lit(j, ":"))
				return false;
			j_ws(j);
		}
		vstart = j->i;
		if (!j_value(j, NULL, 0, NULL))
			return false;
		if (open == '{' && f != NULL) {
			if (n >= max)
				return false;
			memcpy(f[n].key, key, sizeof(key));
			f[n].val = j->p + vstart;
			f[n].vlen = j->i - vstart;
			n++;
		}
		j_ws(j);
		if (j->i < j->n && j->p[j->i] == ',') {
			j->i++;
			continue;
		}
		if (j->i < j->n && j->p[j->i] == close) {
			j->i++;
			break;
		}
		return false;
	}
	if (nf != NULL)
		*nf = n;
	j->depth--;
	return true;
}

static bool
j_value(struct jparser *j, struct jfield *f, size_t max, size_t *nf)
{
	if (j->i >= j->n)
		return false;
	switch (j->p[j->i]) {
	case '{':
	case '[':
		return j_members(j, j->p[j->i], f, max, nf);
	case '"':
		return j_string(j, NULL, 0);
	case 't':
		return j_lit(j, "true");
	case 'f':
		return j_lit(j, "false");
	case 'n':
		return j_lit(j, "null");
	default:
		return j_number(j);
	}
}

/* A whole JSON object and nothing else; its fields, or -1. */
static long
json_object(const char *p, size_t n, struct jfield *f, size_t max)
{
	struct jparser	j = { p, n, 0, 0 };
	size_t		nf = 0, a, b;

	j_ws(&j);
	if (j.i >= n || p[j.i] != '{' || !j_value(&j, f, max, &nf))
		return -1;
	j_ws(&j);
	if (j.i != n)
		return -1;
	for (a = 0; a < nf; a++)
		for (b = 0; b < a; b++)
			if (strcmp(f[a].key, f[b].key) == 0)
				return -1;	/* a forged duplicate key */
	return (long)nf;
}

static bool
json_valid(const char *p, size_t n)
{
	struct jfield f[64];

	return json_object(p, n, f, nitems(f)) >= 0;
}

/*
 * Text lines: "TIMESTAMP TAG key=value ...", values as log_escape_text
 * writes them.  Returns the number of fields, or -1.
 */
struct tfield {
	char		 key[64];
	const char	*val;
	size_t		 vlen;
};

static long
text_fields(const char *p, size_t n, struct tfield *f, size_t max)
{
	size_t	i = TS_LEN + 1, k, nf = 0;

	if (n < TS_LEN + 2 || p[TS_LEN] != ' ')
		return -1;
	while (i < n && p[i] != ' ')		/* the level or event tag */
		i++;
	while (i < n) {
		if (p[i++] != ' ' || nf >= max)
			return -1;
		for (k = 0; i < n && p[i] != '=' && k < sizeof(f->key) - 1;
		    k++, i++) {
			if (!((p[i] >= 'a' && p[i] <= 'z') || p[i] == '_'))
				return -1;
			f[nf].key[k] = p[i];
		}
		f[nf].key[k] = '\0';
		if (k == 0 || i >= n || p[i++] != '=')
			return -1;
		f[nf].val = p + i;
		if (i < n && p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
			if (i >= n)
				return -1;
			i++;
		} else
			while (i < n && p[i] != ' ')
				i++;
		f[nf].vlen = (size_t)(p + i - f[nf].val);
		nf++;
	}
	return (long)nf;
}

/*
 * Running the escapes.
 */

struct esc_result {
	char	*out;		/* NUL-terminated copy */
	size_t	 len;
	bool	 cut;
};

/* Escape into an exact-size heap buffer, so ASan sees any overflow. */
static struct esc_result
escape(enum mode mode, const void *src, size_t len, size_t dstsz)
{
	struct esc_result r;
	char	*in = malloc(len > 0 ? len : 1), *dst = malloc(dstsz);

	assert_non_null(in);
	assert_non_null(dst);
	if (len > 0)
		memcpy(in, src, len);
	r.cut = !mode;	/* anything but what the callee sets */
	r.len = mode == TEXT ? log_escape_text(in, len, dst, dstsz, &r.cut) :
	    log_escape_json(in, len, dst, dstsz, &r.cut);
	assert_true(r.len <= dstsz);
	r.out = malloc(r.len + 1);
	assert_non_null(r.out);
	memcpy(r.out, dst, r.len);
	r.out[r.len] = '\0';
	free(in);
	free(dst);
	return r;
}

/*
 * The properties every result must have, whatever the input and size: a
 * well-formed value of the promised grammar, decoding to a prefix of the
 * input, cut exactly when the prefix is shorter, and cut no earlier than
 * it had to be.
 */
static void
check_escape(enum mode mode, const unsigned char *src, size_t len,
    size_t dstsz)
{
	struct esc_result r = escape(mode, src, len, dstsz);
	unsigned char	*dec = malloc(r.len + 1);
	char		 seq[8];
	bool		 quoted;
	long		 n;
	size_t		 i;

	assert_non_null(dec);
	for (i = 0; i < r.len; i++) {
		unsigned char c = (unsigned char)r.out[i];

		if (c < 0x20 || c >= 0x7f)
			fail_msg("raw byte 0x%02x in output", c);
	}
	n = decode_value(mode, r.out, r.len, dec, &quoted);
	if (n < 0)
		fail_msg("malformed (dstsz %zu): %s", dstsz, r.out);
	assert_true((size_t)n <= len);
	assert_memory_equal(dec, src, (size_t)n);
	assert_int_equal(r.cut, (size_t)n < len);
	if (mode == TEXT)
		assert_int_equal(quoted, !ref_text_plain(src, len));
	if (r.cut && quoted)
		assert_true(r.len + ref_escape(mode, src[n], seq) > dstsz);
	if (r.cut && !quoted)
		assert_int_equal(r.len, dstsz);
	free(dec);
	free(r.out);
}

static void
check_exact(enum mode mode, const void *src, size_t len, size_t dstsz,
    const char *want, bool want_cut)
{
	struct esc_result r = escape(mode, src, len, dstsz);

	if (strcmp(r.out, want) != 0 || r.cut != want_cut)
		fail_msg("%s dstsz %zu: got [%s] cut %d, want [%s] cut %d",
		    mode == TEXT ? "text" : "json", dstsz, r.out, r.cut,
		    want, want_cut);
	free(r.out);
	check_escape(mode, src, len, dstsz);
}

static void
test_text_plain_tokens(void **state)
{
	static const char *const tokens[] = {
		"GET", "x", "/index.html?a=b&c=d%20e", "example.com",
		"1.2.3.4", "[::1]:8080", "HTTP/1.1", "a=b", "~!#$%&'()*+,-./",
		"curl/8.0", "{}", "<script>",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(tokens); i++)
		check_exact(TEXT, tokens[i], strlen(tokens[i]), 64, tokens[i],
		    false);
}

/* Every byte value, alone and between two letters, in both modes. */
static void
test_every_byte(void **state)
{
	unsigned char	in[3];
	char		want[32];
	size_t		n;
	unsigned	c;
	enum mode	mode;

	(void)state;
	for (mode = TEXT; mode <= JSON; mode++) {
		for (c = 0; c < 256; c++) {
			in[0] = 'a';
			in[1] = (unsigned char)c;
			in[2] = 'b';
			n = ref_value(mode, in + 1, 1, want);
			want[n] = '\0';
			check_exact(mode, in + 1, 1, 64, want, false);
			n = ref_value(mode, in, 3, want);
			want[n] = '\0';
			check_exact(mode, in, 3, 64, want, false);
		}
	}
}

static void
test_named_escapes(void **state)
{
	(void)state;
	check_exact(TEXT, S("a b"), 64, "\"a b\"", false);
	check_exact(TEXT, S("say \"hi\""), 64, "\"say \\\"hi\\\"\"", false);
	check_exact(TEXT, S("C:\\dir"), 64, "\"C:\\\\dir\"", false);
	check_exact(TEXT, S("a\nb\rc\td"), 64, "\"a\\nb\\rc\\td\"", false);
	check_exact(TEXT, S("\0"), 64, "\"\\x00\"", false);
	check_exact(TEXT, S("\x7f"), 64, "\"\\x7f\"", false);
	check_exact(TEXT, S("\x80\xff"), 64, "\"\\x80\\xff\"", false);
	check_exact(TEXT, S("\x1b[31m"), 64, "\"\\x1b[31m\"", false);
	check_exact(TEXT, S("caf\xc3\xa9"), 64, "\"caf\\xc3\\xa9\"", false);
	check_exact(JSON, S("plain"), 64, "\"plain\"", false);
	check_exact(JSON, S("a b"), 64, "\"a b\"", false);
	check_exact(JSON, S("say \"hi\""), 64, "\"say \\\"hi\\\"\"", false);
	check_exact(JSON, S("C:\\dir"), 64, "\"C:\\\\dir\"", false);
	check_exact(JSON, S("a\nb\rc\td"), 64, "\"a\\nb\\rc\\td\"", false);
	check_exact(JSON, S("\0"), 64, "\"\\u0000\"", false);
	check_exact(JSON, S("\x7f"), 64, "\"\\u007f\"", false);
	check_exact(JSON, S("\x80\xff"), 64, "\"\\u0080\\u00ff\"", false);
	check_exact(JSON, S("\x08\x0c"), 64, "\"\\u0008\\u000c\"", false);
}

static void
test_empty_value(void **state)
{
	(void)state;
	check_exact(TEXT, "", 0, 64, "\"\"", false);
	check_exact(JSON, "", 0, 64, "\"\"", false);
	check_exact(TEXT, "", 0, 3, "\"\"", false);
	check_exact(JSON, "", 0, 3, "\"\"", false);
	check_exact(TEXT, NULL, 0, 3, "\"\"", false);
}

static void
test_dstsz_boundaries(void **state)
{
	(void)state;
	/* Plain text: exact fit, one short, the minimum. */
	check_exact(TEXT, S("abc"), 3, "abc", false);
	check_exact(TEXT, S("abcd"), 4, "abcd", false);
	check_exact(TEXT, S("abcd"), 3, "abc", true);
	check_exact(TEXT, S("abcde"), 4, "abcd", true);
	/* Quoted: "a b" needs 5. */
	check_exact(TEXT, S("a b"), 5, "\"a b\"", false);
	check_exact(TEXT, S("a b"), 4, "\"a \"", true);
	check_exact(TEXT, S("a b"), 3, "\"a\"", true);
	check_exact(JSON, S("ab"), 4, "\"ab\"", false);
	check_exact(JSON, S("ab"), 3, "\"a\"", true);
	/* A two-byte escape: fits in 4, never half of it in 3. */
	check_exact(TEXT, S("\n"), 4, "\"\\n\"", false);
	check_exact(TEXT, S("\n"), 3, "\"\"", true);
	check_exact(JSON, S("\""), 4, "\"\\\"\"", false);
	check_exact(JSON, S("\""), 3, "\"\"", true);
	check_exact(TEXT, S("a\\"), 5, "\"a\\\\\"", false);
	check_exact(TEXT, S("a\\"), 4, "\"a\"", true);
	check_exact(TEXT, S("a\\"), 3, "\"a\"", true);
	/* Four- and six-byte escapes. */
	check_exact(TEXT, S("\x01"), 6, "\"\\x01\"", false);
	check_exact(TEXT, S("\x01"), 5, "\"\"", true);
	check_exact(TEXT, S("\x01"), 3, "\"\"", true);
	check_exact(JSON, S("\x01"), 8, "\"\\u0001\"", false);
	check_exact(JSON, S("\x01"), 7, "\"\"", true);
	check_exact(JSON, S("\x01"), 4, "\"\"", true);
	check_exact(JSON, S("a\x01"), 8, "\"a\"", true);
	check_exact(JSON, S("a\x01"), 9, "\"a\\u0001\"", false);
	/* A cut after escapes keeps the ones that fit whole. */
	check_exact(TEXT, S("\"\"\"\""), 8, "\"\\\"\\\"\\\"\"", true);
	check_exact(TEXT, S("\"\"\"\""), 10, "\"\\\"\\\"\\\"\\\"\"", false);
}

/* Deterministic pseudo-random inputs over many sizes. */
static uint64_t
rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
test_escape_properties(void **state)
{
	static const unsigned char alphabet[] = "aZ9 \"\\\n\r\t=\x00\x01\x1f"
	    "\x7f\x80\xc3\xff.-";
	unsigned char	in[80];
	uint64_t	seed = 0x9e3779b97f4a7c15ULL;
	size_t		iter, len, i, dstsz;
	enum mode	mode;

	(void)state;
	for (iter = 0; iter < 400; iter++) {
		len = rng(&seed) % sizeof(in);
		for (i = 0; i < len; i++) {
			uint64_t r = rng(&seed);

			/* Mostly plain, sometimes every kind of hostile. */
			in[i] = (r & 3) ? (unsigned char)('a' + r % 26) :
			    alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
		}
		for (mode = TEXT; mode <= JSON; mode++)
			for (dstsz = 3; dstsz <= 6 * len + 3; dstsz +=
			    (dstsz < 24 ? 1 : 7))
				check_escape(mode, in, len, dstsz);
	}
}

/* Walls of multi-byte escapes, cut at every possible size. */
static void
test_cut_never_splits_escape(void **state)
{
	static const char fills[] = { '"', '\\', '\n', '\x01', '\xff' };
	unsigned char	in[16];
	size_t		f, dstsz;
	enum mode	mode;

	(void)state;
	for (f = 0; f < sizeof(fills); f++) {
		memset(in, fills[f], sizeof(in));
		in[5] = 'x';
		for (mode = TEXT; mode <= JSON; mode++)
			for (dstsz = 3; dstsz <= 6 * sizeof(in) + 4; dstsz++)
				check_escape(mode, in, sizeof(in), dstsz);
	}
}

/* A value that carries " client_ip=1.2.3.4" stays one field. */
struct blob {
	const char	*s;
	size_t		 len;
};

/* A value that carries " client_ip=1.2.3.4" stays one field. */
static void
test_no_forged_text_field(void **state)
{
	static const struct blob evil[] = {
		{ S("x client_ip=1.2.3.4") },
		{ S(" client_ip=1.2.3.4") },
		{ S("x\" client_ip=1.2.3.4") },
		{ S("x\\\" client_ip=1.2.3.4") },
		{ S("x\\") },
		{ S("x\n2026-01-01T00:00:00.000Z INFO client_ip=1.2.3.4") },
		{ S("x\r client_ip=1.2.3.4") },
		{ S("x\t client_ip=1.2.3.4") },
		{ S("x\0 client_ip=1.2.3.4") },
		{ S("\"") },
		{ S("\" client_ip=\"1.2.3.4") },
	};
	static const size_t sizes[] = { 3, 4, 5, 9, 12, 20, 256 };
	char		 line[512];
	struct tfield	 f[8];
	unsigned char	 dec[256];
	size_t		 i, s;
	bool		 quoted;
	long		 nf, n;

	(void)state;
	for (i = 0; i < nitems(evil); i++) {
		for (s = 0; s < nitems(sizes); s++) {
			struct esc_result r = escape(TEXT, evil[i].s,
			    evil[i].len, sizes[s]);

			snprintf(line, sizeof(line), "2026-11-22T10:00:00.123Z"
			    " ACCESS path=%s status=200", r.out);
			nf = text_fields(line, strlen(line), f, nitems(f));
			if (nf != 2)
				fail_msg("forged: %s", line);
			assert_string_equal(f[0].key, "path");
			assert_string_equal(f[1].key, "status");
			n = decode_value(TEXT, f[0].val, f[0].vlen, dec,
			    &quoted);
			assert_true(n >= 0);
			assert_memory_equal(dec, evil[i].s, (size_t)n);
			free(r.out);
		}
	}
}

static void
test_no_forged_json_key(void **state)
{
	static const struct blob evil[] = {
		{ S("x\",\"client_ip\":\"1.2.3.4") },
		{ S("x\\\",\"client_ip\":\"1.2.3.4") },
		{ S("x\\") },
		{ S("\"}\n{\"client_ip\":\"1.2.3.4\"}") },
		{ S("x\0\",\"y\":1") },
	};
	static const size_t sizes[] = { 3, 4, 5, 9, 16, 27, 256 };
	char		 line[512];
	struct jfield	 f[8];
	size_t		 i, s;
	long		 nf;

	(void)state;
	for (i = 0; i < nitems(evil); i++) {
		for (s = 0; s < nitems(sizes); s++) {
			struct esc_result r = escape(JSON, evil[i].s,
			    evil[i].len, sizes[s]);

			snprintf(line, sizeof(line), "{\"path\":%s,"
			    "\"status\":200}", r.out);
			nf = json_object(line, strlen(line), f, nitems(f));
			if (nf != 2)
				fail_msg("forged: %s", line);
			assert_string_equal(f[0].key, "path");
			assert_string_equal(f[1].key, "status");
			free(r.out);
		}
	}
}

/*
 * Whole lines on fd 2.
 */

static int	cap_fd = -1;
static int	cap_saved = -1;

static void
cap_begin(void)
{
	cap_fd = memfd_create("log_test", MFD_CLOEXEC);
	assert_true(cap_fd >= 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_int_equal(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Put fd 2 back, then return what was written (NUL-terminated). */
static size_t
cap_end(char *buf, size_t sz)
{
	ssize_t	n;

	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	assert_int_equal(lseek(cap_fd, 0, SEEK_SET), 0);
	n = read(cap_fd, buf, sz - 1);
	close(cap_fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

/* The timestamp: ISO-8601 UTC, with milliseconds, close to now. */
static void
check_timestamp(const char *p, time_t before, time_t after)
{
	struct tm	tm;
	time_t		t;
	int		i;

	for (i = 0; i < TS_LEN; i++) {
		switch (i) {
		case 4: case 7:
			assert_int_equal(p[i], '-');
			break;
		case 10:
			assert_int_equal(p[i], 'T');
			break;
		case 13: case 16:
			assert_int_equal(p[i], ':');
			break;
		case 19:
			assert_int_equal(p[i], '.');
			break;
		case 23:
			assert_int_equal(p[i], 'Z');
			break;
		default:
			if (p[i] < '0' || p[i] > '9')
				fail_msg("timestamp %.24s", p);
		}
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 +
	    (p[2] - '0') * 10 + (p[3] - '0') - 1900;
	tm.tm_mon = (p[5] - '0') * 10 + (p[6] - '0') - 1;
	tm.tm_mday = (p[8] - '0') * 10 + (p[9] - '0');
	tm.tm_hour = (p[11] - '0') * 10 + (p[12] - '0');
	tm.tm_min = (p[14] - '0') * 10 + (p[15] - '0');
	tm.tm_sec = (p[17] - '0') * 10 + (p[18] - '0');
	t = timegm(&tm);
	if (t < before - 1 || t > after + 1)
		fail_msg("timestamp %.24s is not now (UTC)", p);
}

/* Exactly one line, newline-terminated, within LOG_LINE_MAX. */
static void
check_one_line(const char *buf, size_t n)
{
	assert_true(n >= 1);
	assert_true(n <= LOG_LINE_MAX);
	assert_int_equal(buf[n - 1], '\n');
	assert_null(memchr(buf, '\n', n - 1));
	assert_int_equal(strlen(buf), n);	/* no NUL inside */
}

static size_t
count_nl(const char *p, size_t n)
{
	size_t	i, k = 0;

	for (i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

static char	pidbuf[24];

static const char *
mypid(void)
{
	snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)getpid());
	return pidbuf;
}

/* The test's own stderr, for restore_stderr(). */
static int	test_stderr = -1;

static int
setup_logging(void **state)
{
	(void)state;
	test_stderr = dup(STDERR_FILENO);
	if (test_stderr == -1)
		return -1;
	/* Not UTC, and not a whole hour off: local time would show. */
	setenv("TZ", "XYZ-05:30", 1);
	tzset();
	log_init("test", -1);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	return 0;
}

static void
test_text_message_line(void **state)
{
	char	buf[CAP_MAX], want[256];
	time_t	before, after;
	size_t	n;

	(void)state;
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	before = time(NULL);
	cap_begin();
	log_info("hello %d", 42);
	n = cap_end(buf, sizeof(buf));
	after = time(NULL);
	check_one_line(buf, n);
	check_timestamp(buf, before, after);
	snprintf(want, sizeof(want), " INFO proc=test pid=%s msg=\"hello "
	    "42\"\n", mypid());
	assert_string_equal(buf + TS_LEN, want);
}

static void
test_json_message_line(void **state)
{
	char		buf[CAP_MAX], want[256];
	struct jfield	f[16];
	time_t		before, after;
	size_t		n;

	(void)state;
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_JSON);
	before = time(NULL);
	cap_begin();
	log_warnx("disk %s", "full");
	n = cap_end(buf, sizeof(buf));
	after = time(NULL);
	check_one_line(buf, n);
	assert_int_equal(json_object(buf, n - 1, f, nitems(f)), 5);
	assert_string_equal(f[0].key, "time");
	assert_true(f[0].vlen == TS_LEN + 2);
	check_timestamp(f[0].val + 1, before, after);
	snprintf(want, sizeof(want), "\",\"level\":\"warn\",\"proc\":\"test\","
	    "\"pid\":%s,\"msg\":\"disk full\"}\n", mypid());
	assert_string_equal(buf + 9 + TS_LEN, want);
	assert_memory_equal(buf, "{\"time\":\"", 9);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
}

static void
test_levels(void **state)
{
	char	buf[CAP_MAX];
	size_t	n;

	(void)state;
	log_configure(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	assert_true(log_enabled(LOG_LEVEL_ERROR));
	assert_true(log_enabled(LOG_LEVEL_WARN));
	assert_false(log_enabled(LOG_LEVEL_INFO));
	assert_false(log_enabled(LOG_LEVEL_DEBUG));
	cap_begin();
	log_debug("d");
	log_info("i");
	n = cap_end(buf, sizeof(buf));
	assert_int_equal(n, 0);
	cap_begin();
	log_warnx("w");
	log_errorx("e");
	n = cap_end(buf, sizeof(buf));
	assert_non_null(strstr(buf, " WARN proc=test"));
	assert_non_null(strstr(buf, " ERROR proc=test"));
	assert_non_null(strstr(buf, "msg=w\n"));
	assert_non_null(strstr(buf, "msg=e\n"));

	log_configure(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
	assert_false(log_enabled(LOG_LEVEL_WARN));
	cap_begin();
	log_warnx("w");
	log_warn("w");
	n = cap_end(buf, sizeof(buf));
	assert_int_equal(n, 0);

	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	assert_true(log_enabled(LOG_LEVEL_DEBUG));
	cap_begin();
	log_debug("dbg");
	n = cap_end(buf, sizeof(buf));
	check_one_line(buf, n);
	assert_non_null(strstr(buf, " DEBUG proc=test"));
}

static void
test_worker_field(void **state)
{
	char	buf[CAP_MAX], want[128];
	size_t	n;

	(void)state;
	log_init("worker", 3);
	cap_begin();
	log_info("x");
	n = cap_end(buf, sizeof(buf));
	check_one_line(buf, n);
	snprintf(want, sizeof(want), " INFO proc=worker worker=3 pid=%s "
	    "msg=x\n", mypid());
	assert_string_equal(buf + TS_LEN, want);
	/* Worker 0 is a worker too. */
	log_init("worker", 0);
	cap_begin();
	log_info("x");
	n = cap_end(buf, sizeof(buf));
	log_init("test", -1);
	check_one_line(buf, n);
	snprintf(want, sizeof(want), " INFO proc=worker worker=0 pid=%s "
	    "msg=x\n", mypid());
	assert_string_equal(buf + TS_LEN, want);
}

static void
test_warn_appends_strerror(void **state)
{
	char	buf[CAP_MAX];
	size_t	n;

	(void)state;
	cap_begin();
	errno = ENOENT;
	log_warn("open %s", "/x");
	assert_int_equal(errno, ENOENT);
	errno = ENOENT;
	log_warnx("plain");
	n = cap_end(buf, sizeof(buf));
	assert_non_null(strstr(buf, "msg=\"open /x: No such file or "
	    "directory\"\n"));
	assert_non_null(strstr(buf, "msg=plain\n"));
	assert_null(strstr(buf, "plain:"));
	assert_true(n > 0);
}

/* A failure that repeats is said once per window, then with a count. */
static void
test_rate_due(void **state)
{
	struct log_rate r = { 0, 0 };
	uint64_t quiet = 99;
	int i;

	(void)state;
	assert_true(log_rate_due(&r, 5000, &quiet));
	assert_int_equal(quiet, 0);
	for (i = 0; i < 41; i++)
		assert_false(log_rate_due(&r, 5000 + (uint64_t)i * 100,
		    &quiet));
	assert_false(log_rate_due(&r, 5000 + LOG_RATE_WINDOW_MS - 1, &quiet));
	assert_true(log_rate_due(&r, 5000 + LOG_RATE_WINDOW_MS, &quiet));
	assert_int_equal(quiet, 42);
	/* A quiet spell: the next one is said at once, with nothing owed. */
	assert_true(log_rate_due(&r, 5000 + 10 * LOG_RATE_WINDOW_MS, &quiet));
	assert_int_equal(quiet, 0);
	/* Time 0 (a fresh monotonic clock) is no "never". */
	memset(&r, 0, sizeof(r));
	assert_true(log_rate_due(&r, 0, &quiet));
	assert_false(log_rate_due(&r, 1, &quiet));
}

static void
test_rate_warnx_once(void **state)
{
	static struct log_rate r;
	char	buf[CAP_MAX];
	int	i;

	(void)state;
	cap_begin();
	errno = EMFILE;
	for (i = 0; i < 100; i++)
		log_rate_warnx(&r, "connect: %s", "Too many open files");
	assert_int_equal(errno, EMFILE);
	(void)cap_end(buf, sizeof(buf));
	assert_non_null(strstr(buf, "msg=\"connect: Too many open files\"\n"));
	assert_null(strstr(strstr(buf, "connect:") + 1, "connect:"));
	/* The window over: said again, with the 99 it kept quiet. */
	r.next_ms = 1;
	cap_begin();
	log_rate_warnx(&r, "connect: %s", "Too many open files");
	(void)cap_end(buf, sizeof(buf));
	assert_non_null(strstr(buf, "(99 more like it not logged)"));
}

/* Hostile message text: still one line, escaped. */
static void
test_message_escaped(void **state)
{
	char		buf[CAP_MAX];
	struct jfield	f[16];
	size_t		n;

	(void)state;
	cap_begin();
	log_info("%s", "evil\n2026-01-01T00:00:00.000Z ERROR forged=1\r\x1b");
	n = cap_end(buf, sizeof(buf));
	check_one_line(buf, n);
	assert_non_null(strstr(buf, "msg=\"evil\\n2026-01-01T00:00:00.000Z "
	    "ERROR forged=1\\r\\x1b\"\n"));

	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_JSON);
	cap_begin();
	log_info("%s", "a\"b\\c\nd\x01");
	n = cap_end(buf, sizeof(buf));
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	check_one_line(buf, n);
	assert_int_equal(json_object(buf, n - 1, f, nitems(f)), 5);
	assert_non_null(strstr(buf, "\"msg\":\"a\\\"b\\\\c\\nd\\u0001\"}\n"));
}

/* A message longer than a line, plain or all escapes: one line. */
static void
test_long_message(void **state)
{
	static char	big[6000], buf[CAP_MAX];
	size_t		n;
	int		fmt;

	(void)state;
	for (fmt = LOG_FORMAT_TEXT; fmt <= LOG_FORMAT_JSON; fmt++) {
		log_configure(LOG_LEVEL_DEBUG, (enum log_format)fmt);
		memset(big, 'a', 5999);
		big[5999] = '\0';
		cap_begin();
		log_info("%s", big);
		n = cap_end(buf, sizeof(buf));
		check_one_line(buf, n);
		if (fmt == LOG_FORMAT_JSON)
			assert_true(json_valid(buf, n - 1));
		memset(big, '\x01', 5999);
		cap_begin();
		log_info("%s", big);
		n = cap_end(buf, sizeof(buf));
		check_one_line(buf, n);
		if (fmt == LOG_FORMAT_JSON) {
			assert_true(json_valid(buf, n - 1));
			assert_non_null(strstr(buf, ",\"truncated\":true}\n"));
		} else
			assert_non_null(strstr(buf, " truncated=1\n"));
	}
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
}

static void
test_event_text(void **state)
{
	struct log_event ev;
	char		 buf[CAP_MAX];
	time_t		 before, after;
	size_t		 n;

	(void)state;
	log_configure(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);	/* any level */
	before = time(NULL);
	cap_begin();
	log_event_begin(&ev, "ACCESS");
	log_event_cstr(&ev, "method", "GET");
	log_event_str(&ev, "path", "/a b\"c", 6);
	log_event_str(&ev, "host", "example.comXXX", 11);
	log_event_uint(&ev, "status", 200);
	log_event_uint(&ev, "zero", 0);
	log_event_uint(&ev, "big", UINT64_MAX);
	log_event_cstr(&ev, "empty", "");
	log_event_end(&ev);
	n = cap_end(buf, sizeof(buf));
	after = time(NULL);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	check_one_line(buf, n);
	check_timestamp(buf, before, after);
	assert_string_equal(buf + TS_LEN, " ACCESS method=GET "
	    "path=\"/a b\\\"c\""
	    " host=example.com status=200 zero=0 big=18446744073709551615"
	    " empty=\"\"\n");
}

static void
test_event_json(void **state)
{
	struct log_event ev;
	struct jfield	 f[16];
	char		 buf[CAP_MAX];
	size_t		 n;

	(void)state;
	log_configure(LOG_LEVEL_ERROR, LOG_FORMAT_JSON);
	cap_begin();
	log_event_begin(&ev, "RATE_LIMIT");
	log_event_cstr(&ev, "client_ip", "192.0.2.1");
	log_event_str(&ev, "path", "/a\nb", 4);
	log_event_uint(&ev, "big", UINT64_MAX);
	log_event_cstr(&ev, "empty", "");
	log_event_end(&ev);
	n = cap_end(buf, sizeof(buf));
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	check_one_line(buf, n);
	assert_int_equal(json_object(buf, n - 1, f, nitems(f)), 6);
	assert_string_equal(f[0].key, "time");
	assert_string_equal(f[1].key, "event");
	assert_memory_equal(f[1].val, "\"rate_limit\"", f[1].vlen);
	assert_string_equal(buf + 9 + TS_LEN, "\",\"event\":\"rate_limit\","
	    "\"client_ip\":\"192.0.2.1\",\"path\":\"/a\\nb\","
	    "\"big\":18446744073709551615,\"empty\":\"\"}\n");
}

/* One field far larger than a line, in both formats, plain and hostile. */
static void
test_event_truncation(void **state)
{
	struct log_event ev;
	struct jfield	 f[16];
	struct tfield	 t[16];
	static char	 big[10000], buf[CAP_MAX];
	size_t		 n;
	int		 fmt, fill;
	long		 nf;

	(void)state;
	for (fmt = LOG_FORMAT_TEXT; fmt <= LOG_FORMAT_JSON; fmt++) {
		for (fill = 0; fill < 3; fill++) {
			memset(big, "a \x01"[fill], 10000);
			log_configure(LOG_LEVEL_DEBUG, (enum log_format)fmt);
			cap_begin();
			log_event_begin(&ev, "ACCESS");
			log_event_cstr(&ev, "method", "GET");
			log_event_str(&ev, "path", big, 10000);
			log_event_uint(&ev, "status", 200);
			log_event_cstr(&ev, "after", "x");
			log_event_end(&ev);
			n = cap_end(buf, sizeof(buf));
			check_one_line(buf, n);
			if (fmt == LOG_FORMAT_JSON) {
				nf = json_object(buf, n - 1, f, nitems(f));
				assert_true(nf >= 4);
				assert_string_equal(f[nf - 1].key,
				    "truncated");
				assert_memory_equal(f[nf - 1].val, "true", 4);
			} else {
				nf = text_fields(buf, n - 1, t, nitems(t));
				assert_true(nf >= 3);
				assert_string_equal(t[nf - 1].key,
				    "truncated");
				assert_memory_equal(t[nf - 1].val, "1", 1);
				assert_true(n >= 13);
				assert_memory_equal(buf + n - 13,
				    " truncated=1\n", 13);
			}
			/* The line is used: nothing was cut for nothing. */
			assert_true(n > LOG_LINE_MAX - 100);
		}
	}
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
}

/*
 * Every field after a cut is whole or absent, wherever the line fills
 * up: a value that no longer fits must not leave its key behind.
 * Returns the line in buf; `left` is the room before the reserve.
 */
static size_t
fill_line(enum log_format fmt, size_t left, char *buf, size_t sz)
{
	static char	 pad[LOG_LINE_MAX];
	struct log_event ev;
	size_t		 used, n;

	memset(pad, 'p', sizeof(pad));
	log_configure(LOG_LEVEL_DEBUG, fmt);
	/* Learn where a line starts, then pad it so that exactly `left`
	 * bytes remain before the 32-byte reserve. */
	log_event_begin(&ev, "ACCESS");
	used = ev.len + (fmt == LOG_FORMAT_JSON ? 8 : 5);
	cap_begin();
	log_event_begin(&ev, "ACCESS");
	log_event_str(&ev, "pad", pad, LOG_LINE_MAX - 32 - used - left);
	log_event_uint(&ev, "n", 12345678901234567890ULL);
	log_event_cstr(&ev, "s", "abc def");
	log_event_uint(&ev, "m", 7);
	log_event_end(&ev);
	n = cap_end(buf, sz);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	check_one_line(buf, n);
	return n;
}

static void
test_event_cut_text_fields_whole(void **state)
{
	static char	buf[CAP_MAX];
	struct tfield	t[16];
	size_t		n, left, i;
	long		nf, k;

	(void)state;
	for (left = 0; left <= 48; left++) {
		n = fill_line(LOG_FORMAT_TEXT, left, buf, sizeof(buf));
		nf = text_fields(buf, n - 1, t, nitems(t));
		assert_true(nf > 0);
		for (k = 0; k < nf; k++) {
			if (t[k].vlen == 0)
				fail_msg("%zu bytes left: field %s has no "
				    "value: ...%s", left, t[k].key,
				    buf + n - 60);
			if (strcmp(t[k].key, "n") == 0)
				assert_memory_equal(t[k].val,
				    "12345678901234567890", 20);
		}
		for (i = 0; i + 1 < n; i++)
			assert_true(buf[i] >= 0x20 && buf[i] < 0x7f);
	}
}

static void
test_event_cut_json_valid(void **state)
{
	static char	buf[CAP_MAX];
	struct jfield	f[16];
	size_t		n, left;
	long		nf, k;

	(void)state;
	for (left = 0; left <= 48; left++) {
		n = fill_line(LOG_FORMAT_JSON, left, buf, sizeof(buf));
		nf = json_object(buf, n - 1, f, nitems(f));
		if (nf < 0)
			fail_msg("%zu bytes left: invalid JSON ...%s", left,
			    buf + n - 60);
		for (k = 0; k < nf; k++)
			if (strcmp(f[k].key, "n") == 0)
				assert_memory_equal(f[k].val,
				    "12345678901234567890", 20);
	}
}

/* errno survives every call, even when the write itself fails. */
static void
test_errno_preserved(void **state)
{
	struct log_event ev;
	void		(*oldpipe)(int);
	char		 buf[CAP_MAX], want[256];
	const char	*p0;
	size_t		 n;
	int		 saved, ro, p[2], round;

	(void)state;
	oldpipe = signal(SIGPIPE, SIG_IGN);
	saved = dup(STDERR_FILENO);
	for (round = 0; round < 3; round++) {
		if (round == 0) {
			/* Writable: a normal line. */
			ro = open("/dev/null", O_WRONLY);
		} else if (round == 1) {
			/* Not writable: write(2) fails with EBADF. */
			ro = open("/dev/null", O_RDONLY);
		} else {
			/* A pipe nobody reads: EPIPE. */
			assert_int_equal(pipe(p), 0);
			close(p[0]);
			ro = p[1];
		}
		assert_true(ro >= 0);
		dup2(ro, STDERR_FILENO);
		close(ro);
		log_configure(LOG_LEVEL_DEBUG, (enum log_format)(round & 1));

		errno = ERANGE;
		log_info("x");
		assert_int_equal(errno, ERANGE);
		errno = ENOSPC;
		log_warn("x");
		assert_int_equal(errno, ENOSPC);
		errno = EINTR;
		log_warnx("x");
		assert_int_equal(errno, EINTR);
		errno = EDOM;
		log_errorx("x");
		assert_int_equal(errno, EDOM);
		errno = E2BIG;
		log_debug("x");
		assert_int_equal(errno, E2BIG);
		log_configure(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
		errno = EXDEV;
		log_debug("x");				/* disabled */
		assert_int_equal(errno, EXDEV);
		errno = EMLINK;
		log_event_begin(&ev, "E");
		log_event_cstr(&ev, "k", "v v");
		log_event_uint(&ev, "u", 1);
		log_event_end(&ev);
		assert_int_equal(errno, EMLINK);
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	signal(SIGPIPE, oldpipe);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);

	/* Six lines lost to EBADF, six to EPIPE: said once, after the
	   first line that could be written again. */
	cap_begin();
	errno = ENOENT;
	log_info("after");
	assert_int_equal(errno, ENOENT);
	log_info("again");
	n = cap_end(buf, sizeof(buf));
	assert_int_equal(count_nl(buf, n), 3);
	p0 = strchr(buf, '\n') + 1;
	assert_memory_equal(p0 - 10, "msg=after\n", 10);
	snprintf(want, sizeof(want), " LOG_LOST proc=test pid=%s lines=12 "
	    "error=\"%s\"\n", mypid(), strerror(EPIPE));
	assert_memory_equal(p0 + TS_LEN, want, strlen(want));
	p0 = strchr(p0, '\n') + 1;
	assert_non_null(strstr(p0, " INFO proc=test "));
	assert_non_null(strstr(p0, "msg=again\n"));
}

/*
 * Writing.  A regular file opened O_APPEND takes a worker's batch of
 * lines in one write(2); a pipe or a socket gets one write per line (a
 * pipe in packet mode, O_DIRECT, and a SOCK_SEQPACKET socket hand every
 * write(2) to read(2) as one packet, which shows where writes began and
 * ended).  A write that does not complete leaves no piece of a line for
 * the next one to continue, and the lines lost are said once.
 */

/* After a test that points fd 2 elsewhere, even one that failed. */
static int
restore_stderr(void **state)
{
	(void)state;
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	return 0;
}

/* One ACCESS line of about len bytes, told apart by tag. */
static void
access_line(size_t len, unsigned tag)
{
	static char	 path[LOG_LINE_MAX];
	struct log_event ev;
	int		 k;

	assert_true(len > 100 && len - 100 < sizeof(path));
	memset(path, 'a', len - 100);
	k = snprintf(path, sizeof(path), "/%u/", tag);
	path[k] = 'a';
	log_event_begin(&ev, "ACCESS");
	log_event_cstr(&ev, "client_ip", "192.0.2.1");
	log_event_str(&ev, "path", path, len - 100);
	log_event_uint(&ev, "status", 200);
	log_event_end(&ev);
}

/* Every line in buf[0..n) parses as a text line; returns how many. */
static size_t
text_lines_ok(const char *buf, size_t n)
{
	struct tfield	 t[16];
	const char	*p = buf, *nl;
	size_t		 k = 0;

	while (p < buf + n) {
		nl = memchr(p, '\n', (size_t)(buf + n - p));
		assert_non_null(nl);
		if (text_fields(p, (size_t)(nl - p), t, nitems(t)) < 1)
			fail_msg("not a log line: %.*s", (int)(nl - p), p);
		k++;
		p = nl + 1;
	}
	return k;
}

/* Log to a regular file opened O_APPEND, as logging.file is. */
static int
log_to_append_file(void)
{
	int	fd = memfd_create("log_test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	return fd;
}

static size_t
file_size(int fd)
{
	off_t	end = lseek(fd, 0, SEEK_END);

	assert_true(end >= 0);
	return (size_t)end;
}

/* Wait for the next second of the clock, and return it. */
static time_t
next_second(void)
{
	struct timespec	ts;
	time_t		t = time(NULL);

	while (time(NULL) == t) {
		ts.tv_sec = 0;
		ts.tv_nsec = 10 * 1000 * 1000;
		nanosleep(&ts, NULL);
	}
	return time(NULL);
}

/* The longest line any event can make fits one atomic pipe write. */
static void
test_longest_line_fits_pipe_buf(void **state)
{
	static char	 pad[LOG_LINE_MAX], big[3 * LOG_LINE_MAX];
	struct log_event ev;
	size_t		 p, longest = 0;
	int		 fmt, fill, null;

	(void)state;
	memset(pad, 'p', sizeof(pad));
	null = open("/dev/null", O_WRONLY);
	assert_true(null >= 0);
	dup2(null, STDERR_FILENO);
	close(null);
	for (fmt = LOG_FORMAT_TEXT; fmt <= LOG_FORMAT_JSON; fmt++) {
		log_configure(LOG_LEVEL_DEBUG, (enum log_format)fmt);
		for (fill = 0; fill < 3; fill++) {
			memset(big, "a\"\x01"[fill], sizeof(big));
			/* Every fill level near the end of a line. */
			for (p = LOG_LINE_MAX - 200; p <= LOG_LINE_MAX; p++) {
				log_event_begin(&ev, "ACCESS");
				log_event_str(&ev, "pad", pad, p - 200);
				log_event_str(&ev, "big", big, sizeof(big));
				log_event_uint(&ev, "n", UINT64_MAX);
				log_event_end(&ev);
				assert_true(ev.truncated);
				assert_true(ev.len <= PIPE_BUF);
				if (ev.len > longest)
					longest = ev.len;
			}
		}
	}
	dup2(test_stderr, STDERR_FILENO);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	/* The lines did reach the end of their room. */
	assert_true(longest > LOG_LINE_MAX - 32);
}

/* A pipe or a socket: one write(2) per line, batching or not. */
static void
test_one_write_per_line(void **state)
{
	char	 pkt[CAP_MAX];
	ssize_t	 r;
	int	 fds[2], kind, i, got;

	(void)state;
	for (kind = 0; kind < 2; kind++) {
		if (kind == 0)
			assert_int_equal(pipe2(fds, O_DIRECT | O_CLOEXEC), 0);
		else
			assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET |
			    SOCK_CLOEXEC, 0, fds), 0);
		assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
		dup2(fds[1], STDERR_FILENO);
		log_batching(true);
		/* 8 lines of 3000 bytes: a batch of 24 KB. */
		for (i = 0; i < 8; i++)
			access_line(3000, (unsigned)i);
		log_info("not batched");
		access_line(3000, 8);
		log_flush();
		log_batching(false);
		dup2(test_stderr, STDERR_FILENO);
		close(fds[1]);
		for (got = 0; (r = read(fds[0], pkt, sizeof(pkt) - 1)) > 0;
		    got++) {
			pkt[r] = '\0';
			check_one_line(pkt, (size_t)r);
			assert_int_equal(text_lines_ok(pkt, (size_t)r), 1);
			if (got == 8)
				assert_non_null(strstr(pkt, "not batched"));
			else
				assert_non_null(strstr(pkt, " ACCESS "));
		}
		assert_int_equal(got, 10);
		close(fds[0]);
	}
}

/*
 * A regular file opened O_APPEND: batched lines wait for log_flush() and
 * go in one write; any other line flushes them first.  Without O_APPEND
 * nothing waits.
 */
static void
test_append_file_batches(void **state)
{
	char	 buf[CAP_MAX];
	ssize_t	 r;
	size_t	 after3;
	int	 fd, i;

	(void)state;
	fd = log_to_append_file();
	log_batching(true);
	for (i = 0; i < 3; i++)
		access_line(1000, (unsigned)i);
	assert_int_equal(file_size(fd), 0);
	log_flush();
	after3 = file_size(fd);
	assert_true(after3 > 3 * 900);
	access_line(1000, 3);
	assert_int_equal(file_size(fd), after3);
	log_info("not batched");
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	r = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(r > 0);
	buf[r] = '\0';
	assert_int_equal(text_lines_ok(buf, (size_t)r), 5);
	assert_non_null(strstr(buf, "path=/3/aaa"));
	assert_true(strstr(buf, "path=/3/aaa") < strstr(buf, "not batched"));
	close(fd);

	/* The same file without O_APPEND. */
	fd = memfd_create("log_test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	dup2(fd, STDERR_FILENO);
	log_batching(true);
	access_line(1000, 0);
	assert_true(file_size(fd) > 900);
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	close(fd);
}

/*
 * fd 2 replaced behind the module's back (SIGUSR1's reopen dup2()s the
 * new file onto it): the kind is looked at again within a second.
 */
static void
test_new_destination_seen(void **state)
{
	char	 pkt[CAP_MAX];
	ssize_t	 r;
	int	 fd, p[2], i, got;

	(void)state;
	fd = log_to_append_file();
	log_batching(true);
	access_line(1000, 0);
	assert_int_equal(file_size(fd), 0);	/* batched */
	log_flush();
	assert_int_equal(pipe2(p, O_DIRECT | O_CLOEXEC), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	next_second();
	for (i = 1; i < 4; i++)
		access_line(3000, (unsigned)i);
	/* Written at once, one packet each, before any log_flush(). */
	for (got = 0; (r = read(p[0], pkt, sizeof(pkt) - 1)) > 0; got++) {
		pkt[r] = '\0';
		check_one_line(pkt, (size_t)r);
		assert_non_null(strstr(pkt, " ACCESS "));
	}
	assert_int_equal(got, 3);
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	close(p[0]);
	close(fd);
}

/*
 * log_reopened(), as the daemon calls it after SIGUSR1's dup2(): the new
 * destination is looked at before the next line, in the same second.
 */
static void
test_reopened_seen_at_once(void **state)
{
	char	 pkt[CAP_MAX];
	ssize_t	 r;
	int	 fd, p[2], got;

	(void)state;
	fd = log_to_append_file();
	log_batching(true);
	access_line(1000, 0);
	assert_int_equal(file_size(fd), 0);	/* batched */
	log_flush();
	assert_int_equal(pipe2(p, O_DIRECT | O_CLOEXEC), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	log_reopened();
	/* No next_second(): only log_reopened() makes it look again. */
	access_line(1000, 1);
	for (got = 0; (r = read(p[0], pkt, sizeof(pkt) - 1)) > 0; got++) {
		pkt[r] = '\0';
		check_one_line(pkt, (size_t)r);
		assert_non_null(strstr(pkt, " ACCESS "));
	}
	assert_int_equal(got, 1);
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	close(p[0]);
	close(fd);
}

/*
 * A regular file that takes only part of a batch (here RLIMIT_FSIZE, in
 * the daemon a full file system): the whole lines stay, the piece of the
 * next one is cut off, and the lines lost are said once, with the reason,
 * when writing works again.
 */
static void
test_short_write_cut_back(void **state)
{
	static char	 buf[CAP_MAX];
	const char	*l;
	struct rlimit	 old, rl;
	void		(*oldxfsz)(int);
	ssize_t		 r;
	size_t		 before, one, two;
	int		 fd, i;
	char		 want[256];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	oldxfsz = signal(SIGXFSZ, SIG_IGN);
	fd = log_to_append_file();
	log_info("before");
	before = file_size(fd);
	log_batching(true);
	access_line(1000, 0);
	log_flush();
	one = file_size(fd) - before;
	/* Five lines of `one` bytes; room for two and a half. */
	for (i = 1; i <= 5; i++)
		access_line(1000, (unsigned)i);
	rl = old;
	rl.rlim_cur = before + one + 2 * one + one / 2;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	log_flush();
	two = file_size(fd);
	/* No room at all now: the next line fails with EFBIG. */
	rl.rlim_cur = two;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	log_info("during");
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	log_info("after");
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	signal(SIGXFSZ, oldxfsz);

	assert_int_equal(two, before + 3 * one);
	r = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(r > 0);
	buf[r] = '\0';
	assert_int_equal(buf[r - 1], '\n');
	assert_int_equal(text_lines_ok(buf, (size_t)r), 6);
	assert_non_null(strstr(buf, "path=/2/aaa"));
	assert_null(strstr(buf, "path=/3/"));
	assert_null(strstr(buf, "during"));
	/* "after", then LOG_LOST for 3, 4, 5 and "during". */
	l = buf + two;
	assert_non_null(strstr(l, "msg=after\n"));
	l = strchr(l, '\n') + 1;
	snprintf(want, sizeof(want), " LOG_LOST proc=test pid=%s lines=4 "
	    "error=\"%s\"\n", mypid(), strerror(EFBIG));
	assert_memory_equal(l + TS_LEN, want, strlen(want));
	assert_int_equal(l + TS_LEN + strlen(want), buf + r);
}

/*
 * A piece of a line that cannot be taken back (a pipe that took part of
 * a write) is ended by a newline before the next line: it stays one
 * broken line and does not swallow the next.  A pipe gets a batch only
 * when it replaced an O_APPEND file within the second; this makes that
 * happen, into a full non-blocking pipe.
 */
static void
test_piece_ended(void **state)
{
	static char	 buf[CAP_MAX];
	char		 want[256];
	const char	*l2, *l3;
	ssize_t		 r;
	size_t		 n = 0;
	time_t		 t0;
	int		 fd, p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
	t0 = next_second();
	fd = log_to_append_file();
	log_batching(true);
	access_line(3000, 0);			/* looks: an O_APPEND file */
	log_flush();
	dup2(p[1], STDERR_FILENO);
	access_line(3000, 1);
	access_line(3000, 2);
	access_line(3000, 3);
	log_flush();		/* 4096 bytes go in, then EAGAIN */
	assert_true(time(NULL) == t0);	/* all within the second */
	while ((r = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	assert_int_equal(n, 4096);
	log_info("next");
	log_batching(false);
	dup2(test_stderr, STDERR_FILENO);
	close(p[1]);
	while ((r = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	close(fd);
	buf[n] = '\0';

	/* Line 1 whole; the piece of line 2, ended; "next"; LOG_LOST. */
	l2 = strchr(buf, '\n') + 1;
	assert_int_equal(text_lines_ok(buf, (size_t)(l2 - buf)), 1);
	assert_non_null(strstr(buf, "path=/1/aaa"));
	l3 = strchr(l2, '\n') + 1;
	assert_int_equal(l3 - buf, 4096 + 1);
	assert_memory_equal(l2 + TS_LEN, " ACCESS ", 8);
	assert_int_equal(text_lines_ok(l3, n - (size_t)(l3 - buf)), 2);
	assert_non_null(strstr(l3, "msg=next\n"));
	l3 = strchr(l3, '\n') + 1;
	snprintf(want, sizeof(want), " LOG_LOST proc=test pid=%s lines=2 "
	    "error=\"%s\"\n", mypid(), strerror(EAGAIN));
	assert_memory_equal(l3 + TS_LEN, want, strlen(want));
}

static void
test_level_parse(void **state)
{
	static const char *const bad[] = { "", "INFO", "Info", "information",
	    "warning", "err", "fatal", " info", "info ", "info\n", "trace",
	    "0", "3" };
	enum log_level	lvl;
	size_t		i;

	(void)state;
	assert_int_equal(log_level_parse("error", &lvl), 0);
	assert_int_equal(lvl, LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("warn", &lvl), 0);
	assert_int_equal(lvl, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("info", &lvl), 0);
	assert_int_equal(lvl, LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("debug", &lvl), 0);
	assert_int_equal(lvl, LOG_LEVEL_DEBUG);
	for (i = 0; i < nitems(bad); i++) {
		lvl = (enum log_level)77;
		assert_int_equal(log_level_parse(bad[i], &lvl), -1);
		assert_int_equal(lvl, 77);
	}
}

static void
test_format_parse(void **state)
{
	static const char *const bad[] = { "", "TEXT", "JSON", "Json", "txt",
	    "json ", " text", "jsonl", "text\n", "plain", "0" };
	enum log_format	fmt;
	size_t		i;

	(void)state;
	assert_int_equal(log_format_parse("text", &fmt), 0);
	assert_int_equal(fmt, LOG_FORMAT_TEXT);
	assert_int_equal(log_format_parse("json", &fmt), 0);
	assert_int_equal(fmt, LOG_FORMAT_JSON);
	for (i = 0; i < nitems(bad); i++) {
		fmt = (enum log_format)77;
		assert_int_equal(log_format_parse(bad[i], &fmt), -1);
		assert_int_equal(fmt, 77);
	}
}

/*
 * LeakSanitizer runs when the child exit()s; what the parent holds at
 * fork time is not the child's leak.
 */
static volatile int in_fatal_child;

int __lsan_is_turned_off(void);

int
__lsan_is_turned_off(void)
{
	return in_fatal_child;
}

/* fatal()/fatalx() log one ERROR line and exit 1. */
static void
run_fatal(bool with_errno, char *buf, size_t sz)
{
	pid_t	pid;
	int	p[2], status;
	ssize_t	n;
	size_t	got = 0;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		in_fatal_child = 1;
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		log_configure(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
		errno = EACCES;
		if (with_errno)
			fatal("cannot %s", "start");
		fatalx("bad %s", "invariant");
	}
	close(p[1]);
	while (got < sz - 1 && (n = read(p[0], buf + got, sz - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

static void
test_fatal(void **state)
{
	char	buf[CAP_MAX];

	(void)state;
	run_fatal(true, buf, sizeof(buf));
	check_one_line(buf, strlen(buf));
	assert_non_null(strstr(buf, " ERROR proc=test"));
	assert_non_null(strstr(buf, "msg=\"cannot start: Permission "
	    "denied\"\n"));
	run_fatal(false, buf, sizeof(buf));
	check_one_line(buf, strlen(buf));
	assert_non_null(strstr(buf, " ERROR proc=test"));
	assert_non_null(strstr(buf, "msg=\"bad invariant\"\n"));
}

/* The validators themselves must refuse what they are there to catch. */
static void
test_validators_refuse(void **state)
{
	unsigned char	dec[64];
	bool		quoted;
	struct tfield	t[8];

	(void)state;
	assert_true(json_valid(S("{\"a\":1,\"b\":\"x\",\"c\":true}")));
	assert_false(json_valid(S("{\"a\":,\"b\":1}")));
	assert_false(json_valid(S("{\"a\":1,}")));
	assert_false(json_valid(S("{\"a\":1")));
	assert_false(json_valid(S("{\"a\":\"x\ny\"}")));
	assert_false(json_valid(S("{\"a\":1,\"a\":2}")));
	assert_false(json_valid(S("{\"a\":01}")));
	assert_false(json_valid(S("{\"a\":1}x")));
	assert_int_equal(decode_value(TEXT, S("\"a\\\""), dec, &quoted), -1);
	assert_int_equal(decode_value(TEXT, S("\"a"), dec, &quoted), -1);
	assert_int_equal(decode_value(TEXT, S("a b"), dec, &quoted), -1);
	assert_int_equal(decode_value(TEXT, S("\"\\x41\""), dec, &quoted), -1);
	assert_int_equal(decode_value(JSON, S("\"\\x01\""), dec, &quoted), -1);
	assert_int_equal(decode_value(JSON, S("\"\\u0041\""), dec, &quoted),
	    -1);
	assert_int_equal(decode_value(TEXT, S("\"\\x0a\""), dec, &quoted), -1);
	assert_int_equal(text_fields(S("2026-11-22T10:00:00.123Z X a=1 b=\"c"),
	    t, 8), -1);
	assert_int_equal(text_fields(S("2026-11-22T10:00:00.123Z X a=1 b c"),
	    t, 8), -1);
}


/*
 * The journal (log.h): datagrams in journald's native protocol, captured
 * from the other end of a SOCK_DGRAM socketpair given to
 * log_journal_use(), and decoded here as journald decodes them.
 */

struct jent {
	char	 name[64];
	char	 val[2 * LOG_LINE_MAX];
	size_t	 vlen;
};

/* Decode one datagram; the number of fields, or -1 if it breaks the
   protocol (a name outside [A-Z0-9_], a length past the end ...). */
static int
jdecode(const char *p, size_t n, struct jent *e, int max)
{
	size_t	i = 0, k, len;
	int	nf = 0;

	while (i < n) {
		if (nf >= max)
			return -1;
		for (k = i; k < n && p[k] != '=' && p[k] != '\n'; k++)
			if (!((p[k] >= 'A' && p[k] <= 'Z') ||
			    (p[k] >= '0' && p[k] <= '9') || p[k] == '_'))
				return -1;
		if (k == i || k == n || k - i >= sizeof(e[nf].name))
			return -1;
		memcpy(e[nf].name, p + i, k - i);
		e[nf].name[k - i] = '\0';
		if (p[k] == '=') {
			const char *nl = memchr(p + k + 1, '\n', n - k - 1);

			if (nl == NULL)
				return -1;
			len = (size_t)(nl - (p + k + 1));
			i = (size_t)(nl - p) + 1;
			if (len >= sizeof(e[nf].val))
				return -1;
			memcpy(e[nf].val, p + k + 1, len);
		} else {
			uint64_t l = 0;
			int b;

			if (n - k - 1 < 8)
				return -1;
			for (b = 7; b >= 0; b--)
				l = l << 8 | (unsigned char)p[k + 1 + (size_t)b];
			if (l >= sizeof(e[nf].val) || n - k - 9 < l + 1 ||
			    p[k + 9 + l] != '\n')
				return -1;
			len = (size_t)l;
			memcpy(e[nf].val, p + k + 9, len);
			i = k + 9 + len + 1;
		}
		e[nf].val[len] = '\0';
		e[nf].vlen = len;
		nf++;
	}
	return nf;
}

static const struct jent *
jget(const struct jent *e, int n, const char *name)
{
	const struct jent *found = NULL;
	int	i;

	for (i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0) {
			assert_null(found);	/* every name once */
			found = &e[i];
		}
	return found;
}

static int	jsock[2] = { -1, -1 };

static void
jcap_begin(void)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
	    jsock), 0);
	log_journal_use(jsock[0]);
	assert_true(log_journal_active());
}

/* The next datagram, decoded into e[]; its field count. */
static int
jcap_next(struct jent *e, int max, size_t *size)
{
	static char	buf[4 * LOG_LINE_MAX];
	ssize_t		n;

	n = recv(jsock[1], buf, sizeof(buf), MSG_DONTWAIT);
	assert_true(n > 0);
	if (size != NULL)
		*size = (size_t)n;
	return jdecode(buf, (size_t)n, e, max);
}

static void
jcap_none(void)
{
	char	c;

	assert_int_equal(recv(jsock[1], &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

static void
jcap_end(void)
{
	log_journal_use(-1);
	close(jsock[0]);
	close(jsock[1]);
}

static void
test_journal_access_entry(void **state)
{
	static struct jent	 e[32];
	struct log_event	 ev;
	const struct jent	*f;
	/* A path that tries to end its field and start one. */
	static const char	 path[] = "/a\nPORTCULLIS_STATUS=200\n=x\"y";
	int			 n;

	(void)state;
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_JSON);	/* no matter */
	jcap_begin();
	log_event_begin(&ev, "ACCESS");
	log_event_cstr(&ev, "client_ip", "192.0.2.1");
	log_event_cstr(&ev, "method", "GET");
	log_event_cstr(&ev, "host", "a.test");
	log_event_str(&ev, "path", S(path));
	log_event_uint(&ev, "status", 404);
	log_event_uint(&ev, "duration_ms", 7);
	log_event_end(&ev);
	n = jcap_next(e, nitems(e), NULL);
	jcap_none();
	jcap_end();
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	assert_int_equal(n, 10);
	assert_string_equal(e[0].name, "MESSAGE");
	assert_string_equal(e[0].val, "ACCESS client_ip=192.0.2.1 method=GET "
	    "host=a.test path=\"/a\\nPORTCULLIS_STATUS=200\\n=x\\\"y\" "
	    "status=404 duration_ms=7");
	assert_string_equal(jget(e, n, "PRIORITY")->val, "6");
	assert_string_equal(jget(e, n, "SYSLOG_IDENTIFIER")->val,
	    "portcullis");
	assert_string_equal(jget(e, n, "PORTCULLIS_EVENT")->val, "access");
	assert_string_equal(jget(e, n, "PORTCULLIS_CLIENT_IP")->val,
	    "192.0.2.1");
	assert_string_equal(jget(e, n, "PORTCULLIS_METHOD")->val, "GET");
	assert_string_equal(jget(e, n, "PORTCULLIS_HOST")->val, "a.test");
	f = jget(e, n, "PORTCULLIS_PATH");
	assert_int_equal(f->vlen, sizeof(path) - 1);
	assert_memory_equal(f->val, path, sizeof(path) - 1);
	/* The one STATUS is the proxy's. */
	assert_string_equal(jget(e, n, "PORTCULLIS_STATUS")->val, "404");
	assert_string_equal(jget(e, n, "PORTCULLIS_DURATION_MS")->val, "7");
	assert_null(jget(e, n, "PORTCULLIS_TRUNCATED"));
}

static void
test_journal_priorities(void **state)
{
	static struct jent	 e[32];
	struct log_event	 ev;
	char			 want[128];
	int			 n;

	(void)state;
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	log_init("worker", 3);
	jcap_begin();
	log_errorx("bad %d", 1);
	log_warnx("meh");
	log_info("fine");
	log_debug("detail");
	log_event_begin(&ev, "RATE_LIMIT");
	log_event_cstr(&ev, "client_ip", "192.0.2.1");
	log_event_end(&ev);
	log_event_begin(&ev, "CONN_LIMIT");
	log_event_end(&ev);
	log_event_begin(&ev, "ACME");
	log_event_cstr(&ev, "event", "renewed");
	log_event_end(&ev);
	log_event_begin(&ev, "CLIENT_CERT");
	log_event_cstr(&ev, "error", "expired");
	log_event_end(&ev);

	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "3");
	assert_string_equal(jget(e, n, "PORTCULLIS_LEVEL")->val, "error");
	assert_string_equal(jget(e, n, "PORTCULLIS_PROC")->val, "worker");
	assert_string_equal(jget(e, n, "PORTCULLIS_WORKER")->val, "3");
	assert_string_equal(jget(e, n, "PORTCULLIS_PID")->val, mypid());
	assert_string_equal(jget(e, n, "PORTCULLIS_MSG")->val, "bad 1");
	snprintf(want, sizeof(want), "ERROR proc=worker worker=3 pid=%s "
	    "msg=\"bad 1\"", mypid());
	assert_string_equal(e[0].val, want);
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "4");
	assert_string_equal(jget(e, n, "PORTCULLIS_LEVEL")->val, "warn");
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "6");
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "7");
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "5");
	assert_string_equal(jget(e, n, "PORTCULLIS_EVENT")->val, "rate_limit");
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "5");
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "6");
	assert_string_equal(jget(e, n, "PORTCULLIS_EVENT")->val, "acme");
	assert_string_equal(jget(e, n, "PORTCULLIS_ACME_EVENT")->val,
	    "renewed");
	n = jcap_next(e, nitems(e), NULL);
	assert_string_equal(jget(e, n, "PRIORITY")->val, "4");
	assert_string_equal(jget(e, n, "PORTCULLIS_ERROR")->val, "expired");
	jcap_none();
	jcap_end();
	log_init("test", -1);
}

static void
test_journal_truncated(void **state)
{
	static struct jent	 e[32];
	static char		 big[3 * LOG_LINE_MAX];
	struct log_event	 ev;
	size_t			 size;
	int			 n;

	(void)state;
	memset(big, '\n', sizeof(big));
	jcap_begin();
	log_event_begin(&ev, "ACCESS");
	log_event_cstr(&ev, "client_ip", "192.0.2.1");
	log_event_str(&ev, "path", big, sizeof(big));
	log_event_uint(&ev, "status", 200);
	log_event_end(&ev);
	n = jcap_next(e, nitems(e), &size);
	jcap_end();
	assert_true(n > 0);
	/* Far below what a datagram takes: never libsystemd's memfd. */
	assert_true(size <= LOG_LINE_MAX + LOG_JOURNAL_FIELDS_MAX + 128);
	assert_string_equal(jget(e, n, "PORTCULLIS_TRUNCATED")->val, "1");
	assert_true(jget(e, n, "MESSAGE")->vlen <= LOG_LINE_MAX);
	assert_true(strstr(jget(e, n, "MESSAGE")->val, " truncated=1") !=
	    NULL);
	assert_true(jget(e, n, "PORTCULLIS_PATH")->vlen < sizeof(big));
}

/* A datagram that cannot be sent: MESSAGE goes to fd 2 as a line. */
static void
test_journal_unsent_goes_to_stderr(void **state)
{
	char	buf[CAP_MAX];
	size_t	n;

	(void)state;
	jcap_begin();
	close(jsock[1]);
	jsock[1] = -1;
	cap_begin();
	log_warnx("journald gone");
	n = cap_end(buf, sizeof(buf));
	log_journal_use(-1);
	close(jsock[0]);
	check_one_line(buf, n);
	assert_memory_equal(buf, "WARN proc=test pid=", 19);
	assert_true(strstr(buf, " msg=\"journald gone\"\n") != NULL);
}

static void
test_journal_stream_parse(void **state)
{
	static const char *const bad[] = { "", ":", "1:", ":1", "a:1",
	    "1:b", "1:2:3", " 1:2", "1 :2", "1:2 ", "-1:2", "+1:2",
	    "18446744073709551616:1", "1:18446744073709551616", "12" };
	uint64_t dev = 0, ino = 0;
	size_t	i;

	(void)state;
	assert_int_equal(log_journal_stream_parse("8:123456", &dev, &ino), 0);
	assert_true(dev == 8 && ino == 123456);
	assert_int_equal(log_journal_stream_parse(
	    "18446744073709551615:0", &dev, &ino), 0);
	assert_true(dev == UINT64_MAX && ino == 0);
	for (i = 0; i < nitems(bad); i++)
		assert_int_equal(log_journal_stream_parse(bad[i], &dev, &ino),
		    -1);
	assert_int_equal(log_journal_stream_parse(NULL, &dev, &ino), -1);
}

/* JOURNAL_STREAM that does not name fd 2, or none: fd 2 as before. */
static void
test_journal_detect_needs_the_stream(void **state)
{
	struct stat	st;
	char		env[64];
	int		sv[2];

	(void)state;
	unsetenv("JOURNAL_STREAM");
	assert_false(log_journal_detect());
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	assert_int_equal(fstat(sv[0], &st), 0);
	/* Another socket's device:inode. */
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	assert_false(log_journal_detect());
	assert_false(log_journal_active());
	/* fd 2 is that socket: the stream is ours, but with no journald
	   socket to connect to, fd 2 stays. */
	if (access(LOG_JOURNAL_SOCKET, F_OK) == -1) {
		assert_int_equal(dup2(sv[0], STDERR_FILENO), STDERR_FILENO);
		assert_false(log_journal_detect());
		assert_false(log_journal_active());
		dup2(test_stderr, STDERR_FILENO);
	}
	unsetenv("JOURNAL_STREAM");
	close(sv[0]);
	close(sv[1]);
}

/* A datagram socket bound at a path of the test's own: a journald. */
static int
jd_bind(char *path, size_t sz)
{
	struct sockaddr_un	sun;
	int			fd;

	snprintf(path, sz, "/tmp/log_test.%ld.journal", (long)getpid());
	(void)unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Logging to a journald of the test's own. */
static int
jd_start(char *path, size_t sz)
{
	int	rx;

	log_init("test", -1);
	log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	rx = jd_bind(path, sz);
	assert_true(log_journal_open(path));
	assert_true(log_journal_active());
	return rx;
}

static void
jd_stop(int rx, const char *path)
{
	log_journal_use(-1);
	close(rx);
	unlink(path);
}

static int
jd_next(int fd, struct jent *e, int max)
{
	static char	buf[4 * LOG_LINE_MAX];
	ssize_t		n;

	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	assert_true(n > 0);
	return jdecode(buf, (size_t)n, e, max);
}

/*
 * A stalled journald (its queue full, net.unix.max_dgram_qlen) never
 * stalls the process: the lines it does not take are dropped, nothing
 * goes to fd 2 instead, and the next line it takes is followed by a
 * LOG_LOST entry that says how many.  A send that waited would hang:
 * alarm() ends the test instead.
 */
static void
test_journal_full_queue_drops_lines(void **state)
{
	static struct jent	 e[32];
	char			 path[108], buf[CAP_MAX], d[4 * LOG_LINE_MAX];
	const struct jent	*f;
	uint64_t		 got = 0, sent = 2000, i;
	size_t			 n;
	char			 want[32];
	int			 rx, nf;

	(void)state;
	rx = jd_start(path, sizeof(path));
	cap_begin();
	alarm(20);
	for (i = 0; i < sent; i++)
		log_info("line %llu", (unsigned long long)i);
	alarm(0);
	n = cap_end(buf, sizeof(buf));
	assert_int_equal(n, 0);		/* no line fell back to fd 2 */
	while (recv(rx, d, sizeof(d), MSG_DONTWAIT) > 0)
		got++;
	assert_true(got > 0 && got < sent);
	log_info("after");
	nf = jd_next(rx, e, 32);
	assert_true(nf > 0);
	assert_non_null(strstr(jget(e, nf, "MESSAGE")->val, "msg=after"));
	nf = jd_next(rx, e, 32);
	assert_true(nf > 0);
	assert_memory_equal(jget(e, nf, "MESSAGE")->val, "LOG_LOST ", 9);
	snprintf(want, sizeof(want), "%llu", (unsigned long long)(sent - got));
	assert_string_equal(jget(e, nf, "PORTCULLIS_LINES")->val, want);
	assert_string_equal(jget(e, nf, "PORTCULLIS_ERROR")->val,
	    strerror(EAGAIN));
	f = jget(e, nf, "PRIORITY");
	assert_string_equal(f->val, "4");
	/* Said once. */
	log_info("again");
	nf = jd_next(rx, e, 32);
	assert_non_null(strstr(jget(e, nf, "MESSAGE")->val, "msg=again"));
	assert_int_equal(recv(rx, d, sizeof(d), MSG_DONTWAIT), -1);
	jd_stop(rx, path);
}

/*
 * journald restarted: a new socket at the same path.  Its datagrams are
 * addressed to the path, so the next line reaches the new journald
 * (without a socket() or a connect(), which the sandbox would refuse);
 * while there is none, lines go to fd 2.
 */
static void
test_journal_follows_a_restart(void **state)
{
	static struct jent	 e[32];
	char			 path[108], buf[CAP_MAX];
	size_t			 n;
	int			 rx, nf;

	(void)state;
	rx = jd_start(path, sizeof(path));
	log_info("first");
	nf = jd_next(rx, e, 32);
	assert_non_null(strstr(jget(e, nf, "MESSAGE")->val, "msg=first"));
	close(rx);
	unlink(path);
	cap_begin();
	log_info("between");
	n = cap_end(buf, sizeof(buf));
	check_one_line(buf, n);
	assert_non_null(strstr(buf, "msg=between\n"));
	rx = jd_bind(path, sizeof(path));
	log_info("second");
	nf = jd_next(rx, e, 32);
	assert_non_null(strstr(jget(e, nf, "MESSAGE")->val, "msg=second"));
	jd_stop(rx, path);
}

/*
 * The socket goes above LOG_JOURNAL_FD_MIN or not at all: where the
 * descriptor limit does not reach that far, no journal, and no socket
 * left behind at a low number (child_exec's dup2()s would overwrite it).
 */
static void
test_journal_needs_a_high_descriptor(void **state)
{
	char	path[108];
	int	rx, st;
	pid_t	pid;

	(void)state;
	rx = jd_bind(path, sizeof(path));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit	rl = { 64, 64 };
		int		low, again;

		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    (low = dup(0)) == -1)
			_exit(10);
		close(low);
		if (log_journal_open(path))
			_exit(1);
		if (log_journal_active())
			_exit(2);
		again = dup(0);
		_exit(again == low ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* With the room, it is there. */
	assert_true(log_journal_open(path));
	jd_stop(rx, path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validators_refuse),
		cmocka_unit_test(test_text_plain_tokens),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_named_escapes),
		cmocka_unit_test(test_empty_value),
		cmocka_unit_test(test_dstsz_boundaries),
		cmocka_unit_test(test_escape_properties),
		cmocka_unit_test(test_cut_never_splits_escape),
		cmocka_unit_test(test_no_forged_text_field),
		cmocka_unit_test(test_no_forged_json_key),
		cmocka_unit_test(test_text_message_line),
		cmocka_unit_test(test_json_message_line),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_worker_field),
		cmocka_unit_test(test_warn_appends_strerror),
		cmocka_unit_test(test_rate_due),
		cmocka_unit_test(test_rate_warnx_once),
		cmocka_unit_test(test_message_escaped),
		cmocka_unit_test(test_long_message),
		cmocka_unit_test(test_event_text),
		cmocka_unit_test(test_event_json),
		cmocka_unit_test(test_event_truncation),
		cmocka_unit_test(test_event_cut_text_fields_whole),
		cmocka_unit_test(test_event_cut_json_valid),
		cmocka_unit_test(test_errno_preserved),
		cmocka_unit_test_teardown(test_longest_line_fits_pipe_buf,
		    restore_stderr),
		cmocka_unit_test_teardown(test_one_write_per_line,
		    restore_stderr),
		cmocka_unit_test_teardown(test_append_file_batches,
		    restore_stderr),
		cmocka_unit_test_teardown(test_new_destination_seen,
		    restore_stderr),
		cmocka_unit_test_teardown(test_reopened_seen_at_once,
		    restore_stderr),
		cmocka_unit_test_teardown(test_short_write_cut_back,
		    restore_stderr),
		cmocka_unit_test_teardown(test_piece_ended,
		    restore_stderr),
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_fatal),
		cmocka_unit_test(test_journal_access_entry),
		cmocka_unit_test(test_journal_priorities),
		cmocka_unit_test(test_journal_truncated),
		cmocka_unit_test(test_journal_unsent_goes_to_stderr),
		cmocka_unit_test(test_journal_stream_parse),
		cmocka_unit_test(test_journal_detect_needs_the_stream),
		cmocka_unit_test(test_journal_full_queue_drops_lines),
		cmocka_unit_test(test_journal_follows_a_restart),
		cmocka_unit_test(test_journal_needs_a_high_descriptor),
	};

	return cmocka_run_group_tests(tests, setup_logging, NULL);
}
