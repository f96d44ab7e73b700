/*
 * ticketname_test.c - the ticket key names of a ClientHello: none without
 * extensions or tickets, the session_ticket extension's and each
 * pre_shared_key identity's in order, short ones skipped, at most max,
 * other extensions passed over; a length that overruns anywhere (the
 * fixed part, the extension list, an extension, the identity list, an
 * identity, its age) refuses the message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ticketname.h"

/* A ClientHello body being built. */
struct hello {
	unsigned char	 b[2048];
	size_t		 len;
	size_t		 ext_len_at;	/* where extensions' length goes */
};

static void
put(struct hello *h, const void *p, size_t n)
{
	assert_true(h->len + n <= sizeof(h->b));
	if (n > 0)
		memcpy(h->b + h->len, p, n);
	h->len += n;
}

static void
put16(struct hello *h, size_t v)
{
	unsigned char x[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(h, x, 2);
}

/* Version, random, a session id, two suites, null compression. */
static void
hello_start(struct hello *h, int with_exts)
{
	static const unsigned char fixed[2 + 32] = { 3, 3 };
	static const unsigned char sid[] = { 4, 'a', 'b', 'c', 'd' };
	static const unsigned char suites[] = { 0, 4, 0x13, 0x01, 0xc0, 0x2b };
	static const unsigned char comp[] = { 1, 0 };

	memset(h, 0, sizeof(*h));
	put(h, fixed, sizeof(fixed));
	put(h, sid, sizeof(sid));
	put(h, suites, sizeof(suites));
	put(h, comp, sizeof(comp));
	if (with_exts) {
		h->ext_len_at = h->len;
		put16(h, 0);
	}
}

static void
hello_end(struct hello *h)
{
	size_t n = h->len - h->ext_len_at - 2;

	h->b[h->ext_len_at] = (unsigned char)(n >> 8);
	h->b[h->ext_len_at + 1] = (unsigned char)n;
}

static void
ext(struct hello *h, unsigned type, const void *p, size_t n)
{
	put16(h, type);
	put16(h, n);
	put(h, p, n);
}

/* A ticket of n bytes whose name is 16 times c. */
static void
ticket(unsigned char *t, size_t n, unsigned char c)
{
	memset(t, c, n);
}

/* pre_shared_key with identities of the given lengths and fill bytes. */
static void
psk(struct hello *h, const size_t *lens, const unsigned char *fill,
    size_t n)
{
	unsigned char body[1024], age[4] = { 1, 2, 3, 4 }, binders[35] = {
	    0, 33, 32 };
	size_t i, off = 2, idl = 0;

	for (i = 0; i < n; i++) {
		body[off++] = (unsigned char)(lens[i] >> 8);
		body[off++] = (unsigned char)lens[i];
		memset(body + off, fill[i], lens[i]);
		off += lens[i];
		memcpy(body + off, age, 4);
		off += 4;
		idl += 2 + lens[i] + 4;
	}
	body[0] = (unsigned char)(idl >> 8);
	body[1] = (unsigned char)idl;
	memcpy(body + off, binders, sizeof(binders));
	off += sizeof(binders);
	ext(h, 41, body, off);
}

static int
parse(const struct hello *h, unsigned char names[][TICKETNAME_LEN],
    size_t max)
{
	return ticketname_parse(h->b, h->len, names, max);
}

static void
assert_name(const unsigned char *name, unsigned char c)
{
	size_t i;

	for (i = 0; i < TICKETNAME_LEN; i++)
		assert_int_equal(name[i], c);
}

static void
test_none(void **state)
{
	unsigned char names[TICKETNAME_MAX][TICKETNAME_LEN];
	struct hello h;
	unsigned char sni[] = { 0, 6, 0, 0, 3, 'a', '.', 't' };

	(void)state;
	hello_start(&h, 0);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 0);
	hello_start(&h, 1);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 0);
	hello_start(&h, 1);
	ext(&h, 0, sni, sizeof(sni));
	ext(&h, 35, NULL, 0);		/* asks for a ticket, offers none */
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 0);
}

static void
test_tls12_ticket(void **state)
{
	unsigned char names[TICKETNAME_MAX][TICKETNAME_LEN], t[200];
	struct hello h;

	(void)state;
	ticket(t, sizeof(t), 0xa1);
	t[16] = 0;			/* only the first 16 bytes count */
	hello_start(&h, 1);
	ext(&h, 0x17, NULL, 0);
	ext(&h, 35, t, sizeof(t));
	ext(&h, 0xff01, "\0", 1);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 1);
	assert_name(names[0], 0xa1);
	/* Exactly 16 bytes is a name; 15 is none. */
	hello_start(&h, 1);
	ext(&h, 35, t, 16);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 1);
	hello_start(&h, 1);
	ext(&h, 35, t, 15);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 0);
}

static void
test_tls13_identities(void **state)
{
	unsigned char names[TICKETNAME_MAX][TICKETNAME_LEN], t[64];
	const size_t lens[] = { 120, 8, 16, 300 };
	const unsigned char fill[] = { 0xb1, 0xb2, 0xb3, 0xb4 };
	struct hello h;

	(void)state;
	ticket(t, sizeof(t), 0xa1);
	hello_start(&h, 1);
	ext(&h, 35, t, sizeof(t));
	psk(&h, lens, fill, 4);		/* last, as RFC 8446 wants */
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 4);
	assert_name(names[0], 0xa1);
	assert_name(names[1], 0xb1);	/* the 8-byte identity: skipped */
	assert_name(names[2], 0xb3);
	assert_name(names[3], 0xb4);
	/* At most max, the first ones. */
	assert_int_equal(parse(&h, names, 2), 2);
	assert_name(names[0], 0xa1);
	assert_name(names[1], 0xb1);
	assert_int_equal(parse(&h, names, 0), 0);
}

static void
test_many_identities(void **state)
{
	unsigned char names[TICKETNAME_MAX][TICKETNAME_LEN];
	size_t lens[TICKETNAME_MAX + 3];
	unsigned char fill[TICKETNAME_MAX + 3];
	struct hello h;
	size_t i;

	(void)state;
	for (i = 0; i < TICKETNAME_MAX + 3; i++) {
		lens[i] = 20;
		fill[i] = (unsigned char)(0x10 + i);
	}
	hello_start(&h, 1);
	psk(&h, lens, fill, TICKETNAME_MAX + 3);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), TICKETNAME_MAX);
	assert_name(names[TICKETNAME_MAX - 1], 0x10 + TICKETNAME_MAX - 1);
}

/* Every truncation of a good hello with both extensions is refused. */
static void
test_truncated(void **state)
{
	unsigned char names[TICKETNAME_MAX][TICKETNAME_LEN], t[40];
	const size_t lens[] = { 32, 40 };
	const unsigned char fill[] = { 0xb1, 0xb2 };
	struct hello h, cut;
	size_t n;

	(void)state;
	ticket(t, sizeof(t), 0xa1);
	hello_start(&h, 1);
	ext(&h, 35, t, sizeof(t));
	psk(&h, lens, fill, 2);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 3);
	for (n = 0; n < h.len; n++) {
		/* A hello cut right after the compression methods is an
		   old one without extensions: valid, no names. */
		if (n == h.ext_len_at)
			assert_int_equal(ticketname_parse(h.b, n, names,
			    TICKETNAME_MAX), 0);
		else
			assert_int_equal(ticketname_parse(h.b, n, names,
			    TICKETNAME_MAX), -1);
	}
	/* The extension list says one byte more than there is. */
	cut = h;
	cut.b[cut.ext_len_at + 1]++;
	assert_int_equal(parse(&cut, names, TICKETNAME_MAX), -1);
}

static void
test_bad_psk(void **state)
{
	unsigned char names[TICKETNAME_MAX][TICKETNAME_LEN];
	/* Identity list of 22: one identity of 16 and its age, but the
	   identity says 17. */
	unsigned char body[2 + 2 + 16 + 4];
	struct hello h;

	(void)state;
	memset(body, 0x55, sizeof(body));
	body[0] = 0;
	body[1] = 22;
	body[2] = 0;
	body[3] = 17;
	hello_start(&h, 1);
	ext(&h, 41, body, sizeof(body));
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), -1);
	/* The list overruns its extension. */
	body[1] = 40;
	body[3] = 16;
	hello_start(&h, 1);
	ext(&h, 41, body, sizeof(body));
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), -1);
	/* An identity without its age. */
	body[1] = 18;
	hello_start(&h, 1);
	ext(&h, 41, body, 20);
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), -1);
	/* Right: one name. */
	body[1] = 22;
	hello_start(&h, 1);
	ext(&h, 41, body, sizeof(body));
	hello_end(&h);
	assert_int_equal(parse(&h, names, TICKETNAME_MAX), 1);
	assert_name(names[0], 0x55);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_tls12_ticket),
		cmocka_unit_test(test_tls13_identities),
		cmocka_unit_test(test_many_identities),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_psk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
