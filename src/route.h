/*
 * route.h - from a request's host to a site.
 *
 * Built per configuration generation: for every listener, its exact site
 * names and its wildcard domains ("*.example.com" is stored as
 * "example.com" and matches exactly one more label).  Lookups are binary
 * searches over sorted arrays; the table is immutable once built.
 */
#ifndef PORTCULLIS_ROUTE_H
#define PORTCULLIS_ROUTE_H

#include <stddef.h>

#include "config.h"

struct route_table;

struct route_table *route_build(const struct config *cfg);
void		 route_free(struct route_table *rt);

/*
 * Normalise a host as sent (Host field, :authority, SNI, absolute-form
 * authority): strip a port and one trailing dot, lower-case.  An IP
 * literal keeps its brackets.  Returns the length written to out (no NUL),
 * or -1 if the result is empty or longer than outsz.  Pure.
 */
int		 route_normalize_host(const char *host, size_t len, char *out,
		    size_t outsz);

/*
 * The site of listener li serving the normalised host, exact names first,
 * then a wildcard for the parent domain.  NULL if none.
 */
const struct config_site *route_lookup(const struct route_table *rt,
		    size_t li, const char *host, size_t len);

#endif /* PORTCULLIS_ROUTE_H */
