/*
 * balance_fuzz.c - libFuzzer target for the sticky-cookie parser
 * (balance_cookie_pick(), src/balance.c).
 *
 * The input is a Cookie field value, given as it is to a backend of three
 * upstreams whose cookie values are made once under a fixed key.  The
 * answer must be the one of a reference written here the obvious way (a
 * copy split at ';', blanks trimmed, the first pair named BALANCE_COOKIE
 * whose value is one of the three); it is -1 or an index in range; the
 * input is read from a heap block of exactly its length, so ASan sees a
 * read past it.  Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct config *cfg;

static void
init(void)
{
	static const char text[] =
	    "listener {\n  bind = \"127.0.0.1\"\n"
	    "  tls { cert = \"/c\" key = \"/k\" }\n"
	    "  site \"a.test\" { upstream = { \"127.0.0.1:1\", "
	    "\"127.0.0.1:2\", \"[::1]:3\" }\n"
	    "    load-balance = \"sticky-cookie\" }\n}\n";
	static const unsigned char key[32] = "a fixed key for the fuzz target";
	struct config_opts opts = { .pure = true };
	struct config_errors errs = { NULL, NULL, 0, 0 };

	CHECK(config_parse_buffer("f.conf", text, sizeof(text) - 1, &opts,
	    &cfg, &errs) == 0);
	CHECK(balance_prepare(cfg, key, sizeof(key)) == 0);
}

static int
reference(const struct config_backend *be, const uint8_t *data, size_t len)
{
	const size_t nlen = strlen(BALANCE_COOKIE);
	size_t start = 0, end, a, b, i;

	while (start <= len) {
		for (end = start; end < len && data[end] != ';'; end++)
			;
		a = start;
		b = end;
		while (a < b && (data[a] == ' ' || data[a] == '\t'))
			a++;
		while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t'))
			b--;
		if (b - a == nlen + 1 + CONFIG_COOKIE_HEX &&
		    memcmp(data + a, BALANCE_COOKIE, nlen) == 0 &&
		    data[a + nlen] == '=')
			for (i = 0; i < be->nups; i++)
				if (memcmp(data + a + nlen + 1,
				    be->ups[i].cookie, CONFIG_COOKIE_HEX) == 0)
					return (int)i;
		start = end + 1;
	}
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const struct config_backend *be;
	char *copy;
	int got;

	if (cfg == NULL)
		init();
	be = &cfg->listeners[0].sites[0].be;
	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		return 0;
	memcpy(copy, data, len);
	got = balance_cookie_pick(be, copy, len);
	CHECK(got >= -1 && got < (int)be->nups);
	CHECK(got == reference(be, data, len));
	free(copy);
	return 0;
}
