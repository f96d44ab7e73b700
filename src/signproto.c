/*
 * signproto.c - the signer's wire formats (see signproto.h).
 */
#include "autoconf.h"

#include <string.h>

#include "signproto.h"

static uint32_t
get_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static unsigned char *
put_u32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
	return p + sizeof(v);
}

long
signproto_keys_parse(const unsigned char *buf, size_t len,
    struct signproto_key *keys, size_t max)
{
	size_t off = 12, i, n, klen;

	if (len < 12 || len > SIGNPROTO_SET_MAX ||
	    get_u32(buf) != SIGNPROTO_MAGIC ||
	    get_u32(buf + 4) != SIGNPROTO_VERSION)
		return -1;
	n = get_u32(buf + 8);
	/* Each key takes at least 5 bytes: bounds the count early. */
	if (n > SIGNPROTO_KEYS_MAX || n > (len - off) / 5 ||
	    (keys != NULL && n > max))
		return -1;
	for (i = 0; i < n; i++) {
		if (len - off < 4)
			return -1;
		klen = get_u32(buf + off);
		off += 4;
		if (klen == 0 || klen > SIGNPROTO_KEY_MAX || klen > len - off)
			return -1;
		if (keys != NULL) {
			keys[i].pem = buf + off;
			keys[i].len = klen;
		}
		off += klen;
	}
	return off == len ? (long)n : -1;
}

size_t
signproto_keys_size(const struct signproto_key *keys, size_t n)
{
	size_t i, len = 12;

	if (n > SIGNPROTO_KEYS_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (keys[i].len == 0 || keys[i].len > SIGNPROTO_KEY_MAX ||
		    keys[i].len + 4 > SIGNPROTO_SET_MAX - len)
			return 0;
		len += 4 + keys[i].len;
	}
	return len;
}

size_t
signproto_keys_encode(const struct signproto_key *keys, size_t n,
    unsigned char *out)
{
	unsigned char *p = out;
	size_t i;

	if (signproto_keys_size(keys, n) == 0)
		return 0;
	p = put_u32(p, SIGNPROTO_MAGIC);
	p = put_u32(p, SIGNPROTO_VERSION);
	p = put_u32(p, (uint32_t)n);
	for (i = 0; i < n; i++) {
		p = put_u32(p, (uint32_t)keys[i].len);
		memcpy(p, keys[i].pem, keys[i].len);
		p += keys[i].len;
	}
	return (size_t)(p - out);
}

/* The bounds of a request's data by its op; 0 for an unknown op. */
static size_t
data_max(uint32_t op)
{
	switch (op) {
	case SIGNPROTO_SIGN_HASH:
		return SIGNPROTO_HASH_MAX;
	case SIGNPROTO_SIGN_DATA:
		return SIGNPROTO_DATA_MAX;
	default:
		return 0;
	}
}

int
signproto_req_parse(const unsigned char *buf, size_t len,
    struct signproto_req *r)
{
	size_t dlen;

	if (len < SIGNPROTO_REQ_HDR || len > SIGNPROTO_REQ_MAX)
		return -1;
	r->id = get_u32(buf);
	r->op = get_u32(buf + 4);
	r->algo = get_u32(buf + 8);
	memcpy(r->keyid, buf + 12, SIGNPROTO_KEYID);
	dlen = get_u32(buf + 12 + SIGNPROTO_KEYID);
	if (dlen == 0 || dlen > data_max(r->op) ||
	    dlen != len - SIGNPROTO_REQ_HDR)
		return -1;
	r->data = buf + SIGNPROTO_REQ_HDR;
	r->len = dlen;
	return 0;
}

size_t
signproto_req_encode(const struct signproto_req *r, unsigned char *out)
{
	unsigned char *p = out;

	if (r->len == 0 || r->len > data_max(r->op))
		return 0;
	p = put_u32(p, r->id);
	p = put_u32(p, r->op);
	p = put_u32(p, r->algo);
	memcpy(p, r->keyid, SIGNPROTO_KEYID);
	p = put_u32(p + SIGNPROTO_KEYID, (uint32_t)r->len);
	memcpy(p, r->data, r->len);
	return SIGNPROTO_REQ_HDR + r->len;
}

int
signproto_ans_parse(const unsigned char *buf, size_t len,
    struct signproto_ans *a)
{
	size_t slen;

	if (len < SIGNPROTO_ANS_HDR || len > SIGNPROTO_ANS_MAX)
		return -1;
	a->id = get_u32(buf);
	a->status = get_u32(buf + 4);
	slen = get_u32(buf + 8);
	if (a->status > SIGNPROTO_E_MAX || slen != len - SIGNPROTO_ANS_HDR ||
	    (a->status == SIGNPROTO_OK) != (slen > 0))
		return -1;
	a->sig = buf + SIGNPROTO_ANS_HDR;
	a->len = slen;
	return 0;
}

size_t
signproto_ans_encode(const struct signproto_ans *a, unsigned char *out)
{
	unsigned char *p = out;

	if (a->status > SIGNPROTO_E_MAX || a->len > SIGNPROTO_SIG_MAX ||
	    (a->status == SIGNPROTO_OK) != (a->len > 0))
		return 0;
	p = put_u32(p, a->id);
	p = put_u32(p, a->status);
	p = put_u32(p, (uint32_t)a->len);
	if (a->len > 0)
		memcpy(p, a->sig, a->len);
	return SIGNPROTO_ANS_HDR + a->len;
}
