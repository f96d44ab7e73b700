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
#include <sys/socket.h>

struct gen;
struct tls_conn;
struct worker;

/*
 * Take over a TLS connection that negotiated h2: its socket, its TLS
 * session and the reference to gen (the generation its handshake used).
 * On failure everything is closed and released.
 */
void	 h2_accept(struct worker *wk, int fd, size_t li, struct tls_conn *tls,
	    struct gen *gen, const struct sockaddr_storage *peer,
	    const char *client_ip);

#endif /* PORTCULLIS_H2CONN_H */
