/*
 * ticketname_fuzz.c - libFuzzer target for the ticket key names of a
 * ClientHello (src/ticketname.c).
 *
 * The input is a ClientHello body, read from a heap block of exactly its
 * length.  A parse gives at most max names, each one 16 bytes that occur
 * in the input; with a smaller max the names are a prefix of the full
 * list; a malformed message gives -1 whatever max is.  Any violation
 * abort()s.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ticketname.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char all[TICKETNAME_MAX][TICKETNAME_LEN];
	unsigned char some[2][TICKETNAME_LEN];
	unsigned char *buf;
	int n, m, i;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	n = ticketname_parse(buf, size, all, TICKETNAME_MAX);
	m = ticketname_parse(buf, size, some, 2);
	CHECK(n >= -1 && n <= TICKETNAME_MAX);
	CHECK((n == -1) == (m == -1));
	if (n >= 0) {
		CHECK(m == (n < 2 ? n : 2));
		CHECK(memcmp(all, some, (size_t)m * TICKETNAME_LEN) == 0);
		for (i = 0; i < n; i++)
			CHECK(memmem(buf, size, all[i], TICKETNAME_LEN) !=
			    NULL);
	}
	CHECK(ticketname_parse(buf, size, all, 0) == (n == -1 ? -1 : 0));
	free(buf);
	return 0;
}
