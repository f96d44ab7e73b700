/*
 * handshake.h - an accepted socket of an HTTPS listener: its TLS
 * handshake, then ALPN hands it, with its TLS session and the generation
 * the handshake used, to HTTP/2 (h2conn.c) or HTTP/1.1 (h1conn.c).
 */
#ifndef PORTCULLIS_HANDSHAKE_H
#define PORTCULLIS_HANDSHAKE_H

#include <stddef.h>

struct worker;

/* Take over an accepted socket of HTTPS listener li. */
void	 handshake_start(struct worker *wk, int fd, size_t li);

#endif /* PORTCULLIS_HANDSHAKE_H */
