/*
 * admin_fuzz.c - libFuzzer target for the admin command parser
 * (src/admin.c).
 *
 * The input is one command line as the socket delivers it (without the
 * newline).  admin_parse must agree with a model of admin.h: blanks (space
 * and tab) around the command and CRs at its end are ignored, and only
 * "status" and "reload", exactly, are commands.  Any disagreement
 * abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

static enum admin_cmd
model(const char *s, size_t len)
{
	size_t	start = 0, end = len;

	while (end > 0 && (s[end - 1] == '\r' || s[end - 1] == ' ' ||
	    s[end - 1] == '\t'))
		end--;
	while (start < end && (s[start] == ' ' || s[start] == '\t'))
		start++;
	if (end - start == 6 && memcmp(s + start, "status", 6) == 0)
		return ADMIN_CMD_STATUS;
	if (end - start == 6 && memcmp(s + start, "reload", 6) == 0)
		return ADMIN_CMD_RELOAD;
	return ADMIN_CMD_INVALID;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data;
	enum admin_cmd	 got;

	got = admin_parse(s, size);
	CHECK(got == ADMIN_CMD_INVALID || got == ADMIN_CMD_STATUS ||
	    got == ADMIN_CMD_RELOAD);
	CHECK(got == model(s, size));
	/* Only len counts: every prefix is parsed on its own terms. */
	if (size > 0)
		CHECK(admin_parse(s, size - 1) == model(s, size - 1));
	return 0;
}
