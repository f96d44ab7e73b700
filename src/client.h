/*
 * client.h - what every client connection does, whatever it speaks.
 *
 * At its start: who the peer is.  At its end: after its last bytes, a
 * connection stops sending (a TLS close_notify, then a half-close) and
 * reads and drops what the client still sends for LINGER_SECS, so that
 * closing does not reset the connection before the client has read
 * everything (RFC 9112 9.6).
 */
#ifndef PORTCULLIS_CLIENT_H
#define PORTCULLIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct tls_conn;

/* After the last response: how long a client's last bytes are read. */
#define LINGER_SECS	2.0

/* The peer of an accepted socket (AF_UNSPEC if unknown) and its address
   as text ("-" if unknown). */
void	 client_peer(int fd, struct sockaddr_storage *peer, char *ip,
	    size_t iplen);

/* Stop sending for good: TLS's close_notify (tls may be NULL), then a
   half-close of the socket. */
void	 client_linger(int fd, struct tls_conn *tls);
/* Read and drop what the client sends: true once it is done (its end, or
   an error), false while more may come. */
bool	 client_drain(int fd);

#endif /* PORTCULLIS_CLIENT_H */
