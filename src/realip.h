/*
 * realip.h - real-ip-header: the client a trusted peer names in a field
 * of each request (X-Forwarded-For, X-Real-IP), as nginx's real_ip module
 * with real_ip_recursive on.
 *
 * Pure and allocation-free.  The value of every field of that name, in
 * the order received, is one list: elements separated by commas, spaces
 * and tabs around them ignored, each an IPv4 or IPv6 address as
 * inet_pton takes it (no port, no brackets, no zone).  As nginx walks it,
 * from the right: trusted addresses are passed over, the first that is
 * not trusted is the client; an element that is not an address (empty,
 * "unknown", "ip:port" ...) ends the walk, and the client is then the
 * trusted address right of it, if any; all trusted, the leftmost.  So
 * what a client writes left of the addresses the trusted proxies
 * appended never matters, whatever it is: only a list whose rightmost
 * element is not an address leaves the connection's client.
 */
#ifndef PORTCULLIS_REALIP_H
#define PORTCULLIS_REALIP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct cidr;

/*
 * Read left to right, what the walk from the right needs: the run of
 * addresses since the last element that is not one (the walk stops
 * there), its leftmost and its rightmost untrusted address.
 */
struct realip {
	const struct cidr	*trusted;
	size_t			 ntrusted;
	size_t			 count;		/* addresses in the run */
	bool			 picked;	/* an untrusted one in it */
	struct sockaddr_storage	 first;		/* the run's leftmost */
	struct sockaddr_storage	 pick;		/* its rightmost untrusted */
};

/* Start a list judged against trusted[0..ntrusted). */
void	 realip_init(struct realip *r, const struct cidr *trusted,
	    size_t ntrusted);
/* The value of one more field (v[0..len), no NUL needed). */
void	 realip_add(struct realip *r, const char *v, size_t len);
/* The client the list names (port 0), or false: none usable. */
bool	 realip_result(const struct realip *r, struct sockaddr_storage *out);

#endif /* PORTCULLIS_REALIP_H */
