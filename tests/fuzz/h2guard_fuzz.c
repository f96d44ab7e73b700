/*
 * h2guard_fuzz.c - raw bytes from an HTTP/2 client, after the connection
 * preface, through the frame guard twice: whole, then in pieces whose
 * sizes come from the input.  The verdict, its reason and its stream must
 * be the same either way, and what each feed lets through to nghttp2 must
 * agree: the whole feed stops where the offending frame begins, the
 * pieces at most the 12 octets of it the guard needed to judge it later.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFACE	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2guard whole, parts;
	enum h2guard_verdict v1, v2 = H2GUARD_OK;
	size_t ok, ok1, passed = 0, i = 0, n;

	h2guard_init(&whole);
	if (h2guard_scan(&whole, (const uint8_t *)PREFACE, 24, &ok) !=
	    H2GUARD_OK || ok != 24)
		abort();
	v1 = h2guard_scan(&whole, data, size, &ok1);
	if (ok1 > size || (v1 == H2GUARD_OK && ok1 != size))
		abort();

	h2guard_init(&parts);
	(void)h2guard_scan(&parts, (const uint8_t *)PREFACE, 10, &ok);
	(void)h2guard_scan(&parts, (const uint8_t *)PREFACE + 10, 14, &ok);
	while (i < size) {
		n = 1 + data[i] % 23;
		if (n > size - i)
			n = size - i;
		v2 = h2guard_scan(&parts, data + i, n, &ok);
		if (ok > n)
			abort();
		passed += ok;
		i += n;
		if (v2 != H2GUARD_OK)
			break;
	}
	if (v1 != v2)
		abort();
	if (v1 == H2GUARD_OK)
		return passed == size ? 0 : (abort(), 0);
	if (passed < ok1 || passed > ok1 + H2GUARD_HEAD - 1 ||
	    whole.why_id != parts.why_id || strcmp(whole.why, parts.why) != 0)
		abort();
	return 0;
}
