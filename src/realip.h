/*
 * realip.h - real-ip-header: the client a trusted peer names in a field
 * of each request (X-Forwarded-For, X-Real-IP), as nginx's real_ip module
 * with real_ip_recursive on.
 *
 * Pure and allocation-free.  The value of every field of that name, in
 * the order received, is one list: elements separated by commas, spaces
 * and tabs around them ignored, each an IPv4 or IPv6 address as
 * inet_pton takes it (no port, no brackets, no zone), at most
 * REALIP_MAX_ELEMENTS in all.  The client is the rightmost address that
 * is not itself in the trusted ranges, or the leftmost when all are.  An
 * empty element, one that is not an address, or too many make the whole
 * list unusable: the connection's client stands.
 */
#ifndef PORTCULLIS_REALIP_H
#define PORTCULLIS_REALIP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct cidr;

#define REALIP_MAX_ELEMENTS	100

struct realip {
	const struct cidr	*trusted;
	size_t			 ntrusted;
	size_t			 count;		/* addresses so far */
	bool			 bad;		/* the list is unusable */
	bool			 picked;	/* an untrusted one was seen */
	struct sockaddr_storage	 first;		/* the leftmost */
	struct sockaddr_storage	 pick;		/* the rightmost untrusted */
};

/* Start a list judged against trusted[0..ntrusted). */
void	 realip_init(struct realip *r, const struct cidr *trusted,
	    size_t ntrusted);
/* The value of one more field (v[0..len), no NUL needed). */
void	 realip_add(struct realip *r, const char *v, size_t len);
/* The client the list names (port 0), or false: none usable. */
bool	 realip_result(const struct realip *r, struct sockaddr_storage *out);

#endif /* PORTCULLIS_REALIP_H */
