/*
 * h2conn.h - HTTP/2 client connections (nghttp2).
 *
 * A TLS connection whose ALPN chose "h2" is handed over after the
 * handshake.  Each stream becomes one exchange (proxy.c) on the same
 * HTTP/1.1 upstream pool as HTTP/1.1 clients use, routed, checked and
 * logged the same way.  nghttp2's HTTP messaging checks stay on; on top of
 * them every request is translated by h2req.c and re-parsed by the strict
 * HTTP/1.1 parser before it goes anywhere.
 */
#ifndef PORTCULLIS_H2CONN_H
#define PORTCULLIS_H2CONN_H

#include <stddef.h>

struct client;
struct worker;

/*
 * Take over the TLS connection `from` names (client.h), which negotiated
 * h2: its socket, its TLS session and the reference to its generation (the
 * one its handshake used).  On failure everything is closed and released.
 */
void	 h2_start(const struct client *from);

#endif /* PORTCULLIS_H2CONN_H */
