/*
 * handshake.h - an accepted socket of an HTTPS listener: its TLS
 * handshake, then ALPN hands it, with its TLS session and the generation
 * the handshake used, to HTTP/2 (h2conn.c) or HTTP/1.1 (h1conn.c).
 */
#ifndef PORTCULLIS_HANDSHAKE_H
#define PORTCULLIS_HANDSHAKE_H

#include <stddef.h>

struct client;
struct worker;

/* Take over an accepted socket of HTTPS listener li (without
   proxy-protocol: its peer is its client, final at once). */
void	 handshake_start(struct worker *wk, int fd, size_t li);
/* Take over what `from` names (client.h: wk, fd, li, gen with its
   reference, peer and client_ip final; no TLS yet): the handshake. */
void	 handshake_begin(const struct client *from);

#endif /* PORTCULLIS_HANDSHAKE_H */
