/*
 * ticketname.c - the key names of the session tickets a ClientHello
 * offers (see ticketname.h).
 *
 * ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2): legacy_version (2),
 * random (32), legacy_session_id <0..32>, cipher_suites <2..2^16-2>,
 * legacy_compression_methods <1..2^8-1>, extensions <0..2^16-1> (absent
 * in an old TLS 1.2 hello).  session_ticket (35, RFC 5077) holds the
 * ticket itself; pre_shared_key (41, RFC 8446 4.2.11) holds identities
 * <7..2^16-1> of { identity <1..2^16-1>, obfuscated_ticket_age (4) },
 * then the binders, which are not read.
 */
#include "autoconf.h"

#include <stdint.h>
#include <string.h>

#include "ticketname.h"

#define EXT_SESSION_TICKET	35
#define EXT_PRE_SHARED_KEY	41

/* A cursor over bytes that never reads past its end. */
struct rd {
	const unsigned char	*p;
	size_t			 left;
};

static int
rd_skip(struct rd *r, size_t n)
{
	if (n > r->left)
		return -1;
	r->p += n;
	r->left -= n;
	return 0;
}

static int
rd_u8(struct rd *r, size_t *v)
{
	if (r->left < 1)
		return -1;
	*v = r->p[0];
	return rd_skip(r, 1);
}

static int
rd_u16(struct rd *r, size_t *v)
{
	if (r->left < 2)
		return -1;
	*v = (size_t)r->p[0] << 8 | r->p[1];
	return rd_skip(r, 2);
}

/* The next n bytes as a cursor of their own. */
static int
rd_sub(struct rd *r, size_t n, struct rd *sub)
{
	sub->p = r->p;
	sub->left = n;
	return rd_skip(r, n);
}

static void
add_name(const unsigned char *ticket, size_t len,
    unsigned char names[][TICKETNAME_LEN], size_t max, size_t *n)
{
	if (len < TICKETNAME_LEN || *n >= max)
		return;
	memcpy(names[*n], ticket, TICKETNAME_LEN);
	(*n)++;
}

static int
psk_names(struct rd ext, unsigned char names[][TICKETNAME_LEN], size_t max,
    size_t *n)
{
	struct rd ids, id;
	size_t len, idlen;

	if (rd_u16(&ext, &len) == -1 || rd_sub(&ext, len, &ids) == -1)
		return -1;
	while (ids.left > 0) {
		if (rd_u16(&ids, &idlen) == -1 ||
		    rd_sub(&ids, idlen, &id) == -1 || rd_skip(&ids, 4) == -1)
			return -1;
		add_name(id.p, id.left, names, max, n);
	}
	return 0;
}

int
ticketname_parse(const unsigned char *hello, size_t len,
    unsigned char names[][TICKETNAME_LEN], size_t max)
{
	struct rd r = { hello, len }, exts, ext;
	size_t v, type, elen, n = 0;

	if (rd_skip(&r, 2 + 32) == -1 || rd_u8(&r, &v) == -1 ||
	    rd_skip(&r, v) == -1 || rd_u16(&r, &v) == -1 ||
	    rd_skip(&r, v) == -1 || rd_u8(&r, &v) == -1 ||
	    rd_skip(&r, v) == -1)
		return -1;
	if (r.left == 0)
		return 0;
	if (rd_u16(&r, &v) == -1 || rd_sub(&r, v, &exts) == -1)
		return -1;
	while (exts.left > 0) {
		if (rd_u16(&exts, &type) == -1 || rd_u16(&exts, &elen) == -1 ||
		    rd_sub(&exts, elen, &ext) == -1)
			return -1;
		if (type == EXT_SESSION_TICKET)
			add_name(ext.p, ext.left, names, max, &n);
		else if (type == EXT_PRE_SHARED_KEY &&
		    psk_names(ext, names, max, &n) == -1)
			return -1;
	}
	return (int)n;
}
