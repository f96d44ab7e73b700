/*
 * proxyproto.c - the PROXY protocol header (see proxyproto.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxyproto.h"

static const uint8_t sig_v1[] = "PROXY ";
#define SIG_V1_LEN	(sizeof(sig_v1) - 1)
static const uint8_t sig_v2[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* v2: the fourth nibbles of byte 13 and 14. */
#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_FAM_UNSPEC	0x0
#define V2_FAM_INET	0x1
#define V2_FAM_INET6	0x2
#define V2_FAM_UNIX	0x3
#define V2_PROTO_UNSPEC	0x0
#define V2_PROTO_STREAM	0x1
#define V2_PROTO_DGRAM	0x2
/* The address block of each family: two addresses, two ports. */
#define V2_INET_LEN	(4 + 4 + 2 + 2)
#define V2_INET6_LEN	(16 + 16 + 2 + 2)
#define V2_UNIX_LEN	(108 + 108)
#define V2_TLV_HDR	3

static bool
prefix_of(const uint8_t *p, size_t len, const uint8_t *sig, size_t siglen)
{
	return memcmp(p, sig, len < siglen ? len : siglen) == 0;
}

enum proxyproto_sig
proxyproto_detect(const uint8_t *p, size_t len)
{
	if (len == 0)
		return PROXYPROTO_SIG_MORE;
	if (prefix_of(p, len, sig_v1, SIG_V1_LEN))
		return len >= SIG_V1_LEN ? PROXYPROTO_SIG_V1 :
		    PROXYPROTO_SIG_MORE;
	if (prefix_of(p, len, sig_v2, sizeof(sig_v2)))
		return len >= sizeof(sig_v2) ? PROXYPROTO_SIG_V2 :
		    PROXYPROTO_SIG_MORE;
	return PROXYPROTO_SIG_NONE;
}

static enum proxyproto_rc
refuse(struct proxyproto *out, const char *why)
{
	out->why = why;
	return PROXYPROTO_ERROR;
}

/* A port: 1 to 5 digits, no leading zero but "0" itself, at most 65535. */
static bool
v1_port(const uint8_t *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* An address of family af (inet_pton's strict forms) into sa. */
static bool
v1_addr(const uint8_t *s, size_t len, int af, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char text[INET6_ADDRSTRLEN];

	memset(ss, 0, sizeof(*ss));
	if (len == 0 || len >= sizeof(text))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	if (af == AF_INET) {
		sin->sin_family = AF_INET;
		return inet_pton(AF_INET, text, &sin->sin_addr) == 1;
	}
	sin6->sin6_family = AF_INET6;
	return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1;
}

static void
set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The next field of a v1 line: up to a space or the end. */
static size_t
v1_field(const uint8_t *p, size_t at, size_t end)
{
	const uint8_t *sp = memchr(p + at, ' ', end - at);

	return sp != NULL ? (size_t)(sp - p) : end;
}

static enum proxyproto_rc
parse_v1(const uint8_t *p, size_t len, struct proxyproto *out)
{
	size_t i, end, at, f[4][2];
	uint16_t sport, dport;
	int af, n;

	/* Up to the LF: printable ASCII, then CR LF. */
	for (i = 0; i < len && i < PROXYPROTO_V1_MAX; i++) {
		if (p[i] == '\n')
			break;
		if (p[i] == '\r') {
			if (i + 1 < len && p[i + 1] != '\n')
				return refuse(out, "v1: CR not before LF");
			continue;
		}
		if (p[i] < 0x20 || p[i] > 0x7e)
			return refuse(out, "v1: a byte that is not printable");
	}
	if (i == PROXYPROTO_V1_MAX)
		return refuse(out, "v1: no CRLF within 107 bytes");
	if (i == len)
		return PROXYPROTO_MORE;
	if (i == 0 || p[i - 1] != '\r')
		return refuse(out, "v1: LF without CR");
	out->len = i + 1;
	out->version = 1;
	out->cmd = PROXYPROTO_PROXY;
	end = i - 1;			/* the CR */
	at = SIG_V1_LEN;
	/* UNKNOWN, alone or with anything printable after a space. */
	if (end - at >= 7 && memcmp(p + at, "UNKNOWN", 7) == 0 &&
	    (end - at == 7 || p[at + 7] == ' '))
		return PROXYPROTO_DONE;
	if (end - at >= 5 && memcmp(p + at, "TCP4 ", 5) == 0)
		af = AF_INET;
	else if (end - at >= 5 && memcmp(p + at, "TCP6 ", 5) == 0)
		af = AF_INET6;
	else
		return refuse(out, "v1: protocol not TCP4, TCP6 or UNKNOWN");
	at += 5;
	/* Four fields, one space between each, none after the last. */
	for (n = 0; n < 4; n++) {
		size_t e = v1_field(p, at, end);

		if (e == at)
			return refuse(out, "v1: an empty field (spaces not "
			    "single)");
		if (n < 3 && e == end)
			return refuse(out, "v1: fewer than four fields");
		if (n == 3 && e != end)
			return refuse(out, "v1: more than four fields");
		f[n][0] = at;
		f[n][1] = e - at;
		at = e + 1;
	}
	if (!v1_addr(p + f[0][0], f[0][1], af, &out->src))
		return refuse(out, "v1: bad source address");
	if (!v1_addr(p + f[1][0], f[1][1], af, &out->dst))
		return refuse(out, "v1: bad destination address");
	if (!v1_port(p + f[2][0], f[2][1], &sport))
		return refuse(out, "v1: bad source port");
	if (!v1_port(p + f[3][0], f[3][1], &dport))
		return refuse(out, "v1: bad destination port");
	set_port(&out->src, sport);
	set_port(&out->dst, dport);
	out->has_addr = true;
	return PROXYPROTO_DONE;
}

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static enum proxyproto_rc
parse_v2(const uint8_t *p, size_t len, struct proxyproto *out)
{
	unsigned ver, cmd, fam, proto;
	size_t blen, alen = 0, at;

	if (len < PROXYPROTO_V2_FIXED)
		return PROXYPROTO_MORE;
	ver = p[12] >> 4;
	cmd = p[12] & 0xf;
	fam = p[13] >> 4;
	proto = p[13] & 0xf;
	blen = be16(p + 14);
	if (ver != 2)
		return refuse(out, "v2: version not 2");
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return refuse(out, "v2: command not LOCAL or PROXY");
	if (blen > PROXYPROTO_V2_LEN_MAX)
		return refuse(out, "v2: longer than we take");
	if (len < PROXYPROTO_V2_FIXED + blen)
		return PROXYPROTO_MORE;
	out->len = PROXYPROTO_V2_FIXED + blen;
	out->version = 2;
	/* LOCAL: the block, family and all, is discarded. */
	if (cmd == V2_CMD_LOCAL) {
		out->cmd = PROXYPROTO_LOCAL;
		return PROXYPROTO_DONE;
	}
	out->cmd = PROXYPROTO_PROXY;
	if (fam > V2_FAM_UNIX || proto > V2_PROTO_DGRAM)
		return refuse(out, "v2: unknown family or protocol");
	if ((fam == V2_FAM_UNSPEC) != (proto == V2_PROTO_UNSPEC))
		return refuse(out, "v2: family and protocol disagree");
	if (proto == V2_PROTO_DGRAM)
		return refuse(out, "v2: a datagram protocol");
	if (fam == V2_FAM_INET)
		alen = V2_INET_LEN;
	else if (fam == V2_FAM_INET6)
		alen = V2_INET6_LEN;
	else if (fam == V2_FAM_UNIX)
		alen = V2_UNIX_LEN;
	if (blen < alen)
		return refuse(out, "v2: length too short for the family");
	at = PROXYPROTO_V2_FIXED;
	if (fam == V2_FAM_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;

		memset(&out->src, 0, sizeof(out->src));
		memset(&out->dst, 0, sizeof(out->dst));
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, p + at, 4);
		memcpy(&d->sin_addr, p + at + 4, 4);
		memcpy(&s->sin_port, p + at + 8, 2);
		memcpy(&d->sin_port, p + at + 10, 2);
		out->has_addr = true;
	} else if (fam == V2_FAM_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;

		memset(&out->src, 0, sizeof(out->src));
		memset(&out->dst, 0, sizeof(out->dst));
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, p + at, 16);
		memcpy(&d->sin6_addr, p + at + 16, 16);
		memcpy(&s->sin6_port, p + at + 32, 2);
		memcpy(&d->sin6_port, p + at + 34, 2);
		out->has_addr = true;
	}
	/* The TLVs: each whole, up to the end of the block. */
	at += alen;
	while (at < out->len) {
		if (out->len - at < V2_TLV_HDR)
			return refuse(out, "v2: a TLV cut short");
		if (be16(p + at + 1) > out->len - at - V2_TLV_HDR)
			return refuse(out, "v2: a TLV longer than the header");
		at += V2_TLV_HDR + be16(p + at + 1);
	}
	return PROXYPROTO_DONE;
}

enum proxyproto_rc
proxyproto_parse(const uint8_t *p, size_t len, struct proxyproto *out)
{
	memset(out, 0, sizeof(*out));
	switch (proxyproto_detect(p, len)) {
	case PROXYPROTO_SIG_MORE:
		return PROXYPROTO_MORE;
	case PROXYPROTO_SIG_V1:
		return parse_v1(p, len, out);
	case PROXYPROTO_SIG_V2:
		return parse_v2(p, len, out);
	case PROXYPROTO_SIG_NONE:
	default:
		return refuse(out, "not a PROXY protocol header");
	}
}
