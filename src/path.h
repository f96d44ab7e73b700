/*
 * path.h - the path of a request target, normalised for path blocks.
 *
 * Pure functions over byte buffers: no I/O, no allocation, no global
 * state, no locale.  The caller gives every output buffer; nothing is
 * written past its capacity, and nothing at all when a call fails.
 *
 * path_normalize() takes the path of an origin-form target (the bytes
 * before the first '?', see path_query_at()) and applies, in this order:
 *
 * 1. The path starts with '/' (PATH_E_NOT_ABSOLUTE).  A byte 0x00-0x20
 *    or 0x7f (PATH_E_CTL), '#' (PATH_E_FRAGMENT), '\' (PATH_E_BACKSLASH)
 *    or '?' (PATH_E_QUERY: the caller passes the path only) is an error.
 *    Every '%' is followed by two hex digits (PATH_E_PERCENT).  Errors of
 *    this step are reported for the first bad byte from the left, before
 *    any error of the steps below.
 * 2. Percent-encoding, once (RFC 3986 6.2.2): %XX of an unreserved
 *    character (ALPHA DIGIT - . _ ~) is decoded; every other %XX stays
 *    encoded, its hex digits upper-cased.  %00 stays "%00", %25 stays
 *    "%25": the result is never decoded again, so "%252e" is not a dot.
 *    Bytes from 0x80 up are kept as they are (not encoded).
 * 3. With PATH_MATCH only: "%2F" (any case) is a '/' like a literal one,
 *    splitting segments; and in each segment, from its first literal ';'
 *    (not %3B) to its end is removed.  Without PATH_MATCH, "%2F" stays
 *    inside its segment and ';' is an ordinary byte.
 * 4. Empty segments are dropped (with PATH_MATCH also those that held
 *    only ";parameters"): any run of '/' is one '/'.
 * 5. Dot segments are removed as in RFC 3986 5.2.4: a segment that is
 *    "." or ".." after steps 2 and 3 (so "%2e", "%2E%2e", and with
 *    PATH_MATCH "..;x" too) is removed, and ".." removes the nearest
 *    segment before it that is kept.  A ".." with no such segment would
 *    climb above the root: PATH_E_ABOVE_ROOT, never clamped.
 * 6. The result is '/' followed by the kept segments joined by '/', and
 *    ends with '/' when the last segment after steps 2 and 3 was empty,
 *    "." or ".." ("/a/b/.." is "/a/", "/a/." is "/a/", "/a/" stays), and
 *    is "/" when nothing is kept.
 *
 * Hence the result is never longer than the input, starts with '/', has
 * no "//", no "." or ".." segment, no byte step 1 refuses, only valid
 * %XX with upper-case digits and none of an unreserved character; with
 * PATH_MATCH also no ';' and no "%2F".  Normalising a result again with
 * the same flags gives it back unchanged.  Matching is case-sensitive:
 * "/API/x" is not under "/api/".
 *
 * The PATH_MATCH form is the one to choose a path block with; the form
 * without it keeps what an upstream may need (an encoded '/', matrix
 * parameters) for forwarding.  The two differ in length ("/api;v=1/x" is
 * "/api/x" and "/api;v=1/x"), and may even differ in the block they
 * select ("/static/..;/api/x" is "/api/x" and "/static/..;/api/x"), so a
 * prefix length found on one form means nothing on the other.  The form
 * without PATH_MATCH, normalised again with PATH_MATCH, need not give the
 * PATH_MATCH form back, nor even succeed: "/a/x/..;/../b" is "/b" with
 * PATH_MATCH and "/a/x/b" without; "/a%2Fb/../..;/c" is "/c" and
 * "/..;/c", which climbs above the root with PATH_MATCH.  Forward it only
 * when it gives the PATH_MATCH form back and starts with the chosen
 * prefix; else forward the PATH_MATCH form, or refuse.
 */
#ifndef PORTCULLIS_PATH_H
#define PORTCULLIS_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Flags of path_normalize(). */
#define PATH_MATCH	0x1u	/* decode %2F, drop ";parameters" */

/*
 * Return values: 0, or an error, each of which means a 400 to the client
 * but PATH_E_SPACE (the caller's buffer) and PATH_E_REPLACE (the caller's
 * arguments).
 */
enum path_result {
	PATH_OK = 0,
	PATH_E_NOT_ABSOLUTE = -1,	/* does not start with '/' */
	PATH_E_CTL = -2,		/* 0x00-0x20 or 0x7f */
	PATH_E_FRAGMENT = -3,		/* '#' */
	PATH_E_BACKSLASH = -4,		/* '\' */
	PATH_E_QUERY = -5,		/* '?': the query was not cut off */
	PATH_E_PERCENT = -6,		/* '%' without two hex digits */
	PATH_E_ABOVE_ROOT = -7,		/* ".." above the root */
	PATH_E_SPACE = -8,		/* the result does not fit in out */
	PATH_E_REPLACE = -9,		/* path_replace() misused */
};

/* The offset of the first '?' in in[0..len), or len if there is none. */
size_t		 path_query_at(const char *in, size_t len);

/*
 * Normalise in[0..len) (see above) into out[0..outcap), not NUL
 * terminated, its length in *outlen.  PATH_E_SPACE only if the result is
 * longer than outcap (outcap >= len always suffices), and only when the
 * path has no other error.  in and out must not overlap.  Returns 0 or a
 * PATH_E_* error; on an error out and *outlen are not touched.
 */
int		 path_normalize(const char *in, size_t len, unsigned flags,
		    char *out, size_t outcap, size_t *outlen);

/*
 * Is the normalised path norm[0..len) (the PATH_MATCH form) in the path
 * block of prefix[0..plen)?  Bytes compare exactly (case-sensitive), and
 * only at a segment boundary: a prefix ending in '/' matches the paths
 * that start with it ("/api/" matches "/api/" and "/api/x", not "/api"
 * nor "/apix"); one without a trailing '/' matches itself and the paths
 * below it ("/api" matches "/api", "/api/" and "/api/x", not "/apix").
 * An empty prefix, or one not starting with '/', matches nothing.  The
 * prefix should itself be normalised (path_normalize() with PATH_MATCH
 * gives it back unchanged), or some paths can never match it.
 */
bool		 path_prefix_match(const char *norm, size_t len,
		    const char *prefix, size_t plen);

/*
 * The target sent upstream for a path block with replace-path, into
 * out[0..outcap), not NUL terminated, its length in *outlen:
 * repl[0..rlen) put in place of the first plen bytes of norm[0..len),
 * then '?' and query[0..qlen) if query is not NULL (a NULL query: the
 * target had no '?'; a query with qlen 0: it had an empty one, kept as
 * "?").  plen is the length of a prefix path_prefix_match() accepted on
 * this same norm (on the form forwarded: see above).  Where they meet, exactly one '/' stands when the path
 * goes on below the prefix, and the trailing '/' of the path is kept:
 *
 *	prefix	path		repl	result
 *	/api/	/api/users	/	/users
 *	/api/	/api/users	/v2	/v2/users
 *	/api/	/api/users	/v2/	/v2/users
 *	/api/	/api/		/v2	/v2/
 *	/api	/api/users	/	/users
 *	/api	/api		/v2/	/v2
 *	/api	/api		/	/
 *
 * (One '/' at the end of repl is dropped, and the part of the path from
 * the '/' that ends or follows the prefix is appended; an empty result is
 * "/".)  The path and the query are copied as they are.  PATH_E_REPLACE
 * if plen is 0, over len or not at a segment boundary of norm, or if repl
 * is empty or does not start with '/'; PATH_E_SPACE if the result is
 * longer than outcap.  No buffer may overlap out.
 */
int		 path_replace(const char *norm, size_t len, size_t plen,
		    const char *repl, size_t rlen, const char *query,
		    size_t qlen, char *out, size_t outcap, size_t *outlen);

/*
 * Is p[0..len) a result of path_normalize() with these flags, that is,
 * one it gives back unchanged?  Checked by the rules above, not by
 * normalising: for a configured prefix or replace-path, and as the tests'
 * second opinion.
 */
bool		 path_is_normal(const char *p, size_t len, unsigned flags);

/* A short text for a PATH_* value (a constant string). */
const char	*path_strerror(int err);

#endif /* PORTCULLIS_PATH_H */
