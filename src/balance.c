/*
 * balance.c - choosing an upstream (see balance.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "balance.h"
#include "ratelimit.h"
#include "upstate.h"
#include "util.h"

/* The ring's hash key: fixed, so that every worker and every reload puts
   a client on the same upstream. */
static const unsigned char ring_key[16] = "portcullis-ring";

uint64_t
balance_hash(const void *data, size_t len)
{
	return ratelimit_siphash(ring_key, data, len);
}

static int
point_cmp(const void *x, const void *y)
{
	const struct config_ring_point *a = x, *b = y;

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	return a->up < b->up ? -1 : a->up > b->up;
}

int
balance_ring(struct config_backend *be)
{
	struct config_ring_point *r;
	char buf[1100];
	size_t i, v, n = 0;
	int len;

	free(be->ring);
	be->ring = NULL;
	be->nring = 0;
	if ((r = calloc(be->nups * BALANCE_VNODES, sizeof(*r))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* By name, not by place in the list: reordering moves no one. */
	for (i = 0; i < be->nups; i++)
		for (v = 0; v < BALANCE_VNODES; v++) {
			len = snprintf(buf, sizeof(buf), "%s#%zu",
			    be->ups[i].name, v);
			if (len < 0 || (size_t)len >= sizeof(buf))
				len = (int)sizeof(buf) - 1;
			r[n].hash = balance_hash(buf, (size_t)len);
			r[n].up = (uint32_t)i;
			n++;
		}
	qsort(r, n, sizeof(*r), point_cmp);
	be->ring = r;
	be->nring = n;
	return 0;
}

/* The cookie value of upstream up: see balance.h. */
static int
cookie_of(const unsigned char *key, size_t keylen,
    const struct config_listener *l, const struct config_site *site,
    const struct config_path *path, struct config_upstream *up)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[32];
	char *msg;
	size_t i;
	int rc;

	if (asprintf(&msg, "%s %u\n%s\n%s\n%s", l->bind != NULL ?
	    l->bind : "", l->https_port, site->host, path != NULL ?
	    path->prefix : "", up->name) == -1)
		return -1;
	rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, msg, strlen(msg),
	    mac);
	free(msg);
	if (rc < 0)
		return -1;
	for (i = 0; i < CONFIG_COOKIE_HEX / 2; i++) {
		up->cookie[2 * i] = hex[mac[i] >> 4];
		up->cookie[2 * i + 1] = hex[mac[i] & 15];
	}
	up->cookie[CONFIG_COOKIE_HEX] = '\0';
	return 0;
}

struct prepare {
	const unsigned char	*key;
	size_t			 keylen;
	int			 rc;
};

static void
prepare_one(void *arg, const struct config_listener *l,
    const struct config_site *site, const struct config_path *path,
    struct config_backend *be)
{
	struct prepare *pp = arg;
	size_t i;

	if (be->balance == CONFIG_LB_IP_HASH && be->nups > 1 &&
	    balance_ring(be) == -1)
		pp->rc = -1;
	if (be->balance == CONFIG_LB_STICKY)
		for (i = 0; i < be->nups; i++)
			if (cookie_of(pp->key, pp->keylen, l, site, path,
			    &be->ups[i]) == -1)
				pp->rc = -1;
}

int
balance_prepare(struct config *cfg, const unsigned char *key, size_t keylen)
{
	struct prepare pp = { key, keylen, 0 };

	config_foreach_backend(cfg, prepare_one, &pp);
	return pp.rc;
}

static bool
ows(char c)
{
	return c == ' ' || c == '\t';
}

int
balance_cookie_pick(const struct config_backend *be, const char *value,
    size_t len)
{
	const size_t nlen = sizeof(BALANCE_COOKIE) - 1;
	const char *p = value, *end = value + len, *semi, *v, *ve;
	size_t i;

	while (p < end) {
		semi = memchr(p, ';', (size_t)(end - p));
		if (semi == NULL)
			semi = end;
		while (p < semi && ows(*p))
			p++;
		if ((size_t)(semi - p) > nlen && memcmp(p, BALANCE_COOKIE,
		    nlen) == 0 && p[nlen] == '=') {
			v = p + nlen + 1;
			ve = semi;
			while (ve > v && ows(ve[-1]))
				ve--;
			if (ve - v == CONFIG_COOKIE_HEX)
				for (i = 0; i < be->nups; i++)
					if (be->ups[i].cookie[0] != '\0' &&
					    memcmp(v, be->ups[i].cookie,
					    CONFIG_COOKIE_HEX) == 0)
						return (int)i;
		}
		p = semi + 1;
	}
	return -1;
}

/* Whether a prefix can go in a cookie's Path as it is (RFC 6265 4.1.1). */
static bool
path_attr_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e || *s == ';')
			return false;
	return true;
}

const char *
balance_set_cookie(const struct config_backend *be, size_t i,
    const char *path, char *buf, size_t len)
{
	int n;

	if (i >= be->nups || be->ups[i].cookie[0] == '\0')
		return NULL;
	if (path == NULL || !path_attr_ok(path))
		path = "/";
	n = snprintf(buf, len, "%s=%s; Path=%s; Secure; HttpOnly; "
	    "SameSite=Lax", BALANCE_COOKIE, be->ups[i].cookie, path);
	return n > 0 && (size_t)n < len ? buf : NULL;
}

size_t
balance_ring_find(const struct config_backend *be, uint64_t hash)
{
	size_t lo = 0, hi = be->nring;

	/* The first point at or past hash; past the last: the first. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (be->ring[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == be->nring ? 0 : lo;
}

/*
 * Whether upstream i may take the request (UPSTATE_TRIAL: it must: this
 * request claimed its trial after a fail-timeout).
 */
static enum upstate_use
use(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq, size_t i, uint64_t now)
{
	if (rq->tried & ((uint64_t)1 << i))
		return UPSTATE_NO;
	if (u == NULL)
		return UPSTATE_YES;
	/* One upstream and no active check: never skipped (see above). */
	if (be->nups == 1 && !be->health.on)
		return UPSTATE_YES;
	return upstate_claim(u, be, be->ups[i].slot, now);
}

static bool
usable(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq, size_t i, uint64_t now)
{
	return use(be, u, rq, i, now) != UPSTATE_NO;
}

static int
none_left(const struct config_backend *be, const struct balance_req *rq)
{
	uint64_t all = be->nups >= 64 ? UINT64_MAX :
	    ((uint64_t)1 << be->nups) - 1;

	return (rq->tried & all) == all ? BALANCE_ALL_TRIED : BALANCE_ALL_DOWN;
}

/* Where round-robin starts: the next turn, or past a retry's failed one. */
static size_t
turn(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq)
{
	if (rq->after >= 0)
		return ((size_t)rq->after + 1) % be->nups;
	return u != NULL ? (size_t)(upstate_rr(u, be) % be->nups) : 0;
}

static int
pick_rr(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq, uint64_t now)
{
	size_t start, i, k;

	start = turn(be, u, rq);
	for (k = 0; k < be->nups; k++) {
		i = (start + k) % be->nups;
		if (usable(be, u, rq, i, now))
			return (int)i;
	}
	return none_left(be, rq);
}

static int
pick_least(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq, uint64_t now)
{
	uint64_t best = UINT64_MAX, n;
	size_t start, i, k;
	int pick = -1;

	if (u == NULL)
		return pick_rr(be, u, rq, now);
	/* Ties go to the first from a point that turns. */
	start = turn(be, u, rq);
	for (k = 0; k < be->nups; k++) {
		i = (start + k) % be->nups;
		switch (use(be, u, rq, i, now)) {
		case UPSTATE_NO:
			continue;
		case UPSTATE_TRIAL:
			return (int)i;	/* claimed: it must be this one */
		case UPSTATE_YES:
			break;
		}
		n = upstate_inflight(u, be->ups[i].slot);
		if (n < best) {
			best = n;
			pick = (int)i;
		}
	}
	return pick >= 0 ? pick : none_left(be, rq);
}

static int
pick_hash(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq, uint64_t now)
{
	unsigned char key[UTIL_CLIENT_KEY_MAX];
	size_t len, p, k;
	uint32_t i;

	if (be->nring == 0 || rq->peer == NULL ||
	    (len = util_client_key(rq->peer, key)) == 0)
		return pick_rr(be, u, rq, now);
	p = balance_ring_find(be, balance_hash(key, len));
	/* Down or tried: the next upstream on the ring. */
	for (k = 0; k < be->nring; k++) {
		i = be->ring[(p + k) % be->nring].up;
		if (i < be->nups && usable(be, u, rq, i, now))
			return (int)i;
	}
	return none_left(be, rq);
}

int
balance_pick(const struct config_backend *be, struct upstate *u,
    const struct balance_req *rq, uint64_t now)
{
	if (be->nups == 0)
		return BALANCE_ALL_DOWN;
	/* One: no turn to take, no one to compare with. */
	if (be->nups == 1)
		return usable(be, u, rq, 0, now) ? 0 : none_left(be, rq);
	switch (be->balance) {
	case CONFIG_LB_LEAST_CONN:
		return pick_least(be, u, rq, now);
	case CONFIG_LB_IP_HASH:
		return pick_hash(be, u, rq, now);
	case CONFIG_LB_STICKY:
		if (rq->sticky >= 0 && (size_t)rq->sticky < be->nups &&
		    usable(be, u, rq, (size_t)rq->sticky, now))
			return rq->sticky;
		return pick_rr(be, u, rq, now);
	default:
		return pick_rr(be, u, rq, now);
	}
}
