/*
 * testconf.h - a configuration from text, for the unit tests that need
 * one (route, request, tls, upstate, balance): one place that parses and
 * says why a test's configuration was refused.
 */
#ifndef PORTCULLIS_TESTCONF_H
#define PORTCULLIS_TESTCONF_H

#include <stddef.h>

#include "config.h"

/*
 * text (len bytes) parsed as "t.conf" with opts (NULL: pure, no file
 * read).  NULL if it is refused, each error on stderr.
 */
struct config *testconf_parse(const char *text, size_t len,
	    const struct config_opts *opts);

#endif /* PORTCULLIS_TESTCONF_H */
