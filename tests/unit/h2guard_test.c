/*
 * h2guard_test.c - the frame checks that must not depend on nghttp2's
 * memory of a stream: golden frame sequences, each fed whole, then one
 * octet at a time (the verdict and where it falls must not move).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "h2guard.h"

#define PREFACE	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

enum { DATA = 0, HEADERS = 1, PRIORITY = 2, RST = 3, SETTINGS = 4,
	WINUP = 8, CONT = 9 };
enum { ES = 0x1, EH = 0x4, PADDED = 0x8 };

struct wire {
	uint8_t	 b[8192];
	size_t	 len;
	size_t	 mark;		/* where the last frame added begins */
};

static void
add(struct wire *w, uint8_t type, uint8_t flags, uint32_t id,
    const void *payload, uint32_t plen)
{
	uint8_t *p = w->b + w->len;

	assert_true(w->len + 9 + plen <= sizeof(w->b));
	w->mark = w->len;
	p[0] = plen >> 16;
	p[1] = plen >> 8;
	p[2] = plen;
	p[3] = type;
	p[4] = flags;
	p[5] = id >> 24;
	p[6] = id >> 16;
	p[7] = id >> 8;
	p[8] = id;
	if (plen > 0)
		memcpy(p + 9, payload, plen);
	w->len += 9 + plen;
}

static void
start(struct wire *w)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->b, PREFACE, 24);
	w->len = 24;
	add(w, SETTINGS, 0, 0, NULL, 0);
}

/* A HEADERS frame (its block is opaque to the guard). */
static void
hdrs(struct wire *w, uint32_t id, uint8_t flags)
{
	add(w, HEADERS, flags | EH, id, "\x82\x87\x84", 3);
}

static void
winup(struct wire *w, uint32_t id, uint32_t inc)
{
	uint8_t p[4] = { inc >> 24, inc >> 16, inc >> 8, inc };

	add(w, WINUP, 0, id, p, 4);
}

static void
rst(struct wire *w, uint32_t id)
{
	add(w, RST, 0, id, "\0\0\0\x08", 4);
}

/*
 * The verdict on w, fed whole and fed one octet at a time: both must
 * agree.  On an error the whole feed lets through everything before
 * w->mark (the last frame) and nothing of it; octet by octet, the octets
 * of that frame the guard needed before judging it have gone through too.
 */
static enum h2guard_verdict
verdict(const struct wire *w)
{
	struct h2guard g1, g2;
	enum h2guard_verdict v1, v2 = H2GUARD_OK;
	size_t ok, i, passed = 0;

	h2guard_init(&g1);
	v1 = h2guard_scan(&g1, w->b, w->len, &ok);
	if (v1 == H2GUARD_OK)
		assert_int_equal(ok, w->len);
	else
		assert_int_equal(ok, w->mark);

	h2guard_init(&g2);
	for (i = 0; i < w->len; i++) {
		v2 = h2guard_scan(&g2, w->b + i, 1, &ok);
		passed += ok;
		if (v2 != H2GUARD_OK)
			break;
	}
	assert_int_equal(v1, v2);
	if (v1 != H2GUARD_OK) {
		assert_true(passed >= w->mark);
		assert_true(passed < w->mark + H2GUARD_HEAD);
		assert_string_equal(g1.why, g2.why);
		assert_int_equal(g1.why_id, g2.why_id);
		/* Once an error, always. */
		assert_int_equal(h2guard_scan(&g1, w->b, 1, &ok), v1);
		assert_int_equal(ok, 0);
	}
	return v1;
}

static void
test_plain_traffic(void **state)
{
	struct wire w;
	uint8_t big[4000];

	(void)state;
	memset(big, 'x', sizeof(big));
	start(&w);
	hdrs(&w, 1, ES);
	hdrs(&w, 3, 0);
	add(&w, DATA, 0, 3, big, sizeof(big));
	add(&w, DATA, PADDED, 3, "\x03" "abc" "\0\0\0", 7);
	winup(&w, 0, 65535);
	winup(&w, 3, 1);
	add(&w, PRIORITY, 0, 9, "\0\0\0\0\x10", 5);
	add(&w, DATA, ES, 3, "end", 3);
	hdrs(&w, 5, ES);
	assert_int_equal(verdict(&w), H2GUARD_OK);
}

static void
test_bad_padding(void **state)
{
	struct wire w;

	(void)state;
	/* h2spec http2/6.1/3: length 5, pad length 6. */
	start(&w);
	hdrs(&w, 1, 0);
	add(&w, DATA, ES | PADDED, 1, "\x06Test", 5);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* The pad length equal to the length is one too many. */
	start(&w);
	hdrs(&w, 1, 0);
	add(&w, DATA, PADDED, 1, "\x05Test", 5);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* Padded with no room for the pad length. */
	start(&w);
	hdrs(&w, 1, 0);
	add(&w, DATA, PADDED, 1, NULL, 0);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* All padding and no data is fine. */
	start(&w);
	hdrs(&w, 1, 0);
	add(&w, DATA, PADDED | ES, 1, "\x04\0\0\0\0", 5);
	assert_int_equal(verdict(&w), H2GUARD_OK);
	/* Whatever the stream: one never opened, or one long closed. */
	start(&w);
	hdrs(&w, 101, ES);
	add(&w, DATA, PADDED, 7, "\xff", 1);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
}

static void
test_zero_window_update(void **state)
{
	struct wire w;

	(void)state;
	start(&w);
	hdrs(&w, 1, 0);
	winup(&w, 1, 0);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* The reserved bit is not part of the increment. */
	start(&w);
	hdrs(&w, 1, ES);
	winup(&w, 1, 0x80000000u);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	start(&w);
	winup(&w, 0, 0);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* A wrong length is nghttp2's (FRAME_SIZE_ERROR), not ours. */
	start(&w);
	add(&w, WINUP, 0, 0, "\0\0\0", 3);
	assert_int_equal(verdict(&w), H2GUARD_OK);
}

static void
test_lower_stream_id(void **state)
{
	struct wire w;

	(void)state;
	/* h2spec http2/5.1.1/2. */
	start(&w);
	hdrs(&w, 5, ES);
	hdrs(&w, 3, ES);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* Skipping numbers is allowed; going back to one is not. */
	start(&w);
	hdrs(&w, 1, ES);
	hdrs(&w, 9, ES);
	hdrs(&w, 11, ES);
	hdrs(&w, 7, ES);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
	/* Even numbers and 0 are nghttp2's to refuse. */
	start(&w);
	hdrs(&w, 5, ES);
	hdrs(&w, 2, ES);
	assert_int_equal(verdict(&w), H2GUARD_OK);
	start(&w);
	hdrs(&w, 5, ES);
	hdrs(&w, 0, ES);
	assert_int_equal(verdict(&w), H2GUARD_OK);
}

static void
test_trailers(void **state)
{
	struct wire w;

	(void)state;
	/* Trailers on an older stream, after a newer one opened. */
	start(&w);
	hdrs(&w, 1, 0);
	hdrs(&w, 3, ES);
	add(&w, DATA, 0, 1, "body", 4);
	add(&w, HEADERS, ES, 1, "\x40\x01t\x01v", 5);
	add(&w, CONT, EH, 1, "", 0);
	hdrs(&w, 5, ES);
	assert_int_equal(verdict(&w), H2GUARD_OK);
	/* ... but only once: they ended the stream. */
	hdrs(&w, 1, ES);
	assert_int_equal(verdict(&w), H2GUARD_STREAM_CLOSED);
}

static void
test_frames_after_the_client_ended(void **state)
{
	struct wire w;

	(void)state;
	/* h2spec http2/5.1/9: HEADERS, RST_STREAM, HEADERS. */
	start(&w);
	hdrs(&w, 1, 0);
	rst(&w, 1);
	hdrs(&w, 1, ES);
	assert_int_equal(verdict(&w), H2GUARD_STREAM_CLOSED);
	/* http2/5.1/8: DATA after RST_STREAM. */
	start(&w);
	hdrs(&w, 1, 0);
	rst(&w, 1);
	add(&w, DATA, ES, 1, "test", 4);
	assert_int_equal(verdict(&w), H2GUARD_STREAM_CLOSED);
	/* DATA after END_STREAM, on HEADERS or on DATA. */
	start(&w);
	hdrs(&w, 1, ES);
	add(&w, DATA, ES, 1, "test", 4);
	assert_int_equal(verdict(&w), H2GUARD_STREAM_CLOSED);
	start(&w);
	hdrs(&w, 1, 0);
	add(&w, DATA, ES, 1, "a", 1);
	add(&w, DATA, 0, 1, "b", 1);
	assert_int_equal(verdict(&w), H2GUARD_STREAM_CLOSED);
	/* What may follow the end: WINDOW_UPDATE, PRIORITY, RST_STREAM. */
	start(&w);
	hdrs(&w, 1, ES);
	winup(&w, 1, 100);
	add(&w, PRIORITY, 0, 1, "\0\0\0\0\x10", 5);
	rst(&w, 1);
	rst(&w, 1);
	assert_int_equal(verdict(&w), H2GUARD_OK);
}

static void
test_old_streams_are_left_to_nghttp2(void **state)
{
	struct wire w, save;
	uint32_t id;

	(void)state;
	start(&w);
	hdrs(&w, 1, 0);
	hdrs(&w, 3, ES);		/* 5 is skipped */
	for (id = 7; id < 7 + 2 * H2GUARD_STREAMS; id += 2)
		hdrs(&w, id, ES);
	/* Streams 1 and 3 are forgotten: not judged. */
	hdrs(&w, 1, ES);
	hdrs(&w, 3, ES);
	rst(&w, 3);
	add(&w, DATA, 0, 3, "x", 1);
	assert_int_equal(verdict(&w), H2GUARD_OK);
	/* The last ones opened still are, and so is what lies between. */
	save = w;
	hdrs(&w, 5 + 2 * H2GUARD_STREAMS, ES);
	assert_int_equal(verdict(&w), H2GUARD_STREAM_CLOSED);
	w = save;
	hdrs(&w, 5, ES);
	assert_int_equal(verdict(&w), H2GUARD_PROTOCOL_ERROR);
}

static void
test_huge_frames_are_skipped(void **state)
{
	struct h2guard g;
	uint8_t head[9] = { 0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1 };
	uint8_t junk[4096];
	size_t ok, left = 0xffffff;

	(void)state;
	memset(junk, 0xff, sizeof(junk));	/* looks like frames: is not */
	h2guard_init(&g);
	assert_int_equal(h2guard_scan(&g, (const uint8_t *)PREFACE, 24, &ok),
	    H2GUARD_OK);
	assert_int_equal(ok, 24);
	assert_int_equal(h2guard_scan(&g, head, sizeof(head), &ok),
	    H2GUARD_OK);
	while (left > 0) {
		size_t n = left < sizeof(junk) ? left : sizeof(junk);

		assert_int_equal(h2guard_scan(&g, junk, n, &ok), H2GUARD_OK);
		assert_int_equal(ok, n);
		left -= n;
	}
	/* The next frame is read as one. */
	head[0] = head[1] = 0;
	head[2] = 4;
	head[3] = WINUP;
	assert_int_equal(h2guard_scan(&g, head, sizeof(head), &ok),
	    H2GUARD_OK);
	assert_int_equal(h2guard_scan(&g, (const uint8_t *)"\0\0\0\0", 4,
	    &ok), H2GUARD_PROTOCOL_ERROR);
	assert_int_equal(ok, 0);	/* the frame began before */
	assert_string_equal(g.why, "WINDOW_UPDATE of 0");
	assert_int_equal(g.why_id, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_traffic),
		cmocka_unit_test(test_bad_padding),
		cmocka_unit_test(test_zero_window_update),
		cmocka_unit_test(test_lower_stream_id),
		cmocka_unit_test(test_trailers),
		cmocka_unit_test(test_frames_after_the_client_ended),
		cmocka_unit_test(test_old_streams_are_left_to_nghttp2),
		cmocka_unit_test(test_huge_frames_are_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
