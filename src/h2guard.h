/*
 * h2guard.h - the checks on a client's HTTP/2 frames that must not depend
 * on whether nghttp2 still knows the stream.
 *
 * nghttp2 drops every frame for a stream it has closed (after sending
 * RST_STREAM that is what RFC 9113 5.1 asks), and whether our answer
 * closed a stream before the client's next frame arrived is a matter of
 * timing.  Some frames are errors whatever the stream's state; the guard
 * gives them the answer nghttp2 gives on an open stream, every time:
 *
 *  - DATA whose pad length is not less than its length: PROTOCOL_ERROR
 *    (RFC 9113 6.1);
 *  - WINDOW_UPDATE with an increment of 0: PROTOCOL_ERROR (6.9; nghttp2
 *    makes it a connection error on an open stream too);
 *  - HEADERS or DATA on a stream the client itself ended (END_STREAM, or
 *    its RST_STREAM): STREAM_CLOSED (5.1);
 *  - HEADERS opening a stream numbered below one already opened:
 *    PROTOCOL_ERROR (5.1.1), which nghttp2 ignores whatever the timing.
 *
 * Each is a connection error: the caller ends the session with GOAWAY.
 * HEADERS on a stream the client has not ended (trailers, also late ones
 * on a stream we already answered and reset) stays legitimate.
 *
 * Pure: it is given exactly the bytes given to nghttp2_session_mem_recv(),
 * from the client's connection preface on, and only reads the frame
 * headers (and the first four octets of a payload).  It remembers the
 * last H2GUARD_STREAMS streams the client opened; HEADERS naming an older
 * one is left to nghttp2.
 */
#ifndef PORTCULLIS_H2GUARD_H
#define PORTCULLIS_H2GUARD_H

#include <stddef.h>
#include <stdint.h>

#define H2GUARD_STREAMS	32
#define H2GUARD_HEAD	13	/* a frame header and 4 octets of payload */

/* The RFC 9113 error code of the connection error, 0 for none. */
enum h2guard_verdict {
	H2GUARD_OK = 0x0,
	H2GUARD_PROTOCOL_ERROR = 0x1,
	H2GUARD_STREAM_CLOSED = 0x5,
};

struct h2guard {
	/* The caller reads these two after an error. */
	const char		*why;
	uint32_t		 why_id;	/* the frame's stream */

	enum h2guard_verdict	 verdict;	/* once an error, always */
	uint32_t		 preface;	/* its octets still to skip */
	uint8_t			 head[H2GUARD_HEAD];
	uint32_t		 have;		/* octets in head */
	uint32_t		 need;		/* octets of head to judge by */
	uint32_t		 skip;		/* the rest of the payload */
	uint32_t		 max_id;	/* the highest stream opened */
	uint32_t		 forgot;	/* the highest one dropped */
	/* The last streams opened, ascending: id << 1 | ended. */
	uint32_t		 ids[H2GUARD_STREAMS];
	uint32_t		 first, n;
};

void	h2guard_init(struct h2guard *);
/*
 * The next len octets from the client.  H2GUARD_OK: all of them may go to
 * nghttp2 (*ok = len).  An error: only the first *ok may, those before
 * the offending frame (0 if it began in an earlier call).
 */
enum h2guard_verdict h2guard_scan(struct h2guard *, const uint8_t *, size_t,
	    size_t *);

#endif
