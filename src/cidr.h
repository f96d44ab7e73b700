/*
 * cidr.h - address ranges: "192.0.2.0/24", "2001:db8::/32", or one
 * address (a /32 or /128), as trusted-proxies, allow and deny write them,
 * and whether a client's address is in one.
 *
 * Pure and allocation-free.  An IPv4 client that reaches an IPv6 socket
 * as an IPv4-mapped address (::ffff:192.0.2.1) is the IPv4 address: it
 * matches IPv4 ranges, never "::ffff:0:0/96" written as an IPv6 range
 * (that spelling is refused, so that no rule can mean both), and "::/0"
 * does not hold IPv4 clients (write "0.0.0.0/0" for those).
 */
#ifndef PORTCULLIS_CIDR_H
#define PORTCULLIS_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" and a NUL. */
#define CIDR_TEXT_MAX	50

struct cidr {
	uint8_t		 family;	/* 4 or 6 */
	uint8_t		 bits;		/* 0..32 or 0..128 */
	uint8_t		 addr[16];	/* the network: host bits 0; IPv4
					   in the first 4 bytes */
};

/*
 * s (len bytes, no NUL needed) as a range: an address, or an address, a
 * '/' and a prefix length in decimal (no sign, no leading zero, in
 * range).  Host bits set past the prefix ("10.0.0.1/8") are refused: the
 * rule would not mean what it says.  0, or -1 with why in why.
 */
int	 cidr_parse(const char *s, size_t len, struct cidr *out, char *why,
	    size_t whysz);

/* c in its canonical text form ("10.0.0.0/8", "2001:db8::/32"). */
void	 cidr_format(const struct cidr *c, char buf[CIDR_TEXT_MAX]);

/*
 * An address as a range of one: family 4 for AF_INET and IPv4-mapped
 * AF_INET6, 6 for other AF_INET6; bits 32 or 128.  false for another
 * family.
 */
bool	 cidr_of(const struct sockaddr *sa, struct cidr *out);

/* Whether addr (cidr_of()'s) is in c. */
bool	 cidr_contains(const struct cidr *c, const struct cidr *addr);

/* The index of the first range of list[0..n) that holds sa, or -1. */
long	 cidr_find(const struct cidr *list, size_t n,
	    const struct sockaddr *sa);

#endif /* PORTCULLIS_CIDR_H */
