/*
 * testconf.c - a configuration from text, for unit tests (testconf.h).
 */
#include <stdio.h>

#include "testconf.h"

struct config *
testconf_parse(const char *text, size_t len, const struct config_opts *opts)
{
	static const struct config_opts pure = { .pure = true };
	struct config_errors errs = { NULL, NULL, 0, 0 };
	struct config *cfg = NULL;
	size_t i;

	if (config_parse_buffer("t.conf", text, len, opts != NULL ? opts :
	    &pure, &cfg, &errs) == -1) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "t.conf refused: %s\n", errs.msgs[i]);
		cfg = NULL;
	}
	config_errors_free(&errs);
	return cfg;
}
