/*
 * log_fuzz.c - libFuzzer target for log value escaping and log lines
 * (src/log.c): the input stands for anything a client can put in a log
 * field (a path, a Host header, a user agent).
 *
 * 1. log_escape_text and log_escape_json, into buffers of several sizes:
 *    the output never holds a byte below 0x20 or from 0x7f up; text is an
 *    unquoted token without blanks, quotes or backslashes, or a closed
 *    quoted string of the escapes log.h lists; JSON is a closed JSON
 *    string of its escapes; either decodes to a prefix of the input, is
 *    cut exactly when that prefix is shorter, and only when the next byte
 *    did not fit.
 * 2. A whole event built from the input (with padding taken from its
 *    first bytes, so that every fill level of a line is reached), written
 *    to a pipe standing in for fd 2: one line of at most LOG_LINE_MAX
 *    bytes, a JSON object with distinct keys or "TIMESTAMP EVENT" and
 *    key=value fields, every field with a value.
 * 3. The same event sent to the journal (log_journal_use(), a datagram
 *    socketpair): the datagram decodes as journald's native protocol,
 *    every name is [A-Z0-9_] and one of the event's own, each once, and
 *    the values a and b are prefixes of the input's halves, byte for
 *    byte; and the input as JOURNAL_STREAM: accepted only as
 *    DIGITS:DIGITS.
 * Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

#define TS_LEN	24	/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */

enum mode { TEXT, JSON };

static int	capture[2] = { -1, -1 };
static int	jsock[2] = { -1, -1 };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (pipe2(capture, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, jsock) == -1)
		abort();
	log_init("fuzz", 1);
	return 0;
}

static bool
plain(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

static bool
needs_hex(unsigned char c)
{
	return (c < 0x20 || c >= 0x7f) && c != '\n' && c != '\r' && c != '\t';
}

/* The length of the escape log.h prescribes for c inside quotes. */
static size_t
escape_len(enum mode mode, unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
		return 2;
	if (c >= 0x20 && c < 0x7f)
		return 1;
	return mode == TEXT ? 4 : 6;
}

/* Decode one value; its length, or -1 if it breaks the grammar. */
static long
decode_value(enum mode mode, const char *p, size_t n, unsigned char *out,
    bool *quoted)
{
	size_t	i, o = 0;
	int	hi, lo, skip;

	*quoted = n >= 1 && p[0] == '"';
	if (!*quoted) {
		if (mode == JSON || n == 0)
			return -1;
		for (i = 0; i < n; i++)
			if (!plain((unsigned char)p[i]))
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
			return -1;
		switch (p[i]) {
		case '"': case '\\':
			out[o++] = (unsigned char)p[i];
			continue;
		case 'n':
			out[o++] = '\n';
			continue;
		case 'r':
			out[o++] = '\r';
			continue;
		case 't':
			out[o++] = '\t';
			continue;
		case 'x':
			if (mode != TEXT)
				return -1;
			skip = 0;
			break;
		case 'u':
			if (mode != JSON || i + 4 >= n - 1 || p[i + 1] != '0' ||
			    p[i + 2] != '0')
				return -1;
			skip = 2;
			break;
		default:
			return -1;
		}
		if (i + skip + 2 >= n - 1)
			return -1;
		hi = util_hex_value((unsigned char)p[i + skip + 1]);
		lo = util_hex_value((unsigned char)p[i + skip + 2]);
		if (hi < 0 || lo < 0 || !needs_hex((unsigned char)(hi * 16 +
		    lo)))
			return -1;
		out[o++] = (unsigned char)(hi * 16 + lo);
		i += (size_t)skip + 2;
	}
	return (long)o;
}

static void
check_escape(enum mode mode, const uint8_t *src, size_t len, size_t dstsz)
{
	char		*dst = malloc(dstsz);
	unsigned char	*dec;
	bool		 cut = !mode, quoted, all_plain = len > 0;
	size_t		 n, i;
	long		 dn;

	CHECK(dst != NULL);
	n = mode == TEXT ? log_escape_text((const char *)src, len, dst, dstsz,
	    &cut) : log_escape_json((const char *)src, len, dst, dstsz, &cut);
	CHECK(n <= dstsz && n >= 1);
	for (i = 0; i < n; i++)
		CHECK((unsigned char)dst[i] >= 0x20 &&
		    (unsigned char)dst[i] < 0x7f);
	CHECK((dec = malloc(n)) != NULL);
	dn = decode_value(mode, dst, n, dec, &quoted);
	CHECK(dn >= 0 && (size_t)dn <= len);
	CHECK(dn == 0 || memcmp(dec, src, (size_t)dn) == 0);
	CHECK(cut == ((size_t)dn < len));
	for (i = 0; i < len && all_plain; i++)
		all_plain = plain(src[i]);
	if (mode == TEXT)
		CHECK(quoted == !all_plain);
	if (cut && quoted)
		CHECK(n + escape_len(mode, src[dn]) > dstsz);
	if (cut && !quoted)
		CHECK(n == dstsz);
	free(dec);
	free(dst);
}

/*
 * A JSON object with distinct keys, every value complete.
 */
struct jp {
	const char	*p;
	size_t		 n, i;
	int		 depth;
};

static bool jvalue(struct jp *);

static bool
jstring(struct jp *j, char *key, size_t keysz)
{
	size_t	k = 0;
	int	h;

	if (j->i >= j->n || j->p[j->i] != '"')
		return false;
	for (j->i++; j->i < j->n; ) {
		unsigned char c = (unsigned char)j->p[j->i++];

		if (c == '"') {
			if (key != NULL)
				key[k] = '\0';
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
			} else if (c == 0 || strchr("\"\\/bfnrt", c) == NULL)
				return false;
		}
		if (key != NULL && k + 1 < keysz)
			key[k++] = (char)c;
	}
	return false;
}

static bool
jdigits(struct jp *j)
{
	size_t	start = j->i;

	while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
		j->i++;
	return j->i > start;
}

static bool
jnumber(struct jp *j)
{
	if (j->i < j->n && j->p[j->i] == '-')
		j->i++;
	if (j->i < j->n && j->p[j->i] == '0')
		j->i++;
	else if (!jdigits(j))
		return false;
	if (j->i < j->n && j->p[j->i] == '.') {
		j->i++;
		if (!jdigits(j))
			return false;
	}
	if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
			j->i++;
		if (!jdigits(j))
			return false;
	}
	return true;
}

static bool
jlit(struct jp *j, const char *s)
{
	size_t	l = strlen(s);

	if (j->n - j->i < l || memcmp(j->p + j->i, s, l) != 0)
		return false;
	j->i += l;
	return true;
}

/* Objects keep their keys to check they are distinct (at most 32). */
static bool
jobject(struct jp *j)
{
	char	keys[32][64];
	size_t	nk = 0, a;

	if (++j->depth > 16)
		return false;
	j->i++;
	if (j->i < j->n && j->p[j->i] == '}') {
		j->i++;
		j->depth--;
		return true;
	}
	for (;;) {
		if (nk >= 32 || !jstring(j, keys[nk], sizeof(keys[nk])))
			return false;
		for (a = 0; a < nk; a++)
			if (strcmp(keys[a], keys[nk]) == 0)
				return false;
		nk++;
		if (!jlit(j, ":") || !jvalue(j))
			return false;
		if (jlit(j, ","))
			continue;
		if (jlit(j, "}"))
			break;
		return false;
	}
	j->depth--;
	return true;
}

static bool
jvalue(struct jp *j)
{
	if (j->i >= j->n)
		return false;
	switch (j->p[j->i]) {
	case '{':
		return jobject(j);
	case '"':
		return jstring(j, NULL, 0);
	case 't':
		return jlit(j, "true");
	case 'f':
		return jlit(j, "false");
	case 'n':
		return jlit(j, "null");
	default:
		return jnumber(j);
	}
}

static void
check_json_line(const char *p, size_t n)
{
	struct jp	j = { p, n, 0, 0 };

	CHECK(n > 0 && p[0] == '{');
	CHECK(jvalue(&j) && j.i == n);
	CHECK(n > 9 + TS_LEN && memcmp(p, "{\"time\":\"", 9) == 0);
}

/* "TIMESTAMP EVENT key=value ...", every value present and well formed. */
static void
check_text_line(const char *p, size_t n)
{
	unsigned char	dec[LOG_LINE_MAX];
	size_t		i = TS_LEN + 1, start;
	bool		quoted;

	CHECK(n > TS_LEN + 1 && p[TS_LEN] == ' ' && p[TS_LEN - 1] == 'Z');
	while (i < n && p[i] != ' ')
		i++;
	while (i < n) {
		CHECK(p[i++] == ' ');
		start = i;
		while (i < n && p[i] >= 'a' && p[i] <= 'z')
			i++;
		CHECK(i > start && i < n && p[i++] == '=');
		start = i;
		if (i < n && p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
			CHECK(i < n);
			i++;
		} else
			while (i < n && p[i] != ' ')
				i++;
		CHECK(i > start);		/* a value, not just "key=" */
		CHECK(decode_value(TEXT, p + start, i - start, dec, &quoted)
		    >= 0);
	}
}

static void
check_event(enum log_format fmt, const uint8_t *data, size_t size)
{
	static char	 pad[LOG_LINE_MAX], line[2 * LOG_LINE_MAX];
	struct log_event ev;
	size_t		 padlen = 0, half, n = 0;
	uint64_t	 num = 0;
	ssize_t		 r;
	int		 saved;

	if (size >= 2)
		padlen = ((size_t)data[0] << 8 | data[1]) % LOG_LINE_MAX;
	memcpy(&num, data, size < 8 ? size : 8);
	half = size / 2;
	memset(pad, 'p', sizeof(pad));
	log_configure(LOG_LEVEL_DEBUG, fmt);
	log_event_begin(&ev, "FUZZ");
	log_event_str(&ev, "pad", pad, padlen);
	log_event_str(&ev, "a", (const char *)data, half);
	log_event_uint(&ev, "n", num);
	log_event_cstr(&ev, "c", "x y");
	log_event_str(&ev, "b", (const char *)data + half, size - half);
	log_event_uint(&ev, "m", size);
	CHECK((saved = dup(STDERR_FILENO)) != -1);
	CHECK(dup2(capture[1], STDERR_FILENO) == STDERR_FILENO);
	log_event_end(&ev);
	dup2(saved, STDERR_FILENO);
	close(saved);
	while ((r = read(capture[0], line + n, sizeof(line) - n)) > 0)
		n += (size_t)r;
	CHECK(r == -1 && errno == EAGAIN);
	CHECK(n >= 2 && n <= LOG_LINE_MAX && line[n - 1] == '\n');
	CHECK(memchr(line, '\n', n - 1) == NULL);
	for (r = 0; (size_t)r < n - 1; r++)
		CHECK((unsigned char)line[r] >= 0x20 &&
		    (unsigned char)line[r] < 0x7f);
	if (fmt == LOG_FORMAT_JSON)
		check_json_line(line, n - 1);
	else
		check_text_line(line, n - 1);
}

/* The names a journal entry of check_journal()'s event may have. */
static const char *const jnames[] = { "MESSAGE", "PRIORITY",
    "SYSLOG_IDENTIFIER", "PORTCULLIS_EVENT", "PORTCULLIS_PAD",
    "PORTCULLIS_A", "PORTCULLIS_N", "PORTCULLIS_C", "PORTCULLIS_B",
    "PORTCULLIS_M", "PORTCULLIS_TRUNCATED" };

static void
check_journal(const uint8_t *data, size_t size)
{
	static char	 pad[LOG_LINE_MAX], dg[4 * LOG_LINE_MAX];
	struct log_event ev;
	size_t		 padlen = 0, half = size / 2, i = 0, k, len, j;
	unsigned	 seen = 0;
	ssize_t		 n;
	uint64_t	 l;
	int		 b;

	if (size >= 2)
		padlen = ((size_t)data[0] << 8 | data[1]) % LOG_LINE_MAX;
	memset(pad, 'p', sizeof(pad));
	log_journal_use(jsock[0]);
	log_event_begin(&ev, "FUZZ");
	log_event_str(&ev, "pad", pad, padlen);
	log_event_str(&ev, "a", (const char *)data, half);
	log_event_uint(&ev, "n", size);
	log_event_cstr(&ev, "c", "x y");
	log_event_str(&ev, "b", (const char *)data + half, size - half);
	log_event_uint(&ev, "m", size);
	log_event_end(&ev);
	log_journal_use(-1);
	n = recv(jsock[1], dg, sizeof(dg), MSG_DONTWAIT);
	CHECK(n > 0);
	while (i < (size_t)n) {
		for (k = i; k < (size_t)n && dg[k] != '=' && dg[k] != '\n'; k++)
			CHECK((dg[k] >= 'A' && dg[k] <= 'Z') || dg[k] == '_' ||
			    (dg[k] >= '0' && dg[k] <= '9'));
		CHECK(k > i && k < (size_t)n);
		for (j = 0; j < nitems(jnames); j++)
			if (strlen(jnames[j]) == k - i &&
			    memcmp(jnames[j], dg + i, k - i) == 0)
				break;
		CHECK(j < nitems(jnames) && !(seen & 1u << j));
		seen |= 1u << j;
		if (dg[k] == '=') {
			const char *nl = memchr(dg + k + 1, '\n',
			    (size_t)n - k - 1);

			CHECK(nl != NULL);
			i = (size_t)(nl - dg) + 1;
			continue;
		}
		CHECK((size_t)n - k - 1 >= 8);
		for (l = 0, b = 7; b >= 0; b--)
			l = l << 8 | (unsigned char)dg[k + 1 + (size_t)b];
		CHECK(l < (uint64_t)n && (size_t)n - k - 9 >= l + 1 &&
		    dg[k + 9 + l] == '\n');
		len = (size_t)l;
		if (j == 5)	/* PORTCULLIS_A */
			CHECK(len <= half && memcmp(dg + k + 9, data, len) == 0);
		if (j == 8)	/* PORTCULLIS_B */
			CHECK(len <= size - half &&
			    memcmp(dg + k + 9, data + half, len) == 0);
		if (j == 0)	/* MESSAGE: one line, no timestamp */
			CHECK(memchr(dg + k + 9, '\n', len) == NULL &&
			    len > 5 && memcmp(dg + k + 9, "FUZZ ", 5) == 0);
		i = k + 9 + len + 1;
	}
	CHECK((seen & 7) == 7);		/* MESSAGE, PRIORITY, identifier */
}

static void
check_journal_stream(const uint8_t *data, size_t size)
{
	char		 s[64];
	uint64_t	 dev, ino;
	size_t		 i, colons = 0;

	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	/* The variable is a C string: it ends at the first NUL. */
	size = strlen(s);
	if (log_journal_stream_parse(s, &dev, &ino) == -1)
		return;
	CHECK(size > 0 && s[0] != ':' && s[size - 1] != ':');
	for (i = 0; i < size; i++) {
		colons += s[i] == ':';
		CHECK(s[i] == ':' || (s[i] >= '0' && s[i] <= '9'));
	}
	CHECK(colons == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t	sizes[] = { 3, 4, 5, 6, 7, 8, 11, 16, 64, 0, 0, 0 };
	size_t	i;

	CHECK(capture[0] != -1);	/* LLVMFuzzerInitialize ran */
	if (size > 64 * 1024)
		return 0;
	sizes[9] = size + 2;
	sizes[10] = 6 * size + 2;	/* never cut */
	sizes[11] = size > 0 ? data[0] % 32 + 3 : 3;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		check_escape(TEXT, data, size, sizes[i]);
		check_escape(JSON, data, size, sizes[i]);
	}
	check_event(LOG_FORMAT_TEXT, data, size);
	check_event(LOG_FORMAT_JSON, data, size);
	check_journal(data, size);
	check_journal_stream(data, size);
	return 0;
}
