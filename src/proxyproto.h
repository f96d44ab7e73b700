/*
 * proxyproto.h - the PROXY protocol header a load balancer puts in front
 * of a connection (HAProxy's proxy-protocol.txt): version 1 (one line of
 * text) and version 2 (binary), told apart by their first bytes.
 *
 * Pure and allocation-free, over the bytes received so far: the caller
 * asks again with more until the header is complete or refused, and
 * never learns anything from bytes past the header.  Strict:
 *
 *   v1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" (TCP6 alike), single spaces,
 *       addresses valid in the family named, ports decimal 0..65535
 *       without a leading zero, CRLF, at most 107 bytes, printable ASCII;
 *       "PROXY UNKNOWN" and anything printable up to the CRLF says no
 *       address.
 *   v2: the 12-byte signature, version 2, command LOCAL or PROXY, a known
 *       family and protocol (UNSPEC, TCP over IPv4 or IPv6, a UNIX stream;
 *       UDP refused), a length that holds the family's addresses and at
 *       most PROXYPROTO_V2_LEN_MAX, TLVs each whole inside it.  LOCAL
 *       (the balancer's own health check) discards the block as the
 *       specification says.
 *
 * Only a header with an IPv4 or IPv6 source is an address: LOCAL, v1
 * UNKNOWN, v2 UNSPEC and UNIX leave the connection's own peer.
 */
#ifndef PORTCULLIS_PROXYPROTO_H
#define PORTCULLIS_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A v1 line, CRLF included. */
#define PROXYPROTO_V1_MAX	107
/* v2: the fixed part, and the most we take after it (addresses and
   TLVs; a UNIX pair alone is 216). */
#define PROXYPROTO_V2_FIXED	16
#define PROXYPROTO_V2_LEN_MAX	2032
/* No header is longer. */
#define PROXYPROTO_MAX		(PROXYPROTO_V2_FIXED + PROXYPROTO_V2_LEN_MAX)

/* What the first bytes are. */
enum proxyproto_sig {
	PROXYPROTO_SIG_NONE = 0,	/* not a PROXY header */
	PROXYPROTO_SIG_MORE,		/* a proper prefix of a signature */
	PROXYPROTO_SIG_V1,		/* "PROXY " */
	PROXYPROTO_SIG_V2,		/* the 12-byte binary signature */
};

enum proxyproto_rc {
	PROXYPROTO_ERROR = -1,		/* refused: why says */
	PROXYPROTO_MORE = 0,		/* a prefix of a header: read on */
	PROXYPROTO_DONE = 1,		/* a whole header */
};

enum proxyproto_cmd {
	PROXYPROTO_LOCAL = 0,		/* v2 LOCAL */
	PROXYPROTO_PROXY,		/* v1, or v2 PROXY */
};

struct proxyproto {
	size_t			 len;		/* the header's bytes */
	int			 version;	/* 1 or 2 */
	enum proxyproto_cmd	 cmd;
	bool			 has_addr;	/* src and dst are set */
	struct sockaddr_storage	 src;		/* AF_INET or AF_INET6 */
	struct sockaddr_storage	 dst;
	const char		*why;		/* on PROXYPROTO_ERROR */
};

/* Whether p[0..len) starts with a signature (len 0: MORE). */
enum proxyproto_sig proxyproto_detect(const uint8_t *p, size_t len);

/*
 * The header at the start of p[0..len).  DONE: out is filled in, the
 * header is out->len bytes; MORE: every byte so far can still be part of
 * a header (none is past its end); ERROR: out->why says what is wrong
 * (also for bytes that are no PROXY header at all).
 */
enum proxyproto_rc proxyproto_parse(const uint8_t *p, size_t len,
	    struct proxyproto *out);

#endif /* PORTCULLIS_PROXYPROTO_H */
