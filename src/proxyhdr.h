/*
 * proxyhdr.h - the PROXY protocol header portcullis sends upstream
 * (HAProxy's proxy-protocol.txt, versions 1 and 2): what a backend with
 * upstream-proxy-protocol writes first on each new upstream connection,
 * before anything else (before TLS too), to say which client connection
 * the upstream connection stands for.
 *
 * Pure: bytes from facts, nothing read from a socket.  Output only, so no
 * parser: the PROXY protocol in (a listener's proxy-protocol) is another
 * module's.  What it promises:
 *
 *   v1  "PROXY TCP4 SRC DST SPORT DPORT\r\n" (TCP6 for IPv6; an
 *       IPv4-mapped IPv6 address is written as the IPv4 address it maps,
 *       and when one side is IPv4 and the other IPv6, both are written as
 *       IPv6, the IPv4 one mapped); "PROXY UNKNOWN\r\n" when either
 *       address is unknown.  At most 107 bytes, as the spec says.
 *   v2  the signature, version 2 and the PROXY command, AF_INET or
 *       AF_INET6 over STREAM (the same address rules), the addresses and
 *       ports, then, for a client over TLS, these TLVs in this order:
 *       PP2_TYPE_ALPN (the protocol the client negotiated, if any),
 *       PP2_TYPE_AUTHORITY (the SNI it sent, if any) and PP2_TYPE_SSL
 *       (client bits, verify, then the sub-TLVs PP2_SUBTYPE_SSL_VERSION
 *       and PP2_SUBTYPE_SSL_CIPHER).  An unknown address: the LOCAL
 *       command, AF_UNSPEC, length 0 (the spec: no address, and the
 *       receiver uses the connection's own endpoints).
 *
 * The same facts give the same bytes: the pool compares connections by a
 * hash of them (proxy.c).
 */
#ifndef PORTCULLIS_PROXYHDR_H
#define PORTCULLIS_PROXYHDR_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* upstream-proxy-protocol's versions (config.h's values). */
#define PROXYHDR_V1		1
#define PROXYHDR_V2		2

/* The longest string a TLV carries here (ALPN, SNI, version, cipher);
   a longer one is left out. */
#define PROXYHDR_STR_MAX	255
/* The largest header proxyhdr_build() writes: v2 over IPv6 with every
   TLV at its longest. */
#define PROXYHDR_MAX	(16 + 36 + 2 * (3 + PROXYHDR_STR_MAX) + \
	    3 + 5 + 2 * (3 + PROXYHDR_STR_MAX))
/* The header of a health check's connection (proxyhdr_local). */
#define PROXYHDR_LOCAL_MAX	16

/* What the client's TLS session was. */
struct proxyhdr_tls {
	const char	*alpn;		/* "h2", "http/1.1"; NULL or "": none */
	const char	*sni;		/* as sent; NULL: none */
	size_t		 sni_len;
	const char	*version;	/* "TLSv1.3"; NULL: left out */
	const char	*cipher;	/* NULL: left out */
	bool		 cert_conn;	/* a client certificate on this
					   connection's handshake */
	bool		 cert_sess;	/* one in its session (resumed too) */
	bool		 verified;	/* and it was verified */
};

/* The client connection an upstream connection stands for. */
struct proxyhdr_conn {
	const struct sockaddr	*src;	/* the client; NULL: unknown */
	const struct sockaddr	*dst;	/* the address it connected to */
	const struct proxyhdr_tls *tls;	/* NULL: not over TLS */
};

/*
 * The header of version (PROXYHDR_V1 or PROXYHDR_V2) for c, into
 * out[0..cap): its length, or 0 if version is neither or it does not fit
 * (PROXYHDR_MAX always does).  An address that is not AF_INET or
 * AF_INET6 is unknown.
 */
size_t	 proxyhdr_build(int version, const struct proxyhdr_conn *c,
	    unsigned char *out, size_t cap);

/*
 * The header of a connection made on the proxy's own behalf (a health
 * check): v1 "PROXY UNKNOWN\r\n", v2 the LOCAL command without address.
 * Its length, or 0 as above.
 */
size_t	 proxyhdr_local(int version, unsigned char *out, size_t cap);

#endif /* PORTCULLIS_PROXYHDR_H */
