/*
 * gen.c - configuration generations (see gen.h).
 */
#include "autoconf.h"

#include <stdlib.h>

#include "balance.h"
#include "config.h"
#include "gen.h"
#include "route.h"
#include "tls.h"
#include "uptls.h"

struct gen *
gen_new(struct config *cfg, uint64_t id, const unsigned char *ticket_key,
    size_t ticket_key_len, const unsigned char *sticky_key,
    size_t sticky_key_len, const char **why)
{
	static char err[256];
	struct gen *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		*why = "out of memory";
		config_free(cfg);
		return NULL;
	}
	g->refs = 1;
	g->id = id;
	g->cfg = cfg;
	if ((g->routes = route_build(cfg)) == NULL ||
	    balance_prepare(cfg, sticky_key, sticky_key_len) == -1) {
		*why = "out of memory";
		gen_unref(g);
		return NULL;
	}
	g->tls = tls_ctx_new(cfg, g->routes, ticket_key, ticket_key_len, err,
	    sizeof(err));
	if (g->tls == NULL) {
		*why = err;
		gen_unref(g);
		return NULL;
	}
	if ((g->uptls = uptls_ctx_new(cfg, err, sizeof(err))) == NULL) {
		*why = err;
		gen_unref(g);
		return NULL;
	}
	return g;
}

struct gen *
gen_ref(struct gen *g)
{
	g->refs++;
	return g;
}

void
gen_unref(struct gen *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	uptls_ctx_free(g->uptls);
	tls_ctx_free(g->tls);
	route_free(g->routes);
	config_free(g->cfg);
	free(g);
}
