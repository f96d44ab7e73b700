/*
 * cidr_fuzz.c - libFuzzer target for address ranges (src/cidr.c).
 *
 * The input's first 16 bytes are an address (the first 4 of them for
 * IPv4, by the family of the range), the rest is the text parsed.  A
 * range that parses has its host bits 0 and a length in range, formats
 * to text that parses back to the same range, and holds the address
 * exactly when a reference written here bit by bit says so, for an
 * AF_INET, an IPv4-mapped AF_INET6 and an AF_INET6 socket address; the
 * text is read from a heap block of exactly its length.  Any violation
 * abort()s.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static bool
bit(const uint8_t *a, unsigned i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

static bool
reference(const struct cidr *c, const uint8_t *a)
{
	unsigned i;

	for (i = 0; i < c->bits; i++)
		if (bit(c->addr, i) != bit(a, i))
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[10];
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	struct cidr c, back;
	char text[CIDR_TEXT_MAX], why[128];
	uint8_t a[16];
	unsigned i, max;
	char *s;

	if (size < 16)
		return 0;
	memcpy(a, data, 16);
	if ((s = malloc(size - 16 + 1)) == NULL)
		return 0;
	memcpy(s, data + 16, size - 16);
	if (cidr_parse(s, size - 16, &c, why, sizeof(why)) != 0) {
		CHECK(why[0] != '\0');
		free(s);
		return 0;
	}
	free(s);
	CHECK(c.family == 4 || c.family == 6);
	max = c.family == 4 ? 32 : 128;
	CHECK(c.bits <= max);
	for (i = c.bits; i < 128; i++)
		CHECK(!bit(c.addr, i));
	cidr_format(&c, text);
	CHECK(cidr_parse(text, strlen(text), &back, why, sizeof(why)) == 0);
	CHECK(memcmp(&back, &c, sizeof(c)) == 0);

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	memcpy(&s4.sin_addr, a, 4);
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_addr.s6_addr[10] = s6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(s6.sin6_addr.s6_addr + 12, a, 4);
	if (c.family == 4) {
		bool want = reference(&c, a);

		CHECK((cidr_find(&c, 1, (struct sockaddr *)&s4) == 0) == want);
		CHECK((cidr_find(&c, 1, (struct sockaddr *)&s6) == 0) == want);
	} else {
		CHECK(cidr_find(&c, 1, (struct sockaddr *)&s4) == -1);
		CHECK(cidr_find(&c, 1, (struct sockaddr *)&s6) == -1);
	}
	/* The address as IPv6: an IPv4-mapped one is IPv4 (above). */
	memcpy(s6.sin6_addr.s6_addr, a, 16);
	if (c.family == 4)
		return 0;
	if (a[10] == 0xff && a[11] == 0xff && memcmp(a, zero, 10) == 0)
		CHECK(cidr_find(&c, 1, (struct sockaddr *)&s6) == -1);
	else
		CHECK((cidr_find(&c, 1, (struct sockaddr *)&s6) == 0) ==
		    reference(&c, a));
	return 0;
}
