/*
 * proxyproto_fuzz.c - libFuzzer target for the PROXY protocol header
 * (src/proxyproto.c).
 *
 * The input is what a client sent first.  Invariants: a header that
 * parses is at most the input and PROXYPROTO_MAX long, parses the same
 * from exactly its own bytes (nothing past it was looked at), and every
 * proper prefix of it asks for more; MORE is never said of as many bytes
 * as a header can have; an error says why; detection agrees with the
 * parser (no signature: refused as not PROXY); an address is IPv4 or
 * IPv6, source and destination of one family; a v1 header is printable
 * up to its CRLF, a v2 one carries the addresses it reported at their
 * offsets.  Any violation abort()s.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_v2_addr(const uint8_t *p, const struct proxyproto *r)
{
	if (r->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&r->src;
		const struct sockaddr_in *d = (const void *)&r->dst;

		CHECK(p[13] == 0x11);
		CHECK(memcmp(p + 16, &s->sin_addr, 4) == 0);
		CHECK(memcmp(p + 20, &d->sin_addr, 4) == 0);
		CHECK(memcmp(p + 24, &s->sin_port, 2) == 0);
		CHECK(memcmp(p + 26, &d->sin_port, 2) == 0);
	} else {
		const struct sockaddr_in6 *s = (const void *)&r->src;
		const struct sockaddr_in6 *d = (const void *)&r->dst;

		CHECK(p[13] == 0x21);
		CHECK(memcmp(p + 16, &s->sin6_addr, 16) == 0);
		CHECK(memcmp(p + 32, &d->sin6_addr, 16) == 0);
		CHECK(memcmp(p + 48, &s->sin6_port, 2) == 0);
		CHECK(memcmp(p + 50, &d->sin6_port, 2) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto r, again;
	enum proxyproto_rc rc;
	enum proxyproto_sig sig;
	size_t i;

	rc = proxyproto_parse(data, size, &r);
	sig = proxyproto_detect(data, size);
	if (sig == PROXYPROTO_SIG_NONE)
		CHECK(rc == PROXYPROTO_ERROR);
	if (sig == PROXYPROTO_SIG_MORE)
		CHECK(rc == PROXYPROTO_MORE);
	if (rc == PROXYPROTO_ERROR) {
		CHECK(r.why != NULL && r.why[0] != '\0');
		return 0;
	}
	if (rc == PROXYPROTO_MORE) {
		CHECK(size < PROXYPROTO_MAX);
		if (size > 0 && data[0] == 'P')
			CHECK(size < PROXYPROTO_V1_MAX);
		return 0;
	}
	CHECK(rc == PROXYPROTO_DONE);
	CHECK(r.len > 0 && r.len <= size && r.len <= PROXYPROTO_MAX);
	CHECK(r.version == 1 || r.version == 2);
	CHECK(r.cmd == PROXYPROTO_PROXY || r.version == 2);
	CHECK(proxyproto_parse(data, r.len, &again) == PROXYPROTO_DONE);
	CHECK(again.len == r.len && again.cmd == r.cmd &&
	    again.has_addr == r.has_addr &&
	    memcmp(&again.src, &r.src, sizeof(r.src)) == 0 &&
	    memcmp(&again.dst, &r.dst, sizeof(r.dst)) == 0);
	for (i = 0; i < r.len; i++)
		CHECK(proxyproto_parse(data, i, &again) == PROXYPROTO_MORE);
	if (r.cmd == PROXYPROTO_LOCAL)
		CHECK(!r.has_addr);
	if (r.has_addr) {
		CHECK(r.src.ss_family == AF_INET ||
		    r.src.ss_family == AF_INET6);
		CHECK(r.dst.ss_family == r.src.ss_family);
	}
	if (r.version == 1) {
		CHECK(r.len <= PROXYPROTO_V1_MAX);
		CHECK(data[r.len - 2] == '\r' && data[r.len - 1] == '\n');
		for (i = 0; i < r.len - 2; i++)
			CHECK(data[i] >= 0x20 && data[i] <= 0x7e);
	} else {
		CHECK(r.len == PROXYPROTO_V2_FIXED +
		    (size_t)(data[14] << 8 | data[15]));
		if (r.has_addr)
			check_v2_addr(data, &r);
	}
	return 0;
}
