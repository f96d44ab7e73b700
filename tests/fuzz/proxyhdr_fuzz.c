/*
 * proxyhdr_fuzz.c - libFuzzer target for the PROXY header sent upstream
 * (src/proxyhdr.c).  It builds rather than parses, so the fuzzer drives
 * the facts: the input is a version byte, a flags byte (each address
 * IPv4 or IPv6 or unknown, TLS or not, the certificate bits), two
 * 16-byte addresses and two ports, then NUL-separated strings: ALPN, SNI
 * (any bytes), TLS version, cipher.  The header must be at most
 * PROXYHDR_MAX (v1: 107) bytes, fit exactly the room it says (one more
 * for v1's NUL), come out the same twice, and decode here, by a reader
 * written from the spec, to exactly those facts: the addresses as the
 * header's rules say (IPv4-mapped as IPv4, mixed families both IPv6),
 * each TLV present exactly when its string is one it carries.  Any
 * violation abort()s.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyhdr.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define HEAD	38	/* version, flags, 2 * 16 address bytes, 2 ports */

static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a,
    0x51, 0x55, 0x49, 0x54, 0x0a };
static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
    0xff };

/* An endpoint as the header must say it. */
struct want {
	int	 family;
	uint8_t	 a[16];
	uint16_t port;
};

static void
sa_of(const uint8_t *a, uint16_t port, bool v6, struct sockaddr_storage *ss,
    struct want *w)
{
	memset(ss, 0, sizeof(*ss));
	memset(w, 0, sizeof(*w));
	w->port = port;
	if (v6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, a, 16);
		if (memcmp(a, mapped, 12) == 0) {
			w->family = AF_INET;
			memcpy(w->a, a + 12, 4);
		} else {
			w->family = AF_INET6;
			memcpy(w->a, a, 16);
		}
	} else {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, a, 4);
		w->family = AF_INET;
		memcpy(w->a, a, 4);
	}
}

static void
map6(struct want *w)
{
	uint8_t v4[4];

	if (w->family != AF_INET)
		return;
	memcpy(v4, w->a, 4);
	memcpy(w->a, mapped, 12);
	memcpy(w->a + 12, v4, 4);
	w->family = AF_INET6;
}

/* The next NUL-terminated string of data[*at..size), or NULL. */
static const char *
next_str(const uint8_t *data, size_t size, size_t *at, size_t *len)
{
	const uint8_t *p = data + *at, *nul;

	if (*at >= size)
		return NULL;
	nul = memchr(p, 0, size - *at);
	*len = nul != NULL ? (size_t)(nul - p) : size - *at;
	*at += *len + 1;
	return (const char *)p;
}

static bool
carried(const char *s, size_t len)
{
	return s != NULL && len > 0 && len <= PROXYHDR_STR_MAX;
}

/* A TLV of type t in p[0..n) at *at: its value, or NULL if another. */
static const uint8_t *
tlv(const uint8_t *p, size_t n, size_t *at, uint8_t t, size_t *vlen)
{
	const uint8_t *v;

	if (*at >= n || p[*at] != t)
		return NULL;
	CHECK(*at + 3 <= n);
	*vlen = (size_t)p[*at + 1] << 8 | p[*at + 2];
	CHECK(*at + 3 + *vlen <= n);
	v = p + *at + 3;
	*at += 3 + *vlen;
	return v;
}

static void
check_str_tlv(const uint8_t *p, size_t n, size_t *at, uint8_t t,
    const char *s, size_t len)
{
	const uint8_t *v;
	size_t vlen;

	v = tlv(p, n, at, t, &vlen);
	if (!carried(s, len)) {
		CHECK(v == NULL);
		return;
	}
	CHECK(v != NULL && vlen == len && memcmp(v, s, len) == 0);
}

static void
check_v1(const uint8_t *out, size_t n, int family, const struct want *src,
    const struct want *dst)
{
	char text[128], s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int len;

	CHECK(n <= 107);
	if (family == AF_UNSPEC) {
		CHECK(n == 15 && memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0);
		return;
	}
	CHECK(inet_ntop(family, src->a, s, sizeof(s)) != NULL);
	CHECK(inet_ntop(family, dst->a, d, sizeof(d)) != NULL);
	len = snprintf(text, sizeof(text), "PROXY %s %s %s %u %u\r\n",
	    family == AF_INET ? "TCP4" : "TCP6", s, d, src->port, dst->port);
	CHECK(len > 0 && (size_t)len == n && memcmp(out, text, n) == 0);
}

static void
check_v2(const uint8_t *out, size_t n, int family, const struct want *src,
    const struct want *dst, const struct proxyhdr_tls *t)
{
	size_t alen, at, slen, vlen, end;
	const uint8_t *ssl, *p;
	uint32_t verify;
	uint8_t client;

	CHECK(n >= 16 && memcmp(out, sig, 12) == 0);
	CHECK(((size_t)out[14] << 8 | out[15]) == n - 16);
	if (family == AF_UNSPEC) {
		CHECK(out[12] == 0x20 && out[13] == 0x00 && n == 16);
		return;
	}
	CHECK(out[12] == 0x21);
	CHECK(out[13] == (family == AF_INET ? 0x11 : 0x21));
	alen = family == AF_INET ? 4 : 16;
	CHECK(n >= 16 + 2 * alen + 4);
	p = out + 16;
	CHECK(memcmp(p, src->a, alen) == 0);
	CHECK(memcmp(p + alen, dst->a, alen) == 0);
	CHECK(((unsigned)p[2 * alen] << 8 | p[2 * alen + 1]) == src->port);
	CHECK(((unsigned)p[2 * alen + 2] << 8 | p[2 * alen + 3]) ==
	    dst->port);
	at = 2 * alen + 4;
	n -= 16;
	if (t == NULL) {
		CHECK(at == n);
		return;
	}
	check_str_tlv(p, n, &at, 0x01, t->alpn, t->alpn != NULL ?
	    strlen(t->alpn) : 0);
	check_str_tlv(p, n, &at, 0x02, t->sni, t->sni != NULL ? t->sni_len :
	    0);
	ssl = tlv(p, n, &at, 0x20, &slen);
	CHECK(ssl != NULL && slen >= 5 && at == n);
	client = ssl[0];
	verify = (uint32_t)ssl[1] << 24 | (uint32_t)ssl[2] << 16 |
	    (uint32_t)ssl[3] << 8 | ssl[4];
	CHECK(client == (0x01 | (t->cert_conn ? 0x02 : 0) |
	    (t->cert_conn || t->cert_sess ? 0x04 : 0)));
	CHECK((verify == 0) == ((t->cert_conn || t->cert_sess) &&
	    t->verified));
	end = slen;
	at = 5;
	check_str_tlv(ssl, end, &at, 0x21, t->version, t->version != NULL ?
	    strlen(t->version) : 0);
	check_str_tlv(ssl, end, &at, 0x23, t->cipher, t->cipher != NULL ?
	    strlen(t->cipher) : 0);
	CHECK(at == end);
	(void)vlen;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[PROXYHDR_MAX + 1], again[PROXYHDR_MAX + 1];
	struct sockaddr_storage s, d;
	struct proxyhdr_conn c;
	struct proxyhdr_tls t;
	struct want src, dst;
	const char *str[4] = { NULL, NULL, NULL, NULL };
	char *copy[4] = { NULL, NULL, NULL, NULL };
	size_t lens[4] = { 0, 0, 0, 0 }, at = HEAD, n, i;
	int version, family;
	uint8_t flags;

	if (size < HEAD)
		return 0;
	version = data[0] & 3;
	flags = data[1];
	sa_of(data + 2, (uint16_t)(data[34] << 8 | data[35]), flags & 1, &s,
	    &src);
	sa_of(data + 18, (uint16_t)(data[36] << 8 | data[37]), flags & 2, &d,
	    &dst);
	c.src = (flags & 4) ? NULL : (struct sockaddr *)&s;
	c.dst = (flags & 8) ? NULL : (struct sockaddr *)&d;
	c.tls = NULL;
	/* Each string in a block of its own size (NUL-terminated but the
	   SNI, which is read by length only). */
	for (i = 0; i < 4; i++) {
		if ((str[i] = next_str(data, size, &at, &lens[i])) == NULL)
			break;
		if ((copy[i] = malloc(lens[i] + 1)) == NULL)
			abort();
		memcpy(copy[i], str[i], lens[i]);
		copy[i][lens[i]] = '\0';
	}
	if (flags & 16) {
		memset(&t, 0, sizeof(t));
		t.alpn = copy[0];
		t.sni = copy[1];
		t.sni_len = lens[1];
		t.version = copy[2];
		t.cipher = copy[3];
		t.cert_conn = flags & 32;
		t.cert_sess = flags & 64;
		t.verified = flags & 128;
		c.tls = &t;
	}

	n = proxyhdr_build(version, &c, out, sizeof(out));
	if (version != PROXYHDR_V1 && version != PROXYHDR_V2) {
		CHECK(n == 0);
		goto done;
	}
	CHECK(n > 0 && n <= PROXYHDR_MAX);
	CHECK(proxyhdr_build(version, &c, again, sizeof(again)) == n);
	CHECK(memcmp(out, again, n) == 0);
	/* The room it needs, and no less (v1 also its NUL). */
	i = version == PROXYHDR_V1 ? n + 1 : n;
	CHECK(proxyhdr_build(version, &c, again, i) == n);
	CHECK(proxyhdr_build(version, &c, again, i - 1) == 0);

	family = AF_UNSPEC;
	if (c.src != NULL && c.dst != NULL) {
		if (src.family != dst.family) {
			map6(&src);
			map6(&dst);
		}
		family = src.family;
	}
	if (version == PROXYHDR_V1)
		check_v1(out, n, family, &src, &dst);
	else
		check_v2(out, n, family, &src, &dst, c.tls);
done:
	for (i = 0; i < 4; i++)
		free(copy[i]);
	return 0;
}
