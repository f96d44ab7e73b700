/*
 * conn.h - what every client connection does at its start and at its end,
 * whatever protocol it speaks.
 *
 * Start: an accepted socket of an HTTPS listener does its TLS handshake
 * here; ALPN then hands it, with its TLS session and the generation the
 * handshake used, to HTTP/2 (h2.c) or HTTP/1.1 (h1.c).  A plain listener's
 * socket goes to HTTP/1.1 at once (it only redirects).
 *
 * End: after its last bytes, a connection stops sending (a TLS
 * close_notify, then a half-close) and reads and drops what the client
 * still sends for LINGER_SECS, so that closing does not reset the
 * connection before the client has read everything (RFC 9112 9.6).
 */
#ifndef PORTCULLIS_CONN_H
#define PORTCULLIS_CONN_H

#include <stdbool.h>
#include <stddef.h>

struct tls_conn;
struct worker;

/* After the last response: how long a client's last bytes are read. */
#define LINGER_SECS	2.0

/* Take over an accepted socket of listener li (TLS or plain). */
void	 conn_accept(struct worker *wk, int fd, size_t li, bool tls);

/* Stop sending for good: TLS's close_notify (tls may be NULL), then a
   half-close of the socket. */
void	 conn_linger(int fd, struct tls_conn *tls);
/* Read and drop what the client sends: true once it is done (its end, or
   an error), false while more may come. */
bool	 conn_drain(int fd);

#endif /* PORTCULLIS_CONN_H */
