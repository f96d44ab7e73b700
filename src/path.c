/*
 * path.c - the path of a request target, normalised (see path.h).
 *
 * path_normalize() makes three passes over the input and needs no memory
 * of its own.  The first checks every byte.  The other two walk the
 * segments from the last to the first, counting the ".." not yet
 * matched: a segment is kept when none is pending, and a ".." still
 * pending at the root climbs above it.  The second pass only counts the
 * length of the result, so that a result that does not fit is refused
 * before anything is written, and one that fits is never refused because
 * of a segment a later ".." removes; the third writes the kept segments
 * from the end of the result towards its start.
 *
 * Walking backwards is sound because every '%' of a checked path starts
 * an escape of exactly three bytes and a hex digit is never '%': "%2F"
 * found from its end is always an escape.
 */
#include "autoconf.h"

#include <string.h>

#include "path.h"
#include "util.h"

static const char	hexdigit[] = "0123456789ABCDEF";

/* RFC 3986 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~" */
static bool
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* The byte %XX at in[0..3) stands for (the escape is checked). */
static unsigned char
escaped(const char *in)
{
	return (unsigned char)(util_hex_value((unsigned char)in[1]) << 4 |
	    util_hex_value((unsigned char)in[2]));
}

/* Step 1 of path.h for a byte other than '%': 0 or its error. */
static int
bad_byte(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return PATH_E_CTL;
	switch (c) {
	case '#':	return PATH_E_FRAGMENT;
	case '\\':	return PATH_E_BACKSLASH;
	case '?':	return PATH_E_QUERY;
	default:	return 0;
	}
}

/* Is in[0..3) '%' and two hex digits (of len bytes left)? */
static bool
escape_ok(const char *in, size_t len)
{
	return len >= 3 && util_hex_value((unsigned char)in[1]) >= 0 &&
	    util_hex_value((unsigned char)in[2]) >= 0;
}

/* Step 1 of path.h: 0 or the error of the first bad byte. */
static int
check_bytes(const char *in, size_t len)
{
	size_t	i;
	int	rv;

	if (len == 0 || in[0] != '/')
		return PATH_E_NOT_ABSOLUTE;
	for (i = 0; i < len; i++) {
		if (in[i] == '%') {
			if (!escape_ok(in + i, len - i))
				return PATH_E_PERCENT;
			i += 2;
		} else if ((rv = bad_byte((unsigned char)in[i])) != 0)
			return rv;
	}
	return 0;
}

/*
 * The start of the last separator in in[0..end) of a checked path, its
 * length in *seplen: a '/', or with PATH_MATCH "%2F" in either case.
 * in[0] is '/', so there always is one when end > 0.
 */
static size_t
last_sep(const char *in, size_t end, unsigned flags, size_t *seplen)
{
	size_t	i = end;

	while (i-- > 0) {
		if (in[i] == '/') {
			*seplen = 1;
			return i;
		}
		if ((flags & PATH_MATCH) && i >= 2 && in[i - 2] == '%' &&
		    in[i - 1] == '2' && (in[i] == 'F' || in[i] == 'f')) {
			*seplen = 3;
			return i - 2;
		}
	}
	*seplen = 0;		/* not reached for a checked path */
	return 0;
}

/*
 * A segment in[0..len) of a checked path (no separator in it) after
 * steps 2 and 3: its length, and how many of its bytes are '.' in *dots.
 * Written to out unless out is NULL.
 */
static size_t
segment(const char *in, size_t len, unsigned flags, char *out, size_t *dots)
{
	unsigned char	c;
	size_t		i, n = 0;

	*dots = 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == ';' && (flags & PATH_MATCH))
			break;
		if (c == '%') {
			c = escaped(in + i);
			if (!unreserved(c)) {
				if (out != NULL) {
					out[n] = '%';
					out[n + 1] = hexdigit[c >> 4];
					out[n + 2] = hexdigit[c & 0xf];
				}
				n += 3;
				i += 2;
				continue;
			}
			i += 2;
		}
		if (c == '.')
			(*dots)++;
		if (out != NULL)
			out[n] = (char)c;
		n++;
	}
	return n;
}

/*
 * Steps 2 to 6 over a checked path.  Without out: the length of the
 * result in *total, or PATH_E_ABOVE_ROOT.  With out: the result written
 * to out[0..*total), *total being what the call without out gave.
 */
static int
walk(const char *in, size_t len, unsigned flags, char *out, size_t *total)
{
	size_t	end = len, e, start, seplen, n, dots;
	size_t	w = *total, pending = 0, kept = 0;
	bool	dot;

	while (end > 0) {
		e = end;
		end = last_sep(in, e, flags, &seplen);
		start = end + seplen;
		n = segment(in + start, e - start, flags, NULL, &dots);
		dot = dots == n && n <= 2;	/* "", "." or ".." */
		if (dot && e == len) {
			/* the result ends with '/' */
			if (out != NULL)
				out[--w] = '/';
			kept++;
		}
		if (dot) {
			if (n == 2)
				pending++;
			continue;
		}
		if (pending > 0) {
			pending--;
			continue;
		}
		if (out != NULL) {
			w -= n;
			segment(in + start, e - start, flags, out + w, &dots);
			out[--w] = '/';
		}
		kept += 1 + n;
	}
	if (pending > 0)
		return PATH_E_ABOVE_ROOT;
	*total = kept;
	return 0;
}

size_t
path_query_at(const char *in, size_t len)
{
	const char	*q = len > 0 ? memchr(in, '?', len) : NULL;

	return q != NULL ? (size_t)(q - in) : len;
}

int
path_normalize(const char *in, size_t len, unsigned flags, char *out,
    size_t outcap, size_t *outlen)
{
	size_t	n = 0;
	int	rv;

	if ((rv = check_bytes(in, len)) != 0 ||
	    (rv = walk(in, len, flags, NULL, &n)) != 0)
		return rv;
	if (n > outcap)
		return PATH_E_SPACE;
	walk(in, len, flags, out, &n);
	*outlen = n;
	return 0;
}

bool
path_prefix_match(const char *norm, size_t len, const char *prefix,
    size_t plen)
{
	if (plen == 0 || prefix[0] != '/' || len < plen ||
	    memcmp(norm, prefix, plen) != 0)
		return false;
	return prefix[plen - 1] == '/' || len == plen || norm[plen] == '/';
}

int
path_replace(const char *norm, size_t len, size_t plen, const char *repl,
    size_t rlen, const char *query, size_t qlen, char *out, size_t outcap,
    size_t *outlen)
{
	const char	*tail;
	size_t		 tlen, n;

	if (plen == 0 || plen > len || rlen == 0 || repl[0] != '/' ||
	    (plen < len && norm[plen - 1] != '/' && norm[plen] != '/'))
		return PATH_E_REPLACE;
	/* from the '/' that ends or follows the prefix */
	if (norm[plen - 1] == '/')
		plen--;
	tail = norm + plen;
	tlen = len - plen;
	if (repl[rlen - 1] == '/')
		rlen--;
	n = MAXIMUM(rlen + tlen, 1);
	if (n > outcap || (query != NULL && qlen >= outcap - n))
		return PATH_E_SPACE;
	out[0] = '/';		/* what stays of an empty result */
	memcpy(out, repl, rlen);
	memcpy(out + rlen, tail, tlen);
	if (query != NULL) {
		out[n] = '?';
		memcpy(out + n + 1, query, qlen);
		n += 1 + qlen;
	}
	*outlen = n;
	return 0;
}

/* A hex digit as a result writes it. */
static bool
upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* A segment of a result: not empty, ".", or ".." (the last may be ""). */
static bool
segment_ok(const char *seg, size_t n, bool last)
{
	if (n == 0)
		return last;
	return !(seg[0] == '.' && (n == 1 || (n == 2 && seg[1] == '.')));
}

bool
path_is_normal(const char *p, size_t len, unsigned flags)
{
	unsigned char	c;
	size_t		i, seg = 1;

	if (len == 0 || p[0] != '/')
		return false;
	for (i = 1; i < len; i++) {
		c = (unsigned char)p[i];
		if (c == '/') {
			if (!segment_ok(p + seg, i - seg, false))
				return false;
			seg = i + 1;
		} else if (c == '%') {
			if (len - i < 3 || !upper_hex(p[i + 1]) ||
			    !upper_hex(p[i + 2]))
				return false;
			c = escaped(p + i);
			if (unreserved(c) || (c == '/' && (flags & PATH_MATCH)))
				return false;
			i += 2;
		} else if (bad_byte(c) != 0 || (c == ';' &&
		    (flags & PATH_MATCH)))
			return false;
	}
	return segment_ok(p + seg, len - seg, true);
}

const char *
path_strerror(int err)
{
	switch (err) {
	case PATH_OK:			return "normal";
	case PATH_E_NOT_ABSOLUTE:	return "path does not start with /";
	case PATH_E_CTL:		return "control byte or space in path";
	case PATH_E_FRAGMENT:		return "# in path";
	case PATH_E_BACKSLASH:		return "backslash in path";
	case PATH_E_QUERY:		return "? in path";
	case PATH_E_PERCENT:		return "% without two hex digits";
	case PATH_E_ABOVE_ROOT:		return "path climbs above the root";
	case PATH_E_SPACE:		return "path does not fit";
	case PATH_E_REPLACE:		return "invalid path replacement";
	default:			return "unknown error";
	}
}
