/*
 * route.c - from a request's host to a site (see route.h).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "util.h"

struct route_entry {
	const char		*name;		/* exact name, or wildcard parent */
	size_t			 len;
	const struct config_site *site;
};

struct route_listener {
	struct route_entry	*exact;
	size_t			 nexact;
	struct route_entry	*wild;
	size_t			 nwild;
};

struct route_table {
	struct route_listener	*l;
	size_t			 nl;
};

static int
entry_cmp_key(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, MINIMUM(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct route_entry *x = a, *y = b;

	return entry_cmp_key(x->name, x->len, y->name, y->len);
}

static int
build_listener(const struct config_listener *cl, struct route_listener *rl)
{
	size_t i;

	rl->exact = calloc(cl->nsites, sizeof(*rl->exact));
	rl->wild = calloc(cl->nsites, sizeof(*rl->wild));
	if (rl->exact == NULL || rl->wild == NULL)
		return -1;
	for (i = 0; i < cl->nsites; i++) {
		const struct config_site *s = &cl->sites[i];

		if (s->wildcard)
			rl->wild[rl->nwild++] = (struct route_entry){
			    s->host + 2, strlen(s->host) - 2, s };
		else
			rl->exact[rl->nexact++] = (struct route_entry){
			    s->host, strlen(s->host), s };
	}
	qsort(rl->exact, rl->nexact, sizeof(*rl->exact), entry_cmp);
	qsort(rl->wild, rl->nwild, sizeof(*rl->wild), entry_cmp);
	return 0;
}

struct route_table *
route_build(const struct config *cfg)
{
	struct route_table *rt;
	size_t i;

	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		return NULL;
	if ((rt->l = calloc(cfg->nlisteners, sizeof(*rt->l))) == NULL) {
		free(rt);
		return NULL;
	}
	rt->nl = cfg->nlisteners;
	for (i = 0; i < cfg->nlisteners; i++) {
		if (build_listener(&cfg->listeners[i], &rt->l[i]) == -1) {
			route_free(rt);
			return NULL;
		}
	}
	return rt;
}

void
route_free(struct route_table *rt)
{
	size_t i;

	if (rt == NULL)
		return;
	for (i = 0; i < rt->nl; i++) {
		free(rt->l[i].exact);
		free(rt->l[i].wild);
	}
	free(rt->l);
	free(rt);
}

int
route_normalize_host(const char *host, size_t len, char *out, size_t outsz)
{
	const char *end = host + len, *colon;
	size_t i, n;

	if (len > 0 && host[0] == '[') {
		/* An IP literal: up to and including the bracket. */
		if ((colon = memchr(host, ']', len)) == NULL)
			return -1;
		n = (size_t)(colon - host) + 1;
	} else {
		colon = memchr(host, ':', len);
		n = colon != NULL ? (size_t)(colon - host) : (size_t)(end - host);
		if (n > 0 && host[n - 1] == '.')
			n--;
	}
	if (n == 0 || n > outsz)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = util_lower(host[i]);
	return (int)n;
}

static const struct config_site *
find(const struct route_entry *e, size_t n, const char *key, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp_key(key, len, e[mid].name, e[mid].len);

		if (c == 0)
			return e[mid].site;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct config_site *
route_lookup(const struct route_table *rt, size_t li, const char *host,
    size_t len)
{
	const struct route_listener *rl;
	const struct config_site *s;
	const char *dot;

	if (li >= rt->nl)
		return NULL;
	rl = &rt->l[li];
	if ((s = find(rl->exact, rl->nexact, host, len)) != NULL)
		return s;
	/* "*.example.com" covers "www.example.com", not "a.www.example.com". */
	if ((dot = memchr(host, '.', len)) == NULL || dot == host)
		return NULL;
	return find(rl->wild, rl->nwild, dot + 1, len - (size_t)(dot + 1 - host));
}
