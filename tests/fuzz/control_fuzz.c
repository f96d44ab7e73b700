/*
 * control_fuzz.c - libFuzzer target for the control channel parser
 * (src/control.c): what a master reads from a possibly compromised
 * worker, and a worker from its master.
 *
 * The input is one message as received.  If control_parse accepts it,
 * the message must be well formed (a known type, no descriptor, a short
 * printable NUL-terminated text for NACK) and control_encode must give
 * back exactly the input.  Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m;
	size_t		i, tlen;

	memset(&m, 0x5a, sizeof(m));
	if (control_parse(data, size, &m) == -1) {
		CHECK(m.fd == -1);
		return 0;
	}
	CHECK(size >= sizeof(struct control_hdr) && size <= CONTROL_MSG_MAX);
	CHECK(m.type >= CONTROL_READY && m.type <= CONTROL_TYPE_MAX);
	CHECK(m.fd == -1);
	if (m.type == CONTROL_NACK) {
		tlen = strnlen(m.text, sizeof(m.text));
		CHECK(tlen <= CONTROL_TEXT_MAX);
		CHECK(tlen == size - sizeof(struct control_hdr) - 8);
		for (i = 0; i < tlen; i++)
			CHECK(m.text[i] >= 0x20 && m.text[i] <= 0x7e);
	}
	CHECK(control_encode(&m, buf) == size);
	CHECK(memcmp(buf, data, size) == 0);
	return 0;
}
