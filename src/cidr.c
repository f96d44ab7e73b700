/*
 * cidr.c - address ranges (see cidr.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"

/* The longest address text inet_pton takes, with its NUL. */
#define ADDR_TEXT_MAX	INET6_ADDRSTRLEN

static bool
is_v4mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	return memcmp(a, prefix, sizeof(prefix)) == 0;
}

/* Whether the bits of a past the first bits (of nbytes) are all 0. */
static bool
host_bits_zero(const uint8_t *a, size_t nbytes, unsigned bits)
{
	size_t i;

	for (i = 0; i < nbytes; i++) {
		unsigned first = (unsigned)i * 8;
		uint8_t mask;

		if (first + 8 <= bits)
			continue;
		mask = first >= bits ? 0xff : (uint8_t)(0xff >> (bits - first));
		if ((a[i] & mask) != 0)
			return false;
	}
	return true;
}

int
cidr_parse(const char *s, size_t len, struct cidr *out, char *why,
    size_t whysz)
{
	char text[ADDR_TEXT_MAX];
	const char *slash = memchr(s, '/', len);
	size_t alen = slash != NULL ? (size_t)(slash - s) : len;
	unsigned bits = 0, max;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(text) || memchr(s, '\0', len)) {
		snprintf(why, whysz, "not an address or range");
		return -1;
	}
	memcpy(text, s, alen);
	text[alen] = '\0';
	if (inet_pton(AF_INET, text, out->addr) == 1) {
		out->family = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = 6;
		max = 128;
		if (is_v4mapped(out->addr)) {
			snprintf(why, whysz, "an IPv4-mapped IPv6 address: "
			    "write the IPv4 address");
			return -1;
		}
	} else {
		snprintf(why, whysz, "not an IPv4 or IPv6 address");
		return -1;
	}
	if (slash == NULL)
		bits = max;
	else {
		const char *p = slash + 1, *end = s + len;

		if (p == end || (*p == '0' && end - p > 1) || end - p > 3) {
			snprintf(why, whysz, "not a prefix length");
			return -1;
		}
		for (i = 0; p + i < end; i++) {
			if (p[i] < '0' || p[i] > '9') {
				snprintf(why, whysz, "not a prefix length");
				return -1;
			}
			bits = bits * 10 + (unsigned)(p[i] - '0');
		}
		if (bits > max) {
			snprintf(why, whysz, "prefix length over %u", max);
			return -1;
		}
	}
	if (!host_bits_zero(out->addr, max / 8, bits)) {
		snprintf(why, whysz, "address bits set past the prefix "
		    "length");
		return -1;
	}
	out->bits = (uint8_t)bits;
	return 0;
}

void
cidr_format(const struct cidr *c, char buf[CIDR_TEXT_MAX])
{
	char text[ADDR_TEXT_MAX];

	if (inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, text,
	    sizeof(text)) == NULL)
		snprintf(text, sizeof(text), "?");
	snprintf(buf, CIDR_TEXT_MAX, "%s/%u", text, c->bits);
}

bool
cidr_of(const struct sockaddr *sa, struct cidr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		out->family = 4;
		out->bits = 32;
		memcpy(out->addr, &sin->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		if (is_v4mapped(sin6->sin6_addr.s6_addr)) {
			out->family = 4;
			out->bits = 32;
			memcpy(out->addr, sin6->sin6_addr.s6_addr + 12, 4);
			return true;
		}
		out->family = 6;
		out->bits = 128;
		memcpy(out->addr, sin6->sin6_addr.s6_addr, 16);
		return true;
	}
	return false;
}

bool
cidr_contains(const struct cidr *c, const struct cidr *addr)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;
	uint8_t mask;

	if (c->family != addr->family || addr->bits < c->bits)
		return false;
	if (memcmp(c->addr, addr->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr->addr[full] & mask);
}

long
cidr_find(const struct cidr *list, size_t n, const struct sockaddr *sa)
{
	struct cidr a;
	size_t i;

	if (!cidr_of(sa, &a))
		return -1;
	for (i = 0; i < n; i++)
		if (cidr_contains(&list[i], &a))
			return (long)i;
	return -1;
}
