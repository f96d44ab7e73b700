/*
 * control_test.c - the master/worker control channel: the pure
 * parser/encoder for every type (the ACME process's too, field by field),
 * send/recv over a real SOCK_SEQPACKET socketpair (master -> worker or
 * ACME process, descriptor passing included, the children's types
 * refused), and report/read over the packet-mode pipe (child -> master,
 * the master's types refused), made by control_open() as the master makes
 * them.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <sys/socket.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "util.h"

#define HDR	sizeof(struct control_hdr)

static struct control_msg
msg_of(enum control_type type, uint64_t gen, uint32_t pid, const char *text)
{
	struct control_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.gen = gen;
	m.pid = pid;
	m.fd = -1;
	if (text != NULL)
		memcpy(m.text, text, strlen(text) + 1);
	return m;
}

/* A raw message: header (type, len) then payload bytes. */
static size_t
raw(unsigned char *buf, uint32_t type, uint32_t len, const void *payload,
    size_t plen)
{
	struct control_hdr h = { type, len };

	memcpy(buf, &h, HDR);
	if (plen > 0)
		memcpy(buf + HDR, payload, plen);
	return HDR + plen;
}

/* Parse from an exact-size heap copy, so ASan sees a read past len. */
static int
parse(const unsigned char *buf, size_t len, struct control_msg *m)
{
	unsigned char	*copy = malloc(len > 0 ? len : 1);
	int		 rc;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	memset(m, 0xa5, sizeof(*m));
	rc = control_parse(copy, len, m);
	free(copy);
	assert_true(rc == 0 || rc == -1);
	/* Whatever the outcome, no descriptor comes out of the bytes. */
	assert_int_equal(m->fd, -1);
	return rc;
}

static void
expect_reject(const unsigned char *buf, size_t len, const char *what)
{
	struct control_msg m;

	if (parse(buf, len, &m) != -1)
		fail_msg("accepted: %s", what);
}

/* The payload size each type must have on the wire. */
static size_t
wire_payload(const struct control_msg *m)
{
	switch (m->type) {
	case CONTROL_READY:
	case CONTROL_SIGNER_KEYS:
		return 12;
	case CONTROL_CONFIG:
	case CONTROL_ACK:
		return 8;
	case CONTROL_NACK:
		return 8 + strlen(m->text);
	case CONTROL_DRAIN:
	case CONTROL_REOPEN_LOG:
		return 0;
	case CONTROL_ACME_CONFIG:
	case CONTROL_SIGNER_CHANNEL:
		return 8;
	case CONTROL_ACME_PUBLISHED:
	case CONTROL_ACME_STATE:
	case CONTROL_ACME_RENEWED:
		return CONTROL_ACME_WIRE + strlen(m->text);
	case CONTROL_ACME_CHALLENGE:
	case CONTROL_ACME_WITHDRAW:
	case CONTROL_ACME_ISSUED:
	case CONTROL_ACME_RENEW:
	case CONTROL_ACME_ATTEMPT:
		return CONTROL_ACME_WIRE;
	}
	fail_msg("bad type %d", (int)m->type);
	return 0;
}

static bool
is_acme(enum control_type t)
{
	return (t >= CONTROL_ACME_CHALLENGE && t <= CONTROL_ACME_RENEWED) ||
	    t == CONTROL_ACME_ATTEMPT;
}

static void
assert_msg_equal(const struct control_msg *a, const struct control_msg *b)
{
	assert_int_equal(a->type, b->type);
	if (a->type == CONTROL_DRAIN || a->type == CONTROL_REOPEN_LOG)
		return;
	assert_true(a->gen == b->gen);
	if (a->type == CONTROL_READY)
		assert_int_equal(a->pid, b->pid);
	if (a->type == CONTROL_NACK || is_acme(a->type))
		assert_string_equal(a->text, b->text);
	if (is_acme(a->type)) {
		/* The samples use only the fields of their type. */
		assert_int_equal(a->acme.id, b->acme.id);
		assert_int_equal(a->acme.listener, b->acme.listener);
		assert_int_equal(a->acme.type, b->acme.type);
		assert_int_equal(a->acme.ok, b->acme.ok);
		assert_true(a->acme.not_after == b->acme.not_after);
		assert_true(a->acme.next == b->acme.next);
		assert_string_equal(a->acme.name, b->acme.name);
		assert_string_equal(a->acme.token, b->acme.token);
		assert_string_equal(a->acme.keyauth, b->acme.keyauth);
		assert_memory_equal(a->acme.digest, b->acme.digest, 32);
	}
}

static struct control_msg
acme_of(enum control_type type, uint32_t id, uint32_t listener,
    const char *name, const char *text)
{
	struct control_msg m = msg_of(type, 0, 0, text);

	m.acme.id = id;
	m.acme.listener = listener;
	if (name != NULL)
		memcpy(m.acme.name, name, strlen(name) + 1);
	return m;
}

/* The fields of struct control_acme each ACME type uses (control.h). */
enum { U_ID = 1, U_LISTENER = 2, U_TYPE = 4, U_OK = 8, U_TIMES = 16,
    U_NAME = 32, U_TEXT = 64 };

static unsigned
acme_used(enum control_type t)
{
	switch (t) {
	case CONTROL_ACME_CHALLENGE:
		return U_ID | U_LISTENER | U_TYPE | U_NAME;
	case CONTROL_ACME_PUBLISHED:
	case CONTROL_ACME_RENEWED:
		return U_ID | U_OK | U_TEXT;
	case CONTROL_ACME_WITHDRAW:
		return U_ID;
	case CONTROL_ACME_ISSUED:
		return U_LISTENER | U_NAME;
	case CONTROL_ACME_STATE:
		return U_LISTENER | U_TIMES | U_NAME | U_TEXT;
	case CONTROL_ACME_RENEW:
		return U_ID | U_NAME;
	case CONTROL_ACME_ATTEMPT:
		return U_LISTENER | U_OK | U_NAME;
	default:
		fail_msg("not an ACME type: %d", (int)t);
		return 0;
	}
}

/* Set one string of a message, checked against its array. */
#define SETS(field, str) do {						\
	assert_true(strlen(str) < sizeof(field));			\
	memcpy((field), (str), strlen(str) + 1);			\
} while (0)

static struct control_msg *
sample_msgs(size_t *n)
{
	static char	 longtext[CONTROL_TEXT_MAX + 1];
	static char	 longname[CONTROL_NAME_MAX + 1];
	static char	 longtok[CONTROL_TOKEN_MAX + 1];
	static char	 longka[CONTROL_KEYAUTH_MAX + 1];
	static struct control_msg m[28];
	size_t		 i = 0, k;

	memset(longtext, '~', CONTROL_TEXT_MAX);
	longtext[0] = ' ';
	longtext[CONTROL_TEXT_MAX] = '\0';
	m[i++] = msg_of(CONTROL_READY, 1, 12345, NULL);
	m[i++] = msg_of(CONTROL_READY, UINT64_MAX, UINT32_MAX, NULL);
	m[i++] = msg_of(CONTROL_CONFIG, 0x0102030405060708ULL, 0, NULL);
	m[i++] = msg_of(CONTROL_ACK, 7, 0, NULL);
	m[i++] = msg_of(CONTROL_NACK, 8, 0, "");
	m[i++] = msg_of(CONTROL_NACK, 9, 0, "site \"a.com\": cannot load key");
	m[i++] = msg_of(CONTROL_NACK, 10, 0, longtext);
	m[i++] = msg_of(CONTROL_DRAIN, 0, 0, NULL);
	m[i++] = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	m[i++] = msg_of(CONTROL_ACME_CONFIG, 42, 0, NULL);
	m[i++] = msg_of(CONTROL_SIGNER_KEYS, 43, 0, NULL);
	m[i++] = msg_of(CONTROL_SIGNER_CHANNEL, 3, 0, NULL);
	memset(longname, 'a', CONTROL_NAME_MAX);
	memset(longtok, 'T', CONTROL_TOKEN_MAX);
	memset(longka, 'K', CONTROL_KEYAUTH_MAX);
	m[i] = acme_of(CONTROL_ACME_CHALLENGE, 7, 1, "example.com", NULL);
	m[i].acme.type = CONFIG_ACME_HTTP_01;
	SETS(m[i].acme.token, "tok-_en");
	SETS(m[i].acme.keyauth, "tok-_en.thumb");
	i++;
	m[i] = acme_of(CONTROL_ACME_CHALLENGE, UINT32_MAX, UINT32_MAX,
	    longname, NULL);
	m[i].acme.type = CONFIG_ACME_HTTP_01;
	SETS(m[i].acme.token, longtok);
	SETS(m[i].acme.keyauth, longka);
	i++;
	m[i] = acme_of(CONTROL_ACME_CHALLENGE, 8, 0, "a.example", NULL);
	m[i].acme.type = CONFIG_ACME_TLS_ALPN_01;
	for (k = 0; k < 32; k++)
		m[i].acme.digest[k] = (unsigned char)(k * 7 + 1);
	i++;
	m[i++] = acme_of(CONTROL_ACME_PUBLISHED, 7, 0, NULL, "");
	m[i] = acme_of(CONTROL_ACME_PUBLISHED, 8, 0, NULL,
	    "worker 2 timed out");
	m[i++].acme.ok = 0;
	m[i] = acme_of(CONTROL_ACME_PUBLISHED, 9, 0, NULL, "");
	m[i++].acme.ok = 1;
	m[i++] = acme_of(CONTROL_ACME_WITHDRAW, 7, 0, NULL, NULL);
	m[i++] = acme_of(CONTROL_ACME_ISSUED, 0, 3, "example.com", NULL);
	m[i] = acme_of(CONTROL_ACME_STATE, 0, 2, "example.com", longtext);
	m[i].acme.not_after = 1900000000;
	m[i++].acme.next = INT64_MAX;
	m[i++] = acme_of(CONTROL_ACME_STATE, 0, 0, longname, "");
	m[i++] = acme_of(CONTROL_ACME_RENEW, 5, 0, "", NULL);
	m[i++] = acme_of(CONTROL_ACME_RENEW, 6, 0, "git.example.com", NULL);
	m[i] = acme_of(CONTROL_ACME_RENEWED, 6, 0, NULL, "");
	m[i++].acme.ok = 1;
	m[i++] = acme_of(CONTROL_ACME_RENEWED, 5, 0, NULL,
	    "example.com: urn:ietf:params:acme:error:rejectedIdentifier");
	m[i] = acme_of(CONTROL_ACME_ATTEMPT, 0, 1, "example.com", NULL);
	m[i++].acme.ok = 1;
	m[i++] = acme_of(CONTROL_ACME_ATTEMPT, 0, 0, longname, NULL);
	assert_true(i <= nitems(m));
	*n = i;
	return m;
}

static void
test_encode_parse_round_trip(void **state)
{
	unsigned char	 buf[CONTROL_MSG_MAX], again[CONTROL_MSG_MAX];
	struct control_msg	*m, out;
	struct control_hdr	 h;
	size_t		 i, n, len;

	(void)state;
	m = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		len = control_encode(&m[i], buf);
		assert_int_equal(len, HDR + wire_payload(&m[i]));
		assert_true(len <= CONTROL_MSG_MAX);
		memcpy(&h, buf, HDR);
		assert_int_equal(h.type, m[i].type);
		assert_int_equal(h.len, len - HDR);
		assert_int_equal(parse(buf, len, &out), 0);
		assert_msg_equal(&m[i], &out);
		assert_int_equal(control_encode(&out, again), len);
		assert_memory_equal(buf, again, len);
	}
}

/* The layout both ends agree on: gen then pid, right after the header. */
static void
test_wire_layout(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_READY, 0x1122334455667788ULL,
				    4242, NULL);
	uint64_t	gen;
	uint32_t	pid;

	(void)state;
	assert_int_equal(control_encode(&m, buf), HDR + 12);
	memcpy(&gen, buf + HDR, 8);
	memcpy(&pid, buf + HDR + 8, 4);
	assert_true(gen == m.gen);
	assert_int_equal(pid, 4242);
	/* A bound on every message, and small enough for one pipe write. */
	assert_true(CONTROL_MSG_MAX >= HDR + CONTROL_ACME_WIRE +
	    CONTROL_TEXT_MAX);
	assert_true(CONTROL_MSG_MAX <= PIPE_BUF);
}

/* The ACME layout: u32 id listener type ok, i64 not_after next, strings
 * in fields of their array sizes, the digest, then text. */
static void
test_acme_wire_layout(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = acme_of(CONTROL_ACME_STATE, 0, 0x01020304,
				    "x.example", "why");
	const size_t	name = 32, token = name + CONTROL_NAME_MAX + 1;
	const size_t	keyauth = token + CONTROL_TOKEN_MAX + 1;
	const size_t	digest = keyauth + CONTROL_KEYAUTH_MAX + 1;
	uint32_t	u;
	int64_t		t;

	(void)state;
	m.acme.not_after = 1234567890123LL;
	m.acme.next = 99;
	assert_int_equal(control_encode(&m, buf), HDR + CONTROL_ACME_WIRE + 3);
	assert_int_equal(digest + 32, CONTROL_ACME_WIRE);
	memcpy(&u, buf + HDR + 4, 4);
	assert_int_equal(u, 0x01020304);
	memcpy(&t, buf + HDR + 16, 8);
	assert_true(t == 1234567890123LL);
	memcpy(&t, buf + HDR + 24, 8);
	assert_true(t == 99);
	assert_memory_equal(buf + HDR + name, "x.example", 10);
	assert_memory_equal(buf + HDR + CONTROL_ACME_WIRE, "why", 3);

	m = acme_of(CONTROL_ACME_CHALLENGE, 0x0a0b0c0d, 1, "y", NULL);
	m.acme.type = CONFIG_ACME_HTTP_01;
	SETS(m.acme.token, "tt");
	SETS(m.acme.keyauth, "tt.kk");
	assert_int_equal(control_encode(&m, buf), HDR + CONTROL_ACME_WIRE);
	memcpy(&u, buf + HDR, 4);
	assert_int_equal(u, 0x0a0b0c0d);
	memcpy(&u, buf + HDR + 8, 4);
	assert_int_equal(u, CONFIG_ACME_HTTP_01);
	assert_memory_equal(buf + HDR + token, "tt", 3);
	assert_memory_equal(buf + HDR + keyauth, "tt.kk", 6);

	m = msg_of(CONTROL_ACME_CONFIG, 0x1122334455667788ULL, 0, NULL);
	assert_int_equal(control_encode(&m, buf), HDR + 8);
}

/*
 * The encoder writes only what a type uses: garbage a caller left in the
 * other fields (or text on a type without it) never reaches the wire,
 * and what it writes parses back.
 */
static void
test_acme_encode_unused_fields(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX], clean[CONTROL_MSG_MAX];
	struct control_msg	*all, m, out;
	size_t		i, n, len;
	unsigned	u;

	(void)state;
	all = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		if (!is_acme(all[i].type))
			continue;
		len = control_encode(&all[i], clean);
		m = all[i];
		u = acme_used(m.type);
		/* Fill every field the type does not use. */
		if (!(u & U_ID))
			m.acme.id = 77;
		if (!(u & U_LISTENER))
			m.acme.listener = 5;
		if (!(u & U_OK))
			m.acme.ok = 3;
		if (!(u & U_TIMES)) {
			m.acme.not_after = -1;
			m.acme.next = 17;
		}
		if (!(u & U_NAME))
			SETS(m.acme.name, "garbage.example");
		if (!(u & U_TEXT))
			SETS(m.text, "leftover");
		if (!(u & U_TYPE))
			m.acme.type = 9;
		if (!(u & U_TYPE) || m.acme.type == CONFIG_ACME_TLS_ALPN_01) {
			memset(m.acme.token, 'g', sizeof(m.acme.token));
			memset(m.acme.keyauth, '\n', sizeof(m.acme.keyauth));
		}
		if (!(u & U_TYPE) || m.acme.type == CONFIG_ACME_HTTP_01)
			memset(m.acme.digest, 0xee, 32);
		assert_int_equal(control_encode(&m, buf), len);
		assert_memory_equal(buf, clean, len);
		assert_int_equal(parse(buf, len, &out), 0);
		assert_msg_equal(&all[i], &out);
	}
}

static void
test_parse_wrong_lengths(void **state)
{
	static const uint32_t types[] = { CONTROL_READY, CONTROL_CONFIG,
	    CONTROL_ACK, CONTROL_DRAIN, CONTROL_REOPEN_LOG,
	    CONTROL_ACME_CONFIG, CONTROL_SIGNER_KEYS, CONTROL_SIGNER_CHANNEL };
	unsigned char	buf[CONTROL_MSG_MAX + 16];
	unsigned char	zero[CONTROL_MSG_MAX] = { 0 };
	struct control_msg	m, ok;
	size_t		i, len, want;
	uint32_t	plen;

	(void)state;
	for (i = 0; i < nitems(types); i++) {
		ok = msg_of((enum control_type)types[i], 1, 1, NULL);
		want = wire_payload(&ok);
		/* Consistent headers, wrong payload sizes. */
		for (plen = 0; plen <= 16; plen++) {
			len = raw(buf, types[i], plen, zero, plen);
			if (plen == want)
				assert_int_equal(parse(buf, len, &m), 0);
			else
				expect_reject(buf, len, "wrong payload size");
		}
		/* The header disagrees with the bytes received. */
		len = raw(buf, types[i], (uint32_t)want, zero, want);
		expect_reject(buf, len - 1 < HDR ? HDR - 1 : len - 1,
		    "short");
		buf[len] = 0;
		expect_reject(buf, len + 1, "long");
		raw(buf, types[i], (uint32_t)want + 1, zero, want);
		expect_reject(buf, len, "header says one more");
		raw(buf, types[i], UINT32_MAX, zero, want);
		expect_reject(buf, len, "header says 4 GiB");
	}
	/* Shorter than a header. */
	memset(buf, 0, sizeof(buf));
	for (len = 0; len < HDR; len++)
		expect_reject(buf, len, "shorter than a header");
	raw(buf, CONTROL_DRAIN, 0, NULL, 0);
	for (len = 0; len < HDR; len++)
		expect_reject(buf, len, "truncated header");
	assert_int_equal(parse(buf, HDR, &m), 0);
	assert_int_equal(m.type, CONTROL_DRAIN);
}

static void
test_parse_unknown_types(void **state)
{
	static const uint32_t types[] = { 0, CONTROL_TYPE_MAX + 1,
	    CONTROL_TYPE_MAX + 2, 255, 256, 0x10000 | CONTROL_READY,
	    0x80000000u | CONTROL_ACK, 0x10000 | CONTROL_ACME_WITHDRAW,
	    UINT32_MAX };
	unsigned char	buf[CONTROL_MSG_MAX], zero[16] = { 0 };
	size_t		i, plen;

	(void)state;
	for (i = 0; i < nitems(types); i++)
		for (plen = 0; plen <= 12; plen += 4)
			expect_reject(buf, raw(buf, types[i], (uint32_t)plen,
			    zero, plen), "unknown type");
}

static void
test_nack_text(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX + 16], payload[CONTROL_MSG_MAX];
	struct control_msg	m;
	size_t		len;
	unsigned	c;

	(void)state;
	memset(payload, 0, 8);
	/* A NACK needs its generation. */
	for (len = 0; len < 8; len++)
		expect_reject(buf, raw(buf, CONTROL_NACK, (uint32_t)len,
		    payload, len), "NACK without gen");
	/* Text length: 0 and CONTROL_TEXT_MAX are fine, one more is not. */
	memset(payload + 8, 'x', CONTROL_TEXT_MAX + 1);
	len = raw(buf, CONTROL_NACK, 8, payload, 8);
	assert_int_equal(parse(buf, len, &m), 0);
	assert_string_equal(m.text, "");
	len = raw(buf, CONTROL_NACK, 8 + CONTROL_TEXT_MAX, payload,
	    8 + CONTROL_TEXT_MAX);
	assert_int_equal(parse(buf, len, &m), 0);
	assert_int_equal(strlen(m.text), CONTROL_TEXT_MAX);
	assert_int_equal(m.text[CONTROL_TEXT_MAX], '\0');
	len = raw(buf, CONTROL_NACK, 8 + CONTROL_TEXT_MAX + 1, payload,
	    8 + CONTROL_TEXT_MAX + 1);
	expect_reject(buf, len, "NACK text one too long");

	/* Every byte value in the middle of a text. */
	memcpy(payload + 8, "abc?def", 7);
	for (c = 0; c < 256; c++) {
		payload[8 + 3] = (unsigned char)c;
		len = raw(buf, CONTROL_NACK, 15, payload, 15);
		if (c >= 0x20 && c <= 0x7e) {
			assert_int_equal(parse(buf, len, &m), 0);
			assert_int_equal((unsigned char)m.text[3], c);
			assert_int_equal(strlen(m.text), 7);
		} else
			expect_reject(buf, len, "non-printable NACK text");
	}
	/* A NUL at the very end, as a C string would have it. */
	memcpy(payload + 8, "abc\0", 4);
	expect_reject(buf, raw(buf, CONTROL_NACK, 12, payload, 12),
	    "NUL-terminated text");
}

/* The encoder never reads past CONTROL_TEXT_MAX, terminator or not. */
static void
test_nack_encode_bounds(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_NACK, 3, 0, NULL), out;

	(void)state;
	memset(m.text, 'y', sizeof(m.text));	/* no terminator at all */
	assert_int_equal(control_encode(&m, buf), HDR + 8 + CONTROL_TEXT_MAX);
	assert_int_equal(parse(buf, HDR + 8 + CONTROL_TEXT_MAX, &out), 0);
	assert_int_equal(strlen(out.text), CONTROL_TEXT_MAX);
}

/* Offsets in an ACME payload (control.h). */
#define O_ID		0
#define O_LISTENER	4
#define O_TYPE		8
#define O_OK		12
#define O_NOT_AFTER	16
#define O_NEXT		24
#define O_NAME		32
#define O_TOKEN		(O_NAME + CONTROL_NAME_MAX + 1)
#define O_KEYAUTH	(O_TOKEN + CONTROL_TOKEN_MAX + 1)
#define O_DIGEST	(O_KEYAUTH + CONTROL_KEYAUTH_MAX + 1)

/* Encode m, apply one change at payload offset off, expect a refusal. */
static void
acme_reject_with(const struct control_msg *m, size_t off, const void *bytes,
    size_t n, const char *what)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	size_t		len = control_encode(m, buf);
	struct control_msg	out;

	assert_int_equal(parse(buf, len, &out), 0);
	assert_true(HDR + off + n <= len);
	memcpy(buf + HDR + off, bytes, n);
	expect_reject(buf, len, what);
}

static void
test_acme_parse_strict(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX + 8];
	unsigned char	field[CONTROL_KEYAUTH_MAX + 1];
	struct control_msg	http, alpn, m, out;
	struct control_msg	*all;
	const uint32_t	one = 1, two = 2;
	const int64_t	minus = -1;
	const unsigned char nonzero = 1;
	size_t		i, n, len;
	unsigned	c;

	(void)state;
	http = acme_of(CONTROL_ACME_CHALLENGE, 1, 0, "example.com", NULL);
	http.acme.type = CONFIG_ACME_HTTP_01;
	SETS(http.acme.token, "abc");
	SETS(http.acme.keyauth, "abc.def");
	alpn = acme_of(CONTROL_ACME_CHALLENGE, 2, 0, "example.com", NULL);
	alpn.acme.type = CONFIG_ACME_TLS_ALPN_01;
	alpn.acme.digest[0] = 9;

	/* A string without its NUL, in each field. */
	memset(field, 'a', sizeof(field));
	acme_reject_with(&http, O_NAME, field, CONTROL_NAME_MAX + 1,
	    "name without NUL");
	acme_reject_with(&http, O_TOKEN, field, CONTROL_TOKEN_MAX + 1,
	    "token without NUL");
	acme_reject_with(&http, O_KEYAUTH, field, CONTROL_KEYAUTH_MAX + 1,
	    "keyauth without NUL");
	/* Bytes after the NUL. */
	acme_reject_with(&http, O_NAME + 20, "x", 1, "name: byte after NUL");
	acme_reject_with(&http, O_TOKEN + CONTROL_TOKEN_MAX, "x", 1,
	    "token: last byte after NUL");
	acme_reject_with(&http, O_KEYAUTH + 8, "x", 1,
	    "keyauth: byte after NUL");
	/* Every byte value inside a name. */
	for (c = 0; c < 256; c++) {
		unsigned char b = (unsigned char)c;

		m = http;
		len = control_encode(&m, buf);
		buf[HDR + O_NAME + 3] = b;
		if (c >= 0x20 && c <= 0x7e) {
			assert_int_equal(parse(buf, len, &out), 0);
			assert_int_equal((unsigned char)out.acme.name[3], c);
		} else if (c == 0) {
			/* "exa" then zeros but "ple.com" after: refused. */
			expect_reject(buf, len, "NUL inside the name");
		} else
			expect_reject(buf, len, "non-printable name");
	}

	/* CHALLENGE: the type, and the fields of each type. */
	acme_reject_with(&http, O_TYPE, &two, 4, "challenge type 2");
	acme_reject_with(&http, O_DIGEST + 31, &nonzero, 1,
	    "http-01 with a digest");
	acme_reject_with(&alpn, O_TOKEN, "t", 1, "tls-alpn-01 with a token");
	acme_reject_with(&alpn, O_KEYAUTH, "k", 1,
	    "tls-alpn-01 with a keyauth");
	m = http;
	m.acme.token[0] = '\0';
	len = control_encode(&m, buf);
	expect_reject(buf, len, "http-01 without a token");
	m = http;
	m.acme.keyauth[0] = '\0';
	expect_reject(buf, control_encode(&m, buf), "http-01 without keyauth");
	m = http;
	m.acme.name[0] = '\0';
	expect_reject(buf, control_encode(&m, buf), "challenge without name");
	m = acme_of(CONTROL_ACME_ISSUED, 0, 1, "", NULL);
	expect_reject(buf, control_encode(&m, buf), "issued without name");
	m = acme_of(CONTROL_ACME_STATE, 0, 1, "", NULL);
	expect_reject(buf, control_encode(&m, buf), "state without name");
	m = acme_of(CONTROL_ACME_RENEW, 3, 0, "", NULL);
	assert_int_equal(parse(buf, control_encode(&m, buf), &out), 0);
	m = acme_of(CONTROL_ACME_ATTEMPT, 0, 1, "", NULL);
	expect_reject(buf, control_encode(&m, buf), "attempt without name");
	m = acme_of(CONTROL_ACME_ATTEMPT, 0, 1, "x.example", NULL);
	acme_reject_with(&m, O_ID, &one, 4, "attempt: id");
	acme_reject_with(&m, O_OK, &two, 4, "attempt: ok 2");
	acme_reject_with(&m, O_NEXT + 7, &nonzero, 1, "attempt: next");

	/* Fields a type does not use are zero. */
	m = acme_of(CONTROL_ACME_WITHDRAW, 4, 0, NULL, NULL);
	acme_reject_with(&m, O_LISTENER, &one, 4, "withdraw: listener");
	acme_reject_with(&m, O_TYPE, &one, 4, "withdraw: type");
	acme_reject_with(&m, O_OK, &one, 4, "withdraw: ok");
	acme_reject_with(&m, O_NOT_AFTER, &one, 4, "withdraw: not_after");
	acme_reject_with(&m, O_NEXT + 7, &nonzero, 1, "withdraw: next");
	acme_reject_with(&m, O_NAME, "a", 1, "withdraw: name");
	acme_reject_with(&m, O_DIGEST, &nonzero, 1, "withdraw: digest");
	m = acme_of(CONTROL_ACME_ISSUED, 0, 2, "x.example", NULL);
	acme_reject_with(&m, O_ID, &one, 4, "issued: id");
	/* ok is 0 or 1; times are not negative. */
	m = acme_of(CONTROL_ACME_PUBLISHED, 4, 0, NULL, "");
	acme_reject_with(&m, O_OK, &two, 4, "ok 2");
	m = acme_of(CONTROL_ACME_STATE, 0, 0, "x.example", "");
	acme_reject_with(&m, O_NOT_AFTER, &minus, 8, "negative not_after");
	acme_reject_with(&m, O_NEXT, &minus, 8, "negative next");

	/* Text: only on its types, printable, at most CONTROL_TEXT_MAX. */
	m = acme_of(CONTROL_ACME_STATE, 0, 0, "x.example", "");
	len = control_encode(&m, buf);
	memset(buf + len, 'e', CONTROL_TEXT_MAX + 1);
	for (i = 0; i <= CONTROL_TEXT_MAX + 1; i++) {
		struct control_hdr h = { CONTROL_ACME_STATE,
		    (uint32_t)(CONTROL_ACME_WIRE + i) };

		memcpy(buf, &h, HDR);
		if (i <= CONTROL_TEXT_MAX)
			assert_int_equal(parse(buf, len + i, &out), 0);
		else
			expect_reject(buf, len + i, "text one too long");
	}
	buf[len + 5] = '\n';
	expect_reject(buf, len + CONTROL_TEXT_MAX, "text with a newline");
	buf[len + 5] = 'e';
	buf[len + CONTROL_TEXT_MAX - 1] = '\0';
	expect_reject(buf, len + CONTROL_TEXT_MAX, "NUL-terminated text");
	all = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		struct control_hdr h;

		if (!is_acme(all[i].type))
			continue;
		len = control_encode(&all[i], buf);
		/* One byte short of the fixed part. */
		h.type = all[i].type;
		h.len = CONTROL_ACME_WIRE - 1;
		memcpy(buf, &h, HDR);
		expect_reject(buf, HDR + CONTROL_ACME_WIRE - 1, "short ACME");
		if (acme_used(all[i].type) & U_TEXT)
			continue;
		/* A byte of text where there is none. */
		len = control_encode(&all[i], buf);
		buf[len] = 'x';
		h.len = CONTROL_ACME_WIRE + 1;
		memcpy(buf, &h, HDR);
		expect_reject(buf, len + 1, "text on a type without");
	}
}

/*
 * Over a socketpair.
 */

static void
seqpacket_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
}

static int
count_fds(void)
{
	struct dirent	*de;
	DIR		*d = opendir("/proc/self/fd");
	int		 n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Send raw bytes with any number of descriptors attached. */
static void
send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(8 * sizeof(int))];
	} cm;
	struct iovec	iov = { (void *)(uintptr_t)buf, len };
	struct msghdr	msg;

	assert_true(nfds <= 8);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (nfds > 0) {
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm.hdr.cmsg_len = CMSG_LEN(nfds * sizeof(int));
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cm.hdr), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)len);
}

/* True if nobody holds the write end of pipe p anymore. */
static bool
writers_gone(int rfd)
{
	char	c;
	ssize_t	n;

	assert_int_equal(util_set_nonblock(rfd), 0);
	n = read(rfd, &c, 1);
	if (n == -1)
		assert_int_equal(errno, EAGAIN);
	return n == 0;
}

/* The types with a descriptor (control.h). */
static bool
carries_fd(enum control_type t)
{
	return t == CONTROL_REOPEN_LOG || t == CONTROL_ACME_CONFIG ||
	    t == CONTROL_SIGNER_KEYS || t == CONTROL_SIGNER_CHANNEL;
}

static bool
sent_by_master(enum control_type t)
{
	return t == CONTROL_CONFIG || t == CONTROL_DRAIN ||
	    t == CONTROL_REOPEN_LOG || t == CONTROL_ACME_CONFIG ||
	    t == CONTROL_ACME_PUBLISHED || t == CONTROL_ACME_RENEW ||
	    t == CONTROL_SIGNER_KEYS || t == CONTROL_SIGNER_CHANNEL;
}

static void
test_send_recv_every_type(void **state)
{
	struct control_msg	*m, out;
	size_t		 i, n;
	int		 sv[2];

	(void)state;
	seqpacket_pair(sv);
	m = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		if (carries_fd(m[i].type))
			continue;		/* needs a descriptor */
		assert_int_equal(control_send(sv[0], &m[i]), 0);
		memset(&out, 0x5a, sizeof(out));
		if (!sent_by_master(m[i].type)) {
			/* What only a child sends is refused. */
			errno = 0;
			assert_int_equal(control_recv(sv[1], &out), -1);
			assert_int_equal(errno, EPROTO);
			continue;
		}
		assert_int_equal(control_recv(sv[1], &out), 1);
		assert_msg_equal(&m[i], &out);
		assert_int_equal(out.fd, -1);
	}
	/* Both directions, and the convenience constructor. */
	assert_int_equal(control_send_gen(sv[1], CONTROL_CONFIG, 99), 0);
	assert_int_equal(control_recv(sv[0], &out), 1);
	assert_int_equal(out.type, CONTROL_CONFIG);
	assert_true(out.gen == 99);
	assert_int_equal(out.fd, -1);
	close(sv[0]);
	close(sv[1]);
}

/* Several messages queued keep their boundaries and their order. */
static void
test_message_boundaries(void **state)
{
	struct control_msg	out;
	uint64_t	g;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	for (g = 1; g <= 20; g++)
		assert_int_equal(control_send_gen(sv[0],
		    g % 2 ? CONTROL_CONFIG : CONTROL_DRAIN, g), 0);
	for (g = 1; g <= 20; g++) {
		assert_int_equal(control_recv(sv[1], &out), 1);
		assert_int_equal(out.type,
		    g % 2 ? CONTROL_CONFIG : CONTROL_DRAIN);
		assert_true(out.gen == (g % 2 ? g : 0));
	}
	close(sv[0]);
	close(sv[1]);
}

static void
test_reopen_log_passes_fd(void **state)
{
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	char		buf[32];
	int		sv[2], p[2], before;

	(void)state;
	seqpacket_pair(sv);
	assert_int_equal(pipe(p), 0);
	m.fd = p[1];
	assert_int_equal(control_send(sv[0], &m), 0);
	close(p[1]);			/* only the passed copy is left */
	before = count_fds();
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_int_equal(out.type, CONTROL_REOPEN_LOG);
	assert_true(out.fd >= 0);
	assert_int_equal(count_fds(), before + 1);
	/* Close-on-exec: a worker re-executes itself. */
	assert_int_equal(fcntl(out.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(write(out.fd, "new log\n", 8), 8);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "new log\n", 8);
	close(out.fd);
	assert_true(writers_gone(p[0]));
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

/* ACME_CONFIG carries its image's memfd, SIGNER_KEYS its key set's and
 * SIGNER_CHANNEL a channel; each must. */
static void
test_acme_config_passes_fd(void **state)
{
	static const enum control_type types[] = { CONTROL_ACME_CONFIG,
	    CONTROL_SIGNER_KEYS, CONTROL_SIGNER_CHANNEL };
	struct control_msg	m, out;
	char		got[16];
	size_t		i;
	int		sv[2], fd;

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < nitems(types); i++) {
		m = msg_of(types[i], 12 + i, 0, NULL);
		assert_true((fd = memfd_create("image", MFD_CLOEXEC)) >= 0);
		assert_int_equal(write(fd, "image bytes", 11), 11);
		m.fd = fd;
		assert_int_equal(control_send(sv[0], &m), 0);
		close(fd);
		assert_int_equal(control_recv(sv[1], &out), 1);
		assert_int_equal(out.type, types[i]);
		assert_true(out.gen == 12 + i);
		assert_true(out.fd >= 0);
		assert_int_equal(fcntl(out.fd, F_GETFD) & FD_CLOEXEC,
		    FD_CLOEXEC);
		assert_int_equal(pread(out.fd, got, sizeof(got), 0), 11);
		assert_memory_equal(got, "image bytes", 11);
		close(out.fd);
		/* It is never reported (test_fd_types_without_fd: and never
		 * received without its descriptor). */
		m.fd = -1;
		errno = 0;
		assert_int_equal(control_report(sv[0], &m), -1);
		assert_int_equal(errno, EINVAL);
	}
	close(sv[0]);
	close(sv[1]);
}

/* A descriptor on anything but REOPEN_LOG or ACME_CONFIG: EPROTO, and it
 * is closed. */
static void
test_fd_on_wrong_type_is_closed(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m, out;
	size_t		len, i, n;
	int		sv[2], p[2], before;
	struct control_msg	*all = sample_msgs(&n);

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < n; i++) {
		if (carries_fd(all[i].type))
			continue;
		m = all[i];
		len = control_encode(&m, buf);
		assert_int_equal(pipe(p), 0);
		before = count_fds();
		send_raw(sv[0], buf, len, &p[1], 1);
		close(p[1]);
		errno = 0;
		assert_int_equal(control_recv(sv[1], &out), -1);
		assert_int_equal(errno, EPROTO);
		assert_int_equal(count_fds(), before - 1);
		assert_true(writers_gone(p[0]));
		close(p[0]);
	}
	/* The channel is still usable after a bad message. */
	assert_int_equal(control_send_gen(sv[0], CONTROL_CONFIG, 5), 0);
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.gen == 5);
	close(sv[0]);
	close(sv[1]);
}

/* REOPEN_LOG and ACME_CONFIG without their descriptor: refused. */
static void
test_fd_types_without_fd(void **state)
{
	static const enum control_type types[] = { CONTROL_REOPEN_LOG,
	    CONTROL_ACME_CONFIG, CONTROL_SIGNER_KEYS, CONTROL_SIGNER_CHANNEL };
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m, out;
	size_t		i;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < nitems(types); i++) {
		m = msg_of(types[i], 1, 0, NULL);
		/* control_send attaches nothing for fd -1 ... */
		assert_int_equal(control_send(sv[0], &m), 0);
		errno = 0;
		assert_int_equal(control_recv(sv[1], &out), -1);
		assert_int_equal(errno, EPROTO);
		/* ... and the same bytes sent by hand fare no better. */
		send_raw(sv[0], buf, control_encode(&m, buf), NULL, 0);
		errno = 0;
		assert_int_equal(control_recv(sv[1], &out), -1);
		assert_int_equal(errno, EPROTO);
	}
	close(sv[0]);
	close(sv[1]);
}

/* Several descriptors on a REOPEN_LOG: one is kept, the rest closed. */
static void
test_reopen_log_extra_fds(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	int		sv[2], p[3][2], w[3], before, i, gone = 0;
	char		c;

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < 3; i++) {
		assert_int_equal(pipe(p[i]), 0);
		w[i] = p[i][1];
	}
	send_raw(sv[0], buf, control_encode(&m, buf), w, 3);
	for (i = 0; i < 3; i++)
		close(w[i]);
	before = count_fds();
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.fd >= 0);
	assert_int_equal(count_fds(), before + 1);
	assert_int_equal(write(out.fd, "k", 1), 1);
	assert_int_equal(read(p[0][0], &c, 1), 1);	/* the first is kept */
	close(out.fd);
	for (i = 0; i < 3; i++) {
		gone += writers_gone(p[i][0]);
		close(p[i][0]);
	}
	assert_int_equal(gone, 3);
	close(sv[0]);
	close(sv[1]);
}

/* More descriptors than the receiver has room for: none may leak. */
static void
test_too_many_fds(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	struct control_msg	out;
	int		sv[2], fds[8], before, i, rc;

	(void)state;
	seqpacket_pair(sv);
	for (i = 0; i < 8; i++)
		assert_true((fds[i] = open("/dev/null", O_WRONLY)) >= 0);
	send_raw(sv[0], buf, control_encode(&m, buf), fds, 8);
	for (i = 0; i < 8; i++)
		close(fds[i]);
	before = count_fds();
	rc = control_recv(sv[1], &out);
	if (rc == 1) {
		close(out.fd);
	} else {
		assert_int_equal(rc, -1);
		assert_int_equal(errno, EPROTO);
	}
	assert_int_equal(count_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

static void
test_recv_malformed(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX + 64];
	unsigned char	zero[CONTROL_MSG_MAX + 64] = { 0 };
	struct control_msg	out;
	size_t		len;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	/* Unknown type. */
	send_raw(sv[0], buf, raw(buf, 0, 8, zero, 8), NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* Larger than any message: truncated by the receiver. */
	len = raw(buf, CONTROL_ACME_RENEW, CONTROL_MSG_MAX + 40 - HDR, zero,
	    CONTROL_MSG_MAX + 40 - HDR);
	send_raw(sv[0], buf, len, NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* One byte more than the bound on any message. */
	len = raw(buf, CONTROL_ACME_RENEW, CONTROL_MSG_MAX + 1 - HDR, zero,
	    CONTROL_MSG_MAX + 1 - HDR);
	assert_int_equal(len, CONTROL_MSG_MAX + 1);
	send_raw(sv[0], buf, len, NULL, 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* Still in sync afterwards. */
	assert_int_equal(control_send_gen(sv[0], CONTROL_CONFIG, 77), 0);
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.gen == 77);
	close(sv[0]);
	close(sv[1]);
}

static void
test_recv_eof_and_eagain(void **state)
{
	struct control_msg	out;
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	assert_int_equal(util_set_nonblock(sv[1]), 0);
	errno = 0;
	assert_int_equal(control_recv(sv[1], &out), -1);
	assert_int_equal(errno, EAGAIN);
	/* A queued message is still delivered before EOF. */
	assert_int_equal(control_send_gen(sv[0], CONTROL_CONFIG, 3), 0);
	close(sv[0]);
	assert_int_equal(control_recv(sv[1], &out), 1);
	assert_true(out.gen == 3);
	assert_int_equal(control_recv(sv[1], &out), 0);
	assert_int_equal(control_recv(sv[1], &out), 0);
	close(sv[1]);
}

/* The master is gone: sending fails without killing us with SIGPIPE. */
static void
test_send_to_closed_peer(void **state)
{
	struct control_msg	m = msg_of(CONTROL_READY, 1, 2, NULL);
	int		sv[2];

	(void)state;
	seqpacket_pair(sv);
	close(sv[1]);
	errno = 0;
	assert_int_equal(control_send(sv[0], &m), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(control_send_gen(sv[0], CONTROL_ACK, 1), -1);
	close(sv[0]);
	assert_int_equal(control_send_gen(sv[0], CONTROL_ACK, 1), -1);
}

/*
 * The channels control_open() makes.
 */

static int
fd_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl != -1);
	return fl;
}

static void
test_open_ends(void **state)
{
	int	sock[2], rep[2], i;
	int	all[4];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	all[0] = sock[0], all[1] = sock[1], all[2] = rep[0], all[3] = rep[1];
	for (i = 0; i < 4; i++) {
		assert_int_equal(fcntl(all[i], F_GETFD) & FD_CLOEXEC,
		    FD_CLOEXEC);
		assert_true(fd_flags(all[i]) & O_NONBLOCK);
	}
	assert_int_equal(fd_flags(rep[0]) & O_ACCMODE, O_RDONLY);
	assert_int_equal(fd_flags(rep[1]) & O_ACCMODE, O_WRONLY);
	/* Packet mode is the writer's: each write(2) one packet. */
	assert_true(fd_flags(rep[1]) & O_DIRECT);
	for (i = 0; i < 4; i++)
		close(all[i]);
}

static void
test_report_read_every_type(void **state)
{
	struct control_msg	*m, out;
	size_t		 i, n;
	int		 sock[2], rep[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	m = sample_msgs(&n);
	for (i = 0; i < n; i++) {
		if (carries_fd(m[i].type)) {
			/* The types with a descriptor are not reported. */
			errno = 0;
			assert_int_equal(control_report(rep[1], &m[i]), -1);
			assert_int_equal(errno, EINVAL);
			continue;
		}
		assert_int_equal(control_report(rep[1], &m[i]), 0);
		memset(&out, 0x5a, sizeof(out));
		if (sent_by_master(m[i].type)) {
			/* The master refuses its own types from a child. */
			errno = 0;
			assert_int_equal(control_read(rep[0], &out), -1);
			assert_int_equal(errno, EPROTO);
			assert_int_equal(out.fd, -1);
			continue;
		}
		assert_int_equal(control_read(rep[0], &out), 1);
		assert_msg_equal(&m[i], &out);
		assert_int_equal(out.fd, -1);
	}
	/* Boundaries and order kept with several queued. */
	for (i = 1; i <= 12; i++)
		assert_int_equal(control_report_gen(rep[1], CONTROL_ACK, i), 0);
	for (i = 1; i <= 12; i++) {
		assert_int_equal(control_read(rep[0], &out), 1);
		assert_int_equal(out.type, CONTROL_ACK);
		assert_true(out.gen == i);
	}
	close(sock[0]);
	close(sock[1]);
	close(rep[0]);
	close(rep[1]);
}

/*
 * The master's end of the socket takes nothing from the worker: a send
 * fails before anything is queued, descriptors included, while the
 * master's messages (REOPEN_LOG's descriptor too) still reach the worker.
 */
static void
test_open_socket_is_one_way(void **state)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m = msg_of(CONTROL_ACK, 1, 0, NULL), out;
	union {
		struct cmsghdr	 hdr;
		unsigned char	 buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec	iov = { buf, 0 };
	struct msghdr	msg;
	int		sock[2], rep[2], p[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	errno = 0;
	assert_int_equal(control_send(sock[1], &m), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(pipe(p), 0);
	iov.iov_len = control_encode(&m, buf);
	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
	cm.hdr.cmsg_level = SOL_SOCKET;
	cm.hdr.cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(&cm.hdr), &p[1], sizeof(int));
	errno = 0;
	assert_int_equal(sendmsg(sock[1], &msg, MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
	/* No copy of the descriptor is held anywhere. */
	assert_true(writers_gone(p[0]));
	close(p[0]);
	errno = 0;
	assert_int_equal(recv(sock[0], buf, sizeof(buf), 0), 0);

	/* Master -> worker is untouched. */
	assert_int_equal(pipe(p), 0);
	m = msg_of(CONTROL_REOPEN_LOG, 0, 0, NULL);
	m.fd = p[1];
	assert_int_equal(control_send(sock[0], &m), 0);
	close(p[1]);
	assert_int_equal(control_recv(sock[1], &out), 1);
	assert_int_equal(out.type, CONTROL_REOPEN_LOG);
	assert_true(out.fd >= 0);
	close(out.fd);
	assert_true(writers_gone(p[0]));
	close(p[0]);
	assert_int_equal(control_send_gen(sock[0], CONTROL_CONFIG, 4), 0);
	assert_int_equal(control_recv(sock[1], &out), 1);
	assert_true(out.gen == 4);
	/* The worker still sees EOF when the master is gone. */
	close(sock[0]);
	assert_int_equal(control_recv(sock[1], &out), 0);
	close(sock[1]);
	close(rep[0]);
	close(rep[1]);
}

static void
write_raw(int fd, const void *buf, size_t len)
{
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void
test_read_malformed(void **state)
{
	unsigned char	buf[8192], zero[CONTROL_MSG_MAX + 64] = { 0 };
	struct control_msg	out;
	size_t		len;
	int		sock[2], rep[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	/* Unknown type. */
	write_raw(rep[1], buf, raw(buf, 0, 8, zero, 8));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* Well formed, but the types that carry a descriptor. */
	write_raw(rep[1], buf, raw(buf, CONTROL_REOPEN_LOG, 0, NULL, 0));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	write_raw(rep[1], buf, raw(buf, CONTROL_ACME_CONFIG, 8, zero, 8));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	write_raw(rep[1], buf, raw(buf, CONTROL_SIGNER_KEYS, 12, zero, 12));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	write_raw(rep[1], buf, raw(buf, CONTROL_SIGNER_CHANNEL, 8, zero, 8));
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	/* One byte more than the bound on any message. */
	len = raw(buf, CONTROL_ACME_STATE, CONTROL_MSG_MAX + 1 - HDR, zero,
	    CONTROL_MSG_MAX + 1 - HDR);
	assert_int_equal(len, CONTROL_MSG_MAX + 1);
	write_raw(rep[1], buf, len);
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EPROTO);
	/*
	 * A write of two pages becomes two packets: each is refused, and
	 * what follows is read whole (the rest of a packet is discarded).
	 */
	memset(buf, 'x', sizeof(buf));
	write_raw(rep[1], buf, sizeof(buf));
	assert_int_equal(control_report_gen(rep[1], CONTROL_ACK, 77), 0);
	for (len = 0; len < 2; len++) {
		errno = 0;
		assert_int_equal(control_read(rep[0], &out), -1);
		assert_int_equal(errno, EPROTO);
	}
	assert_int_equal(control_read(rep[0], &out), 1);
	assert_int_equal(out.type, CONTROL_ACK);
	assert_true(out.gen == 77);
	close(sock[0]);
	close(sock[1]);
	close(rep[0]);
	close(rep[1]);
}

static void
test_read_eof_and_eagain(void **state)
{
	struct control_msg	out;
	int		sock[2], rep[2];

	(void)state;
	assert_int_equal(control_open(sock, rep), 0);
	errno = 0;
	assert_int_equal(control_read(rep[0], &out), -1);
	assert_int_equal(errno, EAGAIN);
	/* A queued report is still delivered before EOF. */
	assert_int_equal(control_report_gen(rep[1], CONTROL_ACK, 3), 0);
	close(rep[1]);
	assert_int_equal(control_read(rep[0], &out), 1);
	assert_true(out.gen == 3);
	assert_int_equal(control_read(rep[0], &out), 0);
	assert_int_equal(control_read(rep[0], &out), 0);
	close(rep[0]);
	close(sock[0]);
	close(sock[1]);
}

/* The master is gone: a report fails (EPIPE; SIGPIPE is ignored). */
static void
test_report_to_closed_master(void **state)
{
	struct control_msg	m = msg_of(CONTROL_READY, 1, 2, NULL);
	int		sock[2], rep[2];

	(void)state;
	assert_true(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
	assert_int_equal(control_open(sock, rep), 0);
	close(rep[0]);
	errno = 0;
	assert_int_equal(control_report(rep[1], &m), -1);
	assert_int_equal(errno, EPIPE);
	close(rep[1]);
	close(sock[0]);
	close(sock[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_parse_round_trip),
		cmocka_unit_test(test_wire_layout),
		cmocka_unit_test(test_acme_wire_layout),
		cmocka_unit_test(test_acme_encode_unused_fields),
		cmocka_unit_test(test_acme_parse_strict),
		cmocka_unit_test(test_parse_wrong_lengths),
		cmocka_unit_test(test_parse_unknown_types),
		cmocka_unit_test(test_nack_text),
		cmocka_unit_test(test_nack_encode_bounds),
		cmocka_unit_test(test_send_recv_every_type),
		cmocka_unit_test(test_message_boundaries),
		cmocka_unit_test(test_reopen_log_passes_fd),
		cmocka_unit_test(test_acme_config_passes_fd),
		cmocka_unit_test(test_fd_on_wrong_type_is_closed),
		cmocka_unit_test(test_fd_types_without_fd),
		cmocka_unit_test(test_reopen_log_extra_fds),
		cmocka_unit_test(test_too_many_fds),
		cmocka_unit_test(test_recv_malformed),
		cmocka_unit_test(test_recv_eof_and_eagain),
		cmocka_unit_test(test_send_to_closed_peer),
		cmocka_unit_test(test_open_ends),
		cmocka_unit_test(test_report_read_every_type),
		cmocka_unit_test(test_open_socket_is_one_way),
		cmocka_unit_test(test_read_malformed),
		cmocka_unit_test(test_read_eof_and_eagain),
		cmocka_unit_test(test_report_to_closed_master),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
