/*
 * proxyhdr.c - the PROXY protocol header sent upstream (see proxyhdr.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxyhdr.h"

/* proxy-protocol.txt 2.2 */
static const unsigned char v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
    0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
#define V2_CMD_LOCAL		0x20	/* version 2, LOCAL */
#define V2_CMD_PROXY		0x21	/* version 2, PROXY */
#define V2_FAM_UNSPEC		0x00
#define V2_FAM_TCP4		0x11	/* AF_INET, STREAM */
#define V2_FAM_TCP6		0x21	/* AF_INET6, STREAM */
#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

/* An endpoint: family (AF_INET, AF_INET6, or AF_UNSPEC: unknown), the
   address in network order (IPv4 in the first 4 bytes), the port. */
struct ep {
	int		 family;
	unsigned char	 a[16];
	uint16_t	 port;		/* host order */
};

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff };

/* sa as an endpoint, an IPv4-mapped IPv6 address as IPv4. */
static void
ep_of(const struct sockaddr *sa, struct ep *e)
{
	memset(e, 0, sizeof(*e));
	e->family = AF_UNSPEC;
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;

		e->family = AF_INET;
		memcpy(e->a, &s->sin_addr, 4);
		e->port = ntohs(s->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;

		e->port = ntohs(s->sin6_port);
		if (memcmp(s->sin6_addr.s6_addr, v4mapped, 12) == 0) {
			e->family = AF_INET;
			memcpy(e->a, s->sin6_addr.s6_addr + 12, 4);
		} else {
			e->family = AF_INET6;
			memcpy(e->a, s->sin6_addr.s6_addr, 16);
		}
	}
}

/* An IPv4 endpoint as the IPv6 address that maps it. */
static void
ep_map6(struct ep *e)
{
	unsigned char v4[4];

	if (e->family != AF_INET)
		return;
	memcpy(v4, e->a, 4);
	memcpy(e->a, v4mapped, 12);
	memcpy(e->a + 12, v4, 4);
	e->family = AF_INET6;
}

/*
 * Both endpoints of c, of one family (mixed: both IPv6): that family, or
 * AF_UNSPEC if either is unknown.
 */
static int
endpoints(const struct proxyhdr_conn *c, struct ep *src, struct ep *dst)
{
	ep_of(c->src, src);
	ep_of(c->dst, dst);
	if (src->family == AF_UNSPEC || dst->family == AF_UNSPEC)
		return AF_UNSPEC;
	if (src->family != dst->family) {
		ep_map6(src);
		ep_map6(dst);
	}
	return src->family;
}

static size_t
build_v1(const struct proxyhdr_conn *c, unsigned char *out, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	struct ep src, dst;
	int family, n;

	if ((family = endpoints(c, &src, &dst)) == AF_UNSPEC)
		n = snprintf((char *)out, cap, "PROXY UNKNOWN\r\n");
	else {
		if (inet_ntop(family, src.a, s, sizeof(s)) == NULL ||
		    inet_ntop(family, dst.a, d, sizeof(d)) == NULL)
			return 0;
		n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n",
		    family == AF_INET ? "TCP4" : "TCP6", s, d, src.port,
		    dst.port);
	}
	/* snprintf's NUL is not part of it, but needs the room. */
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

/* Bytes appended to a buffer of fixed room; err once one did not fit. */
struct out {
	unsigned char	*p;
	size_t		 len;
	size_t		 cap;
	bool		 err;
};

static void
put(struct out *o, const void *data, size_t len)
{
	if (o->err || len > o->cap - o->len) {
		o->err = true;
		return;
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
}

static void
put_u8(struct out *o, unsigned v)
{
	unsigned char b = (unsigned char)v;

	put(o, &b, 1);
}

static void
put_u16(struct out *o, size_t v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(o, b, 2);
}

/* A TLV of a string, left out if it is none, empty or too long. */
static void
put_tlv_str(struct out *o, unsigned type, const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > PROXYHDR_STR_MAX)
		return;
	put_u8(o, type);
	put_u16(o, len);
	put(o, s, len);
}

static size_t
str_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

/* The TLVs of a client over TLS. */
static void
put_tls(struct out *o, const struct proxyhdr_tls *t)
{
	size_t at, vlen;
	unsigned client = PP2_CLIENT_SSL;
	uint32_t verify;
	unsigned char v[4];

	put_tlv_str(o, PP2_TYPE_ALPN, t->alpn, str_len(t->alpn));
	put_tlv_str(o, PP2_TYPE_AUTHORITY, t->sni, t->sni != NULL ?
	    t->sni_len : 0);
	if (t->cert_conn)
		client |= PP2_CLIENT_CERT_CONN;
	if (t->cert_sess || t->cert_conn)
		client |= PP2_CLIENT_CERT_SESS;
	/* 0 only for a certificate presented and verified (the spec; not
	   OpenSSL's X509_V_OK when there was none). */
	verify = (t->cert_conn || t->cert_sess) && t->verified ? 0 : 1;
	v[0] = (unsigned char)(verify >> 24);
	v[1] = (unsigned char)(verify >> 16);
	v[2] = (unsigned char)(verify >> 8);
	v[3] = (unsigned char)verify;
	put_u8(o, PP2_TYPE_SSL);
	at = o->len;
	put_u16(o, 0);			/* its length, below */
	put_u8(o, client);
	put(o, v, 4);
	put_tlv_str(o, PP2_SUBTYPE_SSL_VERSION, t->version,
	    str_len(t->version));
	put_tlv_str(o, PP2_SUBTYPE_SSL_CIPHER, t->cipher, str_len(t->cipher));
	if (o->err)
		return;
	vlen = o->len - at - 2;
	o->p[at] = (unsigned char)(vlen >> 8);
	o->p[at + 1] = (unsigned char)vlen;
}

static size_t
build_v2(const struct proxyhdr_conn *c, unsigned char *out, size_t cap)
{
	struct out o = { out, 0, cap, false };
	struct ep src, dst;
	size_t alen, len;
	int family;

	family = endpoints(c, &src, &dst);
	put(&o, v2_sig, sizeof(v2_sig));
	if (family == AF_UNSPEC) {
		/* The spec: LOCAL presents no address, its length 0. */
		put_u8(&o, V2_CMD_LOCAL);
		put_u8(&o, V2_FAM_UNSPEC);
		put_u16(&o, 0);
		return o.err ? 0 : o.len;
	}
	alen = family == AF_INET ? 4 : 16;
	put_u8(&o, V2_CMD_PROXY);
	put_u8(&o, family == AF_INET ? V2_FAM_TCP4 : V2_FAM_TCP6);
	put_u16(&o, 0);			/* the length, below */
	put(&o, src.a, alen);
	put(&o, dst.a, alen);
	put_u16(&o, src.port);
	put_u16(&o, dst.port);
	if (c->tls != NULL)
		put_tls(&o, c->tls);
	if (o.err)
		return 0;
	len = o.len - 16;
	out[14] = (unsigned char)(len >> 8);
	out[15] = (unsigned char)len;
	return o.len;
}

size_t
proxyhdr_build(int version, const struct proxyhdr_conn *c,
    unsigned char *out, size_t cap)
{
	if (version == PROXYHDR_V1)
		return build_v1(c, out, cap);
	if (version == PROXYHDR_V2)
		return build_v2(c, out, cap);
	return 0;
}

size_t
proxyhdr_local(int version, unsigned char *out, size_t cap)
{
	static const struct proxyhdr_conn none = { NULL, NULL, NULL };

	return proxyhdr_build(version, &none, out, cap);
}
