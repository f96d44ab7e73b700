/*
 * realip.c - the client a real-ip-header names (see realip.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"
#include "realip.h"

void
realip_init(struct realip *r, const struct cidr *trusted, size_t ntrusted)
{
	memset(r, 0, sizeof(*r));
	r->trusted = trusted;
	r->ntrusted = ntrusted;
}

static bool
ows(char c)
{
	return c == ' ' || c == '\t';
}

/* One element, without spaces around it: an address, or false. */
static bool
element(const char *s, size_t len, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char text[INET6_ADDRSTRLEN];

	memset(ss, 0, sizeof(*ss));
	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

void
realip_add(struct realip *r, const char *v, size_t len)
{
	struct sockaddr_storage ss;
	size_t i = 0, start, end;

	for (;;) {
		while (i < len && ows(v[i]))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && ows(v[end - 1]))
			end--;
		if (!element(v + start, end - start, &ss)) {
			/* The walk from the right would stop here. */
			r->count = 0;
			r->picked = false;
		} else {
			if (r->count++ == 0)
				r->first = ss;
			if (cidr_find(r->trusted, r->ntrusted,
			    (const struct sockaddr *)&ss) < 0) {
				r->pick = ss;
				r->picked = true;
			}
		}
		if (i == len)
			return;
		i++;			/* the comma */
	}
}

bool
realip_result(const struct realip *r, struct sockaddr_storage *out)
{
	if (r->count == 0)
		return false;
	*out = r->picked ? r->pick : r->first;
	return true;
}
