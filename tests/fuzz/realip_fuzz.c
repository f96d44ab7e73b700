/*
 * realip_fuzz.c - libFuzzer target for real-ip-header's list
 * (src/realip.c).
 *
 * The input is field values separated by NUL bytes (one realip_add()
 * each), judged against fixed trusted ranges.  Invariants: a client
 * found is an IPv4 or IPv6 address; it is untrusted unless every address
 * right of the last element that is not one is trusted; the same values given as one comma-joined field name the
 * same client (or none either way); each value is read from a heap block
 * of exactly its length.  Any violation abort()s.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "fuzz.h"
#include "realip.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct cidr trusted[3];
static bool ready;

static void
setup(void)
{
	static const char *const r[] = { "10.0.0.0/8", "2001:db8::/32",
	    "192.0.2.7" };
	char why[64];
	size_t i;

	for (i = 0; i < 3; i++)
		CHECK(cidr_parse(r[i], strlen(r[i]), &trusted[i], why,
		    sizeof(why)) == 0);
	ready = true;
}

static bool
same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage got, joined_got;
	struct realip r, j;
	char *joined, *piece;
	size_t at = 0, jl = 0;
	bool ok, jok;

	if (!ready)
		setup();
	if ((joined = malloc(size + 1)) == NULL)
		return 0;
	realip_init(&r, trusted, 3);
	while (at <= size) {
		const uint8_t *nul = memchr(data + at, '\0', size - at);
		size_t len = nul != NULL ? (size_t)(nul - (data + at)) :
		    size - at;

		if ((piece = malloc(len > 0 ? len : 1)) == NULL)
			break;
		memcpy(piece, data + at, len);
		realip_add(&r, piece, len);
		free(piece);
		if (at > 0)
			joined[jl++] = ',';
		memcpy(joined + jl, data + at, len);
		jl += len;
		at += len + 1;
	}
	ok = realip_result(&r, &got);
	realip_init(&j, trusted, 3);
	realip_add(&j, joined, jl);
	jok = realip_result(&j, &joined_got);
	/* An empty field is an empty element either way: the same walk. */
	CHECK(ok == jok);
	if (ok) {
		CHECK(same(&got, &joined_got));
		CHECK(got.ss_family == AF_INET || got.ss_family == AF_INET6);
		if (cidr_find(trusted, 3, (const struct sockaddr *)&got) >= 0)
			CHECK(!r.picked);
		CHECK(r.count >= 1);
	}
	free(joined);
	return 0;
}
