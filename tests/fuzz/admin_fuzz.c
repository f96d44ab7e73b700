/*
 * admin_fuzz.c - libFuzzer target for the admin command parser
 * (src/admin.c).
 *
 * The input is one command line as the socket delivers it (without the
 * newline).  admin_parse must agree with a model of admin.h: blanks (space
 * and tab) around the command and CRs at its end are ignored, and only
 * "status" and "reload", exactly, are commands, and "renew" with at most
 * one word of printable ASCII (at most ADMIN_ARG_MAX bytes) after blanks.
 * Any disagreement abort()s; the argument must lie inside the input.
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
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static enum admin_cmd
model(const char *s, size_t len)
{
	size_t	start = 0, end = len, i;

	while (end > 0 && (s[end - 1] == '\r' || s[end - 1] == ' ' ||
	    s[end - 1] == '\t'))
		end--;
	while (start < end && (s[start] == ' ' || s[start] == '\t'))
		start++;
	if (end - start == 6 && memcmp(s + start, "status", 6) == 0)
		return ADMIN_CMD_STATUS;
	if (end - start == 6 && memcmp(s + start, "reload", 6) == 0)
		return ADMIN_CMD_RELOAD;
	if (end - start == 18 &&
	    memcmp(s + start, "rotate-ticket-keys", 18) == 0)
		return ADMIN_CMD_ROTATE;
	if (end - start < 5 || memcmp(s + start, "renew", 5) != 0)
		return ADMIN_CMD_INVALID;
	if (end - start == 5)
		return ADMIN_CMD_RENEW;
	start += 5;
	if (s[start] != ' ' && s[start] != '\t')
		return ADMIN_CMD_INVALID;
	while (start < end && (s[start] == ' ' || s[start] == '\t'))
		start++;
	if (end - start > ADMIN_ARG_MAX)
		return ADMIN_CMD_INVALID;
	for (i = start; i < end; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] > '~')
			return ADMIN_CMD_INVALID;
	return ADMIN_CMD_RENEW;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data, *arg;
	enum admin_cmd	 got;
	size_t		 arglen, i;

	got = admin_parse(s, size, &arg, &arglen);
	CHECK(got == ADMIN_CMD_INVALID || got == ADMIN_CMD_STATUS ||
	    got == ADMIN_CMD_RELOAD || got == ADMIN_CMD_RENEW ||
	    got == ADMIN_CMD_ROTATE);
	CHECK(got == model(s, size));
	CHECK(arg >= s && arglen <= size && (size_t)(arg - s) <= size - arglen);
	CHECK(arglen == 0 || got == ADMIN_CMD_RENEW);
	CHECK(arglen <= ADMIN_ARG_MAX);
	for (i = 0; i < arglen; i++)
		CHECK(arg[i] > ' ' && arg[i] <= '~');
	/* Only len counts: every prefix is parsed on its own terms. */
	if (size > 0)
		CHECK(admin_parse(s, size - 1, NULL, NULL) ==
		    model(s, size - 1));
	return 0;
}
