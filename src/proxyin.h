/*
 * proxyin.h - PROXY protocol in: on a listener with proxy-protocol, what
 * comes before TLS (or HTTP on its plain port), read under
 * http.handshake-timeout and never past its end.
 *
 * From a source in the listener's trusted-proxies, a PROXY header (v1 or
 * v2, proxyproto.h) is required: missing, malformed, cut or too slow, the
 * connection is closed with one PROXY log line; v2 LOCAL (the balancer's
 * own check), v1 UNKNOWN and a header without an IP source keep the TCP
 * peer; otherwise the header's source becomes the connection's client
 * address.  From any other source, a connection that starts with a PROXY
 * signature is closed with one PROXY log line (its addresses are never
 * read, let alone used); one that starts otherwise is a direct client,
 * served as it is, with nothing of it consumed.  Then client_address_final()
 * and the next stage (the TLS handshake, or HTTP/1.1) take it over.
 */
#ifndef PORTCULLIS_PROXYIN_H
#define PORTCULLIS_PROXYIN_H

#include <stddef.h>

struct client;
struct worker;

/* What takes a connection over once its client address is final
   (handshake_begin, h1_start). */
typedef void	 proxyin_next_fn(const struct client *from);

/* Take over an accepted socket of listener li, which has proxy-protocol
   on; then next. */
void	 proxyin_start(struct worker *wk, int fd, size_t li,
	    proxyin_next_fn *next);

#endif /* PORTCULLIS_PROXYIN_H */
