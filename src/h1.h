/*
 * h1.h - HTTP/1.x client connections.
 *
 * On an HTTPS listener: the TLS handshake, then requests parsed with the
 * strict parser, routed by host to a site and forwarded with an exchange
 * (proxy.c), keep-alive and pipelining, WebSocket tunnels.  On a plain
 * listener: every request for a known host is redirected to HTTPS.
 */
#ifndef PORTCULLIS_H1_H
#define PORTCULLIS_H1_H

#include <stdbool.h>
#include <stddef.h>

struct worker;

/* Take over an accepted socket of listener li (TLS or plain). */
void	 h1_accept(struct worker *wk, int fd, size_t li, bool tls);

#endif /* PORTCULLIS_H1_H */
