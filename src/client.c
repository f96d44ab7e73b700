/*
 * client.c - what every client connection does (see client.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include "client.h"
#include "tls.h"

void
client_peer(int fd, struct sockaddr_storage *peer, char *ip, size_t iplen)
{
	socklen_t slen = sizeof(*peer);
	const void *addr;

	snprintf(ip, iplen, "-");
	if (getpeername(fd, (struct sockaddr *)peer, &slen) == -1) {
		peer->ss_family = AF_UNSPEC;
		return;
	}
	if (peer->ss_family == AF_INET)
		addr = &((struct sockaddr_in *)peer)->sin_addr;
	else if (peer->ss_family == AF_INET6)
		addr = &((struct sockaddr_in6 *)peer)->sin6_addr;
	else
		return;
	if (inet_ntop(peer->ss_family, addr, ip, (socklen_t)iplen) == NULL)
		snprintf(ip, iplen, "-");
}

void
client_linger(int fd, struct tls_conn *tls)
{
	if (tls != NULL)
		tls_conn_bye(tls);
	(void)shutdown(fd, SHUT_WR);
}

bool
client_drain(int fd)
{
	char junk[16384];
	ssize_t n;

	while ((n = recv(fd, junk, sizeof(junk), 0)) > 0)
		;
	return n == 0 || (errno != EAGAIN && errno != EINTR);
}
