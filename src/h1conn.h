/*
 * h1conn.h - HTTP/1.x client connections.
 *
 * Requests parsed with the strict parser (http1.c), admitted by
 * request.c and forwarded with an exchange (proxy.c); keep-alive and
 * pipelining, WebSocket tunnels.  On a plain listener admission answers
 * every request itself (a redirect to HTTPS).  The TLS handshake happened
 * before (handshake.c).
 */
#ifndef PORTCULLIS_H1CONN_H
#define PORTCULLIS_H1CONN_H

#include <stddef.h>

struct client;
struct worker;

/*
 * Take over the connection `from` names (client.h): its socket, its TLS
 * session (NULL on a plain listener) and the reference to its generation
 * (the one its handshake used).  On failure everything is closed and
 * released.
 */
void	 h1_start(const struct client *from);

/* Take over an accepted socket of plain listener li. */
void	 h1_accept(struct worker *wk, int fd, size_t li);

#endif /* PORTCULLIS_H1CONN_H */
