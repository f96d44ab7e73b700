/*
 * gen.h - a configuration generation as a worker uses it: the decoded
 * config, its routing table, its TLS credentials and those of its HTTPS
 * upstreams.
 *
 * Reference counted: the worker holds the current one, each connection
 * holds the one its TLS session was made with, each request the one it is
 * routed by, so that a reload never changes what an exchange in progress
 * sees.
 */
#ifndef PORTCULLIS_GEN_H
#define PORTCULLIS_GEN_H

#include <stddef.h>
#include <stdint.h>

struct config;

struct gen {
	unsigned		 refs;
	uint64_t		 id;
	struct config		*cfg;
	struct route_table	*routes;
	struct tls_ctx		*tls;
	struct uptls_ctx	*uptls;		/* upstream-scheme "https" */
};

/*
 * The routing table and TLS credentials (its listeners' and its
 * upstreams') of cfg, with one reference.  cfg
 * is taken over (freed on failure too).  NULL on failure, with why (valid
 * until the next call).
 */
struct gen	*gen_new(struct config *cfg, uint64_t id,
		    const unsigned char *ticket_key, size_t ticket_key_len,
		    const unsigned char *sticky_key, size_t sticky_key_len,
		    const char **why);
struct gen	*gen_ref(struct gen *g);
/* The last reference frees it all; NULL is ignored. */
void		 gen_unref(struct gen *g);

#endif /* PORTCULLIS_GEN_H */
