/*
 * http1.c - strict, incremental HTTP/1.1 message parser (RFC 9110/9112).
 *
 * A head is read in two passes.  scan_head() runs as bytes arrive: it looks
 * at each byte once, enforces CRLF discipline and the size limits, and
 * checks every line as soon as its CRLF arrives, so hostile input fails
 * early.  Once the empty line is seen, the rules that need the whole field
 * section are applied: Host, framing, Connection, Expect.  A head that came
 * in one piece keeps the start line and fields the scan parsed; one that
 * came in several is parsed again from the start (bounded by max_head, so
 * still O(n)), as the caller's buffer may have moved in between.
 *
 * Every byte class is tested with ASCII-only helpers: the locale must never
 * change what a proxy thinks a message says.
 *
 * Choices the header leaves open:
 * - max_head counts every byte consumed, skipped leading CRLFs included;
 *   max_request_line counts the start line only.  NULL limits = defaults.
 * - Content-Length: 1*DIGIT of at most 19 digits (leading zeros count),
 *   value <= 2^63-1.  A list ("5, 5") is HTTP1_E_CL_INVALID; two fields
 *   are HTTP1_E_CL_DUPLICATE, equal or not.  "Content-Length: 0" gives
 *   HTTP1_BODY_LENGTH with content_length 0.
 * - Chunk sizes: at most 16 hex digits, leading zeros included.
 * - Absolute-form "http://h?q" (query, no path) is HTTP1_E_TARGET, so that
 *   path is always a usable origin-form; a bad authority is
 *   HTTP1_E_HOST_INVALID.  CONNECT's authority-form also becomes req->host
 *   (RFC 9112 3.3), and must carry a port.
 * - Expect: 100-continue in HTTP/1.0 is ignored (RFC 9110 10.1.1).
 * - Transfer-Encoding in an HTTP/1.0 response is HTTP1_E_TE_HTTP10 as for
 *   requests.  A 2xx to CONNECT has no body (RFC 9112 6.3 rule 2); after
 *   it, and after a 101, keep_alive is false.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http1.h"
#include "util.h"

#define DEFAULT_MAX_REQUEST_LINE	8192
#define DEFAULT_MAX_HEAD		32768	/* large cookies, like nginx */
#define DEFAULT_MAX_HEADERS		100

/*
 * Content-Length is at most 19 digits, leading zeros included: that is
 * enough for 2^63-1 and no honest sender pads a length further.
 */
#define CL_MAX_DIGITS	19
#define PORT_MAX_DIGITS	5
/* A chunk size is at most 16 hex digits, leading zeros included. */
#define CHUNK_MAX_DIGITS 16

/* absolute-form with an empty path stands for "/" (RFC 9112 3.2.2). */
static const char slash[] = "/";
static const char nothing[] = "";

/* A parsed request line, before it is copied into the caller's request. */
struct reqline {
	enum http1_method	 method;
	struct http1_slice	 method_str;
	enum http1_target_form	 form;
	struct http1_slice	 target;
	struct http1_slice	 path;
	struct http1_slice	 authority;	/* absolute- and authority-form */
	int			 minor;
};

struct statusline {
	int			 minor;
	int			 status;
	struct http1_slice	 reason;
};

/*
 * What scan_head() needs besides the parser state, and what it found.  A
 * head that arrives whole (the usual case: scanned from byte 0 in one
 * call) is not parsed a second time: its start line and fields, checked
 * during the scan, are kept.  Those from earlier calls are not, as the
 * caller's buffer may have moved since.
 */
struct scan {
	const char		*buf;
	struct http1_limits	 lim;
	size_t			 max_fields;
	bool			 request;
	bool			 whole;		/* scanned from 0 in this call */
	struct http1_header	*fields;	/* room for max_fields */
	struct reqline		 rl;		/* when whole and request */
	struct statusline	 sl;		/* when whole and !request */
};

/*
 * ASCII character classes, one table lookup each.  The table is built by
 * the compiler from the definitions in CLASS_OF, so it cannot drift from
 * them; the per-byte loops of the parser are most of its cost.
 */

#define C_DIGIT		0x01
#define C_TCHAR		0x04	/* RFC 9110 5.6.2 tchar */
#define C_FIELD		0x08	/* field-content octets: VCHAR, obs-text, SP, HTAB */
#define C_HOST		0x10	/* the reg-name subset we accept (RFC 3986 allows
				   more; nobody needs it) */

#define IS_DIGIT(c)	((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c)	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_TSYM(c)	((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || \
			 (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || \
			 (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || \
			 (c) == '`' || (c) == '|' || (c) == '~')
#define CLASS_OF(c)							\
	((IS_DIGIT(c) ? C_DIGIT : 0) |					\
	 (IS_ALPHA(c) || IS_DIGIT(c) || IS_TSYM(c) ? C_TCHAR : 0) |	\
	 ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f) ? C_FIELD : 0) |	\
	 (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '-' || (c) == '.' ||	\
	  (c) == '_' ? C_HOST : 0))
#define CLASS4(c)	CLASS_OF(c), CLASS_OF((c) + 1), CLASS_OF((c) + 2), \
			CLASS_OF((c) + 3)
#define CLASS16(c)	CLASS4(c), CLASS4((c) + 4), CLASS4((c) + 8), \
			CLASS4((c) + 12)
#define CLASS64(c)	CLASS16(c), CLASS16((c) + 16), CLASS16((c) + 32), \
			CLASS16((c) + 48)

static const unsigned char char_class[256] = {
	CLASS64(0), CLASS64(64), CLASS64(128), CLASS64(192)
};

static inline bool
is_digit(unsigned char c)
{
	return (char_class[c] & C_DIGIT) != 0;
}

static inline bool
is_tchar(unsigned char c)
{
	return (char_class[c] & C_TCHAR) != 0;
}

static inline bool
is_field_char(unsigned char c)
{
	return (char_class[c] & C_FIELD) != 0;
}

static inline bool
is_host_char(unsigned char c)
{
	return (char_class[c] & C_HOST) != 0;
}

static bool
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static bool
caseeq(const char *a, const char *b, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

/* Does the span equal the NUL-terminated lit, ignoring ASCII case?  Most
   names differ at the first byte: no strlen() first. */
static bool
span_is(const char *s, size_t n, const char *lit)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || ascii_lower((unsigned char)s[i]) !=
		    ascii_lower((unsigned char)lit[i]))
			return false;
	return lit[n] == '\0';
}

/*
 * Is the span the lower-case literal lit, ignoring the span's case?  The
 * length settles most comparisons before a byte is looked at.
 */
#define LIT_IS(s, n, lit)						\
	((n) == sizeof(lit) - 1 && lower_eq((s), (lit), sizeof(lit) - 1))
#define NAME_IS(h, lit)	LIT_IS((h)->name.p, (h)->name.len, lit)

static bool
lower_eq(const char *s, const char *lower, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != (unsigned char)lower[i])
			return false;
	return true;
}

static bool
all_tchar(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (!is_tchar(s[i]))
			return false;
	return n > 0;
}

/*
 * Numbers.
 */

/* 1*DIGIT, at most maxdig digits, value at most max. */
static bool
parse_decimal(const char *s, size_t n, size_t maxdig, uint64_t max,
    uint64_t *out)
{
	uint64_t	v = 0;
	unsigned int	d;
	size_t		i;

	if (n == 0 || n > maxdig)
		return false;
	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		d = (unsigned char)s[i] - '0';
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/*
 * Hosts: host [":" port] with host a reg-name (restricted) or an IP literal.
 */

static bool
valid_ip_literal(const char *s, size_t n)
{
	bool	colon = false;
	size_t	i;

	for (i = 0; i < n; i++) {
		if (s[i] == ':')
			colon = true;
		else if (s[i] != '.' && util_hex_value(s[i]) < 0)
			return false;
	}
	return colon;
}

/* need_port: CONNECT's authority-form must name a port. */
static bool
valid_host(const char *s, size_t n, bool need_port)
{
	const char	*rb;
	uint64_t	 port;
	size_t		 i = 0;

	if (n > 0 && s[0] == '[') {
		if ((rb = memchr(s, ']', n)) == NULL ||
		    !valid_ip_literal(s + 1, rb - s - 1))
			return false;
		i = rb - s + 1;
	} else {
		while (i < n && is_host_char(s[i]))
			i++;
		if (i == 0)
			return false;
	}
	if (i == n)
		return !need_port;
	if (s[i] != ':')
		return false;
	return parse_decimal(s + i + 1, n - i - 1, PORT_MAX_DIGITS, 65535,
	    &port);
}

bool
http1_is_token(const char *s, size_t n)
{
	return all_tchar(s, n);
}

bool
http1_is_field_value(const char *s, size_t n)
{
	size_t	i;

	if (n > 0 && (is_ows(s[0]) || is_ows(s[n - 1])))
		return false;
	for (i = 0; i < n; i++)
		if (!is_field_char(s[i]))
			return false;
	return true;
}

bool
http1_is_host(const char *s, size_t n)
{
	return valid_host(s, n, false);
}

/*
 * Start lines.
 */

enum http1_method
http1_method_lookup(const char *s, size_t n)
{
	static const struct {
		const char		*name;
		enum http1_method	 method;
	} tab[] = {
		{ "GET",	HTTP1_METHOD_GET },
		{ "HEAD",	HTTP1_METHOD_HEAD },
		{ "POST",	HTTP1_METHOD_POST },
		{ "PUT",	HTTP1_METHOD_PUT },
		{ "DELETE",	HTTP1_METHOD_DELETE },
		{ "CONNECT",	HTTP1_METHOD_CONNECT },
		{ "OPTIONS",	HTTP1_METHOD_OPTIONS },
		{ "TRACE",	HTTP1_METHOD_TRACE },
		{ "PATCH",	HTTP1_METHOD_PATCH },
	};
	size_t	i;

	/* Methods are case-sensitive (RFC 9110 9.1): "get" is OTHER. */
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].name) == n && memcmp(tab[i].name, s, n) == 0)
			return tab[i].method;
	return HTTP1_METHOD_OTHER;
}

bool
http1_replayable(enum http1_method method, bool has_body)
{
	if (has_body)
		return false;
	switch (method) {
	case HTTP1_METHOD_GET:
	case HTTP1_METHOD_HEAD:
	case HTTP1_METHOD_OPTIONS:
		return true;
	default:
		return false;
	}
}

/* "HTTP/1.0" or "HTTP/1.1"; another well-formed version is a 505. */
static int
parse_version(const char *v, size_t n, int *minor)
{
	if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) ||
	    v[6] != '.' || !is_digit(v[7]))
		return HTTP1_E_REQUEST_LINE;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return HTTP1_E_VERSION;
	*minor = v[7] - '0';
	return 0;
}

/* Visible ASCII; '#' would start a fragment, which a request never has. */
static bool
valid_target_chars(const char *s, size_t n)
{
	unsigned char	c;
	size_t		i;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (c < 0x21 || c > 0x7e || c == '#')
			return false;
	}
	return true;
}

/*
 * "http://" or "https://" authority [ "/" path [ "?" query ] ].  A query
 * straight after the authority is refused: path must stay a valid
 * origin-form for whoever forwards the request.
 */
static int
parse_absolute(struct reqline *rl)
{
	const char	*t = rl->target.p, *end = t + rl->target.len, *a, *e;

	if (rl->target.len >= 7 && caseeq(t, "http://", 7))
		a = t + 7;
	else if (rl->target.len >= 8 && caseeq(t, "https://", 8))
		a = t + 8;
	else
		return HTTP1_E_TARGET;
	for (e = a; e < end && *e != '/' && *e != '?'; e++)
		if (*e == '@')		/* userinfo: a classic spoofing aid */
			return HTTP1_E_TARGET;
	if (e == a || (e < end && *e == '?'))
		return HTTP1_E_TARGET;
	if (!valid_host(a, e - a, false))
		return HTTP1_E_HOST_INVALID;
	rl->form = HTTP1_TARGET_ABSOLUTE;
	rl->authority.p = a;
	rl->authority.len = e - a;
	if (e == end) {
		rl->path.p = slash;
		rl->path.len = 1;
	} else {
		rl->path.p = e;
		rl->path.len = end - e;
	}
	return 0;
}

static int
parse_target(struct reqline *rl)
{
	const char	*t = rl->target.p;
	size_t		 n = rl->target.len;

	rl->path.p = nothing;
	rl->path.len = 0;
	if (!valid_target_chars(t, n))
		return HTTP1_E_TARGET;
	if (rl->method == HTTP1_METHOD_CONNECT) {
		if (!valid_host(t, n, true))
			return HTTP1_E_TARGET;
		rl->form = HTTP1_TARGET_AUTHORITY;
		rl->authority = rl->target;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (rl->method != HTTP1_METHOD_OPTIONS)
			return HTTP1_E_TARGET;
		rl->form = HTTP1_TARGET_ASTERISK;
		return 0;
	}
	if (t[0] == '/') {
		rl->form = HTTP1_TARGET_ORIGIN;
		rl->path = rl->target;
		return 0;
	}
	return parse_absolute(rl);
}

/* method SP request-target SP HTTP-version, exactly one SP each. */
static int
parse_request_line(const char *line, size_t n, struct reqline *rl)
{
	const char	*end = line + n, *sp1, *sp2;
	int		 rv;

	memset(rl, 0, sizeof(*rl));
	if ((sp1 = memchr(line, ' ', n)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', end - sp1 - 1)) == NULL ||
	    memchr(sp2 + 1, ' ', end - sp2 - 1) != NULL)
		return HTTP1_E_REQUEST_LINE;
	if (sp1 == line || sp2 == sp1 + 1 || sp2 + 1 == end)
		return HTTP1_E_REQUEST_LINE;
	if ((rv = parse_version(sp2 + 1, end - sp2 - 1, &rl->minor)) != 0)
		return rv;
	if (!all_tchar(line, sp1 - line))
		return HTTP1_E_METHOD;
	rl->method_str.p = line;
	rl->method_str.len = sp1 - line;
	rl->method = http1_method_lookup(line, sp1 - line);
	rl->target.p = sp1 + 1;
	rl->target.len = sp2 - sp1 - 1;
	return parse_target(rl);
}

/*
 * HTTP-version SP 3DIGIT SP reason-phrase.  "HTTP/1.1 200" without the
 * second SP is accepted because many servers send it.
 */
static int
parse_status_line(const char *line, size_t n, struct statusline *sl)
{
	size_t	i;
	int	rv;

	memset(sl, 0, sizeof(*sl));
	if (n < 12 || line[8] != ' ')
		return HTTP1_E_STATUS_LINE;
	if ((rv = parse_version(line, 8, &sl->minor)) != 0)
		return rv == HTTP1_E_VERSION ? rv : HTTP1_E_STATUS_LINE;
	for (i = 9; i < 12; i++) {
		if (!is_digit(line[i]))
			return HTTP1_E_STATUS_LINE;
		sl->status = sl->status * 10 + (line[i] - '0');
	}
	if (sl->status < 100 || sl->status > 599)
		return HTTP1_E_STATUS_LINE;
	sl->reason.p = line + n;
	if (n == 12)
		return 0;
	if (line[12] != ' ')
		return HTTP1_E_STATUS_LINE;
	for (i = 13; i < n; i++)
		if (!is_field_char(line[i]))
			return HTTP1_E_STATUS_LINE;
	sl->reason.p = line + 13;
	sl->reason.len = n - 13;
	return 0;
}

/*
 * Field lines.
 */

/* Why a name did not end in ':'; i is where the token stopped. */
static int
field_name_error(const char *line, size_t n, size_t i)
{
	if (i == 0)
		return HTTP1_E_HEADER_NAME;
	while (i < n && is_ows(line[i]))
		i++;
	if (i < n && line[i] == ':' && is_ows(line[i - 1]))
		return HTTP1_E_SPACE_BEFORE_COLON;
	return HTTP1_E_HEADER_NAME;
}

/* field-name ":" OWS field-value OWS; line holds no CR or LF. */
static int
parse_field(const char *line, size_t n, struct http1_header *h)
{
	size_t	i = 0, vs, ve;

	if (n > 0 && is_ows(line[0]))
		return HTTP1_E_OBS_FOLD;
	while (i < n && is_tchar(line[i]))
		i++;
	if (i == 0 || i == n || line[i] != ':')
		return field_name_error(line, n, i);
	h->name.p = line;
	h->name.len = i;
	for (vs = i + 1; vs < n && is_ows(line[vs]); vs++)
		;
	for (ve = n; ve > vs && is_ows(line[ve - 1]); ve--)
		;
	for (i = vs; i < ve; i++)
		if (!is_field_char(line[i]))
			return HTTP1_E_HEADER_VALUE;
	h->value.p = line + vs;
	h->value.len = ve - vs;
	return 0;
}

/*
 * The incremental scan.
 */

static void
scan_setup(struct scan *s, const char *buf, const struct http1_limits *lim,
    bool request, const struct http1_parser *p, struct http1_header *fields)
{
	s->buf = buf;
	if (lim != NULL)
		s->lim = *lim;
	else
		http1_limits_default(&s->lim);
	s->max_fields = s->lim.max_headers < HTTP1_MAX_HEADERS ?
	    s->lim.max_headers : HTTP1_MAX_HEADERS;
	s->request = request;
	s->whole = p->scanned == 0;
	s->fields = fields;
}

/* A start line is checked as soon as it is complete: 505 needs no fields. */
static int
check_start_line(struct scan *s, const char *line, size_t n)
{
	struct reqline		rl;
	struct statusline	sl;

	if (s->request)
		return parse_request_line(line, n, s->whole ? &s->rl : &rl);
	return parse_status_line(line, n, s->whole ? &s->sl : &sl);
}

/* A complete line [line_start, cr): 0 to go on, HTTP1_DONE or an error. */
static int
end_line(struct http1_parser *p, struct scan *s, size_t cr)
{
	struct http1_header	 h;
	const char		*line = s->buf + p->line_start;
	size_t			 n = cr - p->line_start;
	int			 rv;

	if (!p->first_line_done) {
		if (n == 0 && s->request && p->skip < 2) {
			p->skip++;
			return 0;
		}
		if (n == 0)
			return s->request ? HTTP1_E_REQUEST_LINE :
			    HTTP1_E_STATUS_LINE;
		if ((rv = check_start_line(s, line, n)) != 0)
			return rv;
		p->first_line_done = true;
		return 0;
	}
	if (n == 0)
		return HTTP1_DONE;
	if (p->nfields >= s->max_fields)
		return HTTP1_E_TOO_MANY_HEADERS;
	if ((rv = parse_field(line, n, &h)) != 0)
		return rv;
	if (s->whole)
		s->fields[p->nfields] = h;
	p->nfields++;
	return 0;
}

/* Size limits for byte i, checked before the byte is interpreted. */
static int
scan_limits(const struct http1_parser *p, const struct scan *s, size_t i,
    unsigned char c)
{
	size_t	need;

	if (!p->first_line_done) {
		/* the shortest the start line can still be, CRLF included */
		need = i - p->line_start + 1;
		if (c != '\n')
			need += c == '\r' ? 1 : 2;
		if (need > s->lim.max_request_line)
			return HTTP1_E_LINE_TOO_LONG;
	}
	if (i >= s->lim.max_head)
		return HTTP1_E_HEAD_TOO_LARGE;
	return 0;
}

/*
 * A request's method is checked byte by byte, so that something that is
 * not HTTP at all (a TLS ClientHello on a plain port) is refused at once
 * instead of waiting for a line end that may never come.
 */
static int
scan_method(struct http1_parser *p, const struct scan *s, unsigned char c)
{
	if (!s->request || p->first_line_done || p->method_done)
		return 0;
	if (c == ' ')
		p->method_done = true;
	else if (c != '\r' && c != '\n' && !is_tchar(c))
		return HTTP1_E_METHOD;
	return 0;
}

/* The LF at lf ends a line: its CR must precede it. */
static int
at_lf(struct http1_parser *p, struct scan *s, size_t lf)
{
	int	rv;

	if (lf == 0 || s->buf[lf - 1] != '\r')
		return HTTP1_E_BARE_LF;
	if ((rv = end_line(p, s, lf - 1)) != 0)
		return rv;
	p->line_start = lf + 1;
	return 0;
}

/* Byte i of the start line (or of a leading empty line). */
static int
scan_byte(struct http1_parser *p, struct scan *s, size_t i)
{
	const char	*buf = s->buf;
	unsigned char	 c = buf[i];
	int		 rv;

	if ((rv = scan_limits(p, s, i, c)) != 0 ||
	    (rv = scan_method(p, s, c)) != 0)
		return rv;
	if (i > 0 && buf[i - 1] == '\r' && c != '\n')
		return HTTP1_E_BARE_CR;
	if (c != '\n')
		return 0;
	return at_lf(p, s, i);
}

/*
 * Is there a CR in [from, to - 1), that is one with a byte other than LF
 * after it?  to is the first LF after from, or the end of what may be
 * looked at: a CR just before it is judged by the caller.
 */
static const char *
bare_cr(const char *buf, size_t from, size_t to)
{
	if (to <= from + 1)
		return NULL;
	return memchr(buf + from, '\r', to - 1 - from);
}

/*
 * The start line from i, when scan_byte() would pass every byte of it up
 * to its CRLF: then the line is taken at once (the usual case); else
 * scan_byte() goes through it a byte at a time to find the byte that
 * fails.  Returns the offset of its LF, or 0 for "not at once".
 */
static size_t
start_line_at_once(struct http1_parser *p, const struct scan *s,
    size_t len, size_t i)
{
	const char	*buf = s->buf, *lf;
	size_t		 end, stop, j;

	end = len < s->lim.max_head ? len : s->lim.max_head;
	if (i >= end || (lf = memchr(buf + i, '\n', end - i)) == NULL)
		return 0;
	stop = lf - buf;
	/* the longest need scan_limits() counts is the one at the LF */
	if (stop == 0 || buf[stop - 1] != '\r' ||
	    stop - p->line_start + 1 > s->lim.max_request_line ||
	    bare_cr(buf, i > 0 ? i - 1 : 0, stop) != NULL)
		return 0;
	if (s->request && !p->method_done) {
		for (j = i; j < stop && buf[j] != ' '; j++)
			if (buf[j] != '\r' && !is_tchar(buf[j]))
				return 0;
		if (j < stop)
			p->method_done = true;
	}
	return stop;
}

/*
 * From *ip (after the start line) to the end of that field line, with
 * memchr() instead of a byte at a time, and the same verdict at the same
 * byte as scan_byte() would give: a CR not followed by LF fails at the
 * byte after it, a byte at max_head fails as too large, an LF without
 * its CR fails where it is.  *ip is left at the byte that decided, or at
 * the next line's start.
 */
static int
scan_field_line(struct http1_parser *p, struct scan *s, size_t len,
    size_t *ip)
{
	const char	*buf = s->buf, *lf, *cr;
	size_t		 i = *ip, end, stop;
	int		 rv;

	end = len < s->lim.max_head ? len : s->lim.max_head;
	if (i >= end)
		return HTTP1_E_HEAD_TOO_LARGE;	/* i < len: i >= max_head */
	lf = memchr(buf + i, '\n', end - i);
	stop = lf != NULL ? (size_t)(lf - buf) : end;
	if ((cr = bare_cr(buf, i > 0 ? i - 1 : 0, stop)) != NULL) {
		*ip = cr - buf + 1;
		return HTTP1_E_BARE_CR;
	}
	if (lf == NULL) {
		*ip = end;
		return end < len ? HTTP1_E_HEAD_TOO_LARGE : HTTP1_INCOMPLETE;
	}
	*ip = stop;
	if ((rv = at_lf(p, s, stop)) != 0)
		return rv;
	*ip = stop + 1;
	return 0;
}

/*
 * Look at buf[p->scanned..len) once.  The buffer always starts at the
 * message's first byte, so the byte before i is there to check CR/LF
 * pairing even across calls.  On HTTP1_DONE, and on an error, p->scanned
 * is left at the byte that decided it: a further call with the same or a
 * longer buffer returns the same result instead of reading the body (or
 * the next request) as fields.
 */
static int
scan_head(struct http1_parser *p, struct scan *s, size_t len)
{
	size_t	i = p->scanned, lf, slow = SIZE_MAX;
	int	rv = HTTP1_INCOMPLETE;

	while (i < len) {
		if (p->first_line_done) {
			if ((rv = scan_field_line(p, s, len, &i)) != 0)
				break;
		} else if (p->line_start != slow &&
		    (lf = start_line_at_once(p, s, len, i)) != 0) {
			i = lf;
			if ((rv = at_lf(p, s, lf)) != 0)
				break;
			i++;
		} else {
			/* Not at once: this line goes byte by byte to its end
			   (trying again at each byte would be quadratic). */
			slow = p->line_start;
			if ((rv = scan_byte(p, s, i)) != 0)
				break;
			i++;
		}
	}
	p->scanned = i;
	return rv;
}

/*
 * Second pass over a complete head.  scan_head() has checked every line,
 * so the errors below cannot happen; they are kept so that a broken
 * invariant is a 400, not a wild read.
 */

/* The line starting at off; returns the offset after its LF. */
static size_t
next_line(const char *buf, size_t off, size_t end, struct http1_slice *line)
{
	const char	*lf;

	line->p = buf + off;
	line->len = 0;
	if (off >= end || (lf = memchr(buf + off, '\n', end - off)) == NULL ||
	    lf == buf + off)
		return end;
	line->len = lf - 1 - (buf + off);
	return lf - buf + 1;
}

static int
collect_fields(const char *buf, size_t off, size_t head_len,
    struct http1_header *h, size_t *nh)
{
	struct http1_slice	line;
	int			rv;

	*nh = 0;
	for (;;) {
		off = next_line(buf, off, head_len, &line);
		if (line.len == 0)
			return 0;
		if (*nh == HTTP1_MAX_HEADERS)
			return HTTP1_E_TOO_MANY_HEADERS;
		if ((rv = parse_field(line.p, line.len, &h[*nh])) != 0)
			return rv;
		(*nh)++;
	}
}

/*
 * Zero a result but for its field array, which is 4 KiB of the 4.2 and
 * which nobody reads past nheaders.
 */
_Static_assert(offsetof(struct http1_request, nheaders) ==
    offsetof(struct http1_request, headers) +
    sizeof(((struct http1_request *)0)->headers), "headers, then nheaders");
_Static_assert(offsetof(struct http1_response, nheaders) ==
    offsetof(struct http1_response, headers) +
    sizeof(((struct http1_response *)0)->headers), "headers, then nheaders");

static void
clear_request(struct http1_request *req)
{
	memset(req, 0, offsetof(struct http1_request, headers));
	memset(&req->nheaders, 0, sizeof(*req) -
	    offsetof(struct http1_request, nheaders));
}

static void
clear_response(struct http1_response *resp)
{
	memset(resp, 0, offsetof(struct http1_response, headers));
	memset(&resp->nheaders, 0, sizeof(*resp) -
	    offsetof(struct http1_response, nheaders));
}

/*
 * Next element of a comma-separated list (RFC 9110 5.6.1), OWS trimmed.
 * Empty elements are returned as such; callers skip them.
 */
static bool
list_next(const char **pp, const char *end, struct http1_slice *elem)
{
	const char	*p = *pp, *s, *e;

	if (p >= end)
		return false;
	for (s = p; p < end && *p != ','; p++)
		;
	for (e = p; e > s && is_ows(e[-1]); e--)
		;
	while (s < e && is_ows(*s))
		s++;
	elem->p = s;
	elem->len = e - s;
	*pp = p < end ? p + 1 : p;
	return true;
}

/* Does any field called name list token (case-insensitive)? */
#define LIST_HAS(h, n, name, token)					\
	list_has((h), (n), (name), sizeof(name) - 1, (token), sizeof(token) - 1)

static bool
list_has(const struct http1_header *h, size_t n, const char *name,
    size_t namelen, const char *token, size_t toklen)
{
	struct http1_slice	 elem;
	const char		*p;
	size_t			 i;

	for (i = 0; i < n; i++) {
		if (h[i].name.len != namelen ||
		    !lower_eq(h[i].name.p, name, namelen))
			continue;
		p = h[i].value.p;
		while (list_next(&p, h[i].value.p + h[i].value.len, &elem))
			if (elem.len == toklen &&
			    lower_eq(elem.p, token, toklen))
				return true;
	}
	return false;
}

/*
 * Content-Length and Transfer-Encoding (RFC 9112 6.1-6.3), for both
 * directions.  Anything two implementations could read differently is an
 * error.  A list "5, 5" is not 1*DIGIT and so HTTP1_E_CL_INVALID.
 */
static int
check_framing(const struct http1_header *h, size_t n, int minor,
    enum http1_body *body, uint64_t *clen)
{
	const struct http1_header	*cl = NULL, *te = NULL;
	size_t				 i, ncl = 0, nte = 0;

	for (i = 0; i < n; i++) {
		if (NAME_IS(&h[i], "content-length")) {
			cl = &h[i];
			ncl++;
		} else if (NAME_IS(&h[i], "transfer-encoding")) {
			te = &h[i];
			nte++;
		}
	}
	*body = HTTP1_BODY_NONE;
	*clen = 0;
	if (nte > 0 && ncl > 0)
		return HTTP1_E_TE_AND_CL;
	if (ncl > 1)
		return HTTP1_E_CL_DUPLICATE;
	if (cl != NULL) {
		if (!parse_decimal(cl->value.p, cl->value.len, CL_MAX_DIGITS,
		    INT64_MAX, clen))
			return HTTP1_E_CL_INVALID;
		*body = HTTP1_BODY_LENGTH;
	}
	if (te == NULL)
		return 0;
	/* An HTTP/1.0 recipient would not know TE: faulty framing (6.1). */
	if (minor == 0)
		return HTTP1_E_TE_HTTP10;
	if (nte > 1 || !LIT_IS(te->value.p, te->value.len, "chunked"))
		return HTTP1_E_TE_UNSUPPORTED;
	*body = HTTP1_BODY_CHUNKED;
	return 0;
}

/*
 * Requests.
 */

static int
request_host(struct http1_request *req, const struct reqline *rl)
{
	const struct http1_header	*host = NULL;
	size_t				 i, n = 0;

	for (i = 0; i < req->nheaders; i++) {
		if (NAME_IS(&req->headers[i], "host")) {
			host = &req->headers[i];
			n++;
		}
	}
	if (n > 1)
		return HTTP1_E_HOST_DUPLICATE;
	if (host == NULL && req->minor_version == 1)
		return HTTP1_E_HOST_MISSING;
	/* HTTP/1.0 may send an empty Host; HTTP/1.1 must name one. */
	if (host != NULL && (host->value.len > 0 || req->minor_version == 1) &&
	    !valid_host(host->value.p, host->value.len, false))
		return HTTP1_E_HOST_INVALID;
	req->host.p = nothing;
	req->host.len = 0;
	if (rl->form == HTTP1_TARGET_ABSOLUTE ||
	    rl->form == HTTP1_TARGET_AUTHORITY)
		req->host = rl->authority;
	else if (host != NULL && host->value.len > 0)
		req->host = host->value;
	return 0;
}

/* A 1.0 server must ignore 100-continue (RFC 9110 10.1.1); others: 417. */
static int
request_expect(struct http1_request *req)
{
	const struct http1_header	*h;
	bool				 cont = false;
	size_t				 i;

	for (i = 0; i < req->nheaders; i++) {
		h = &req->headers[i];
		if (!NAME_IS(h, "expect"))
			continue;
		if (!LIT_IS(h->value.p, h->value.len, "100-continue"))
			return HTTP1_E_EXPECT;
		cont = true;
	}
	req->expect_continue = cont && req->minor_version == 1;
	return 0;
}

static void
request_connection(struct http1_request *req)
{
	const struct http1_header	*h = req->headers;
	size_t				 n = req->nheaders;

	if (LIST_HAS(h, n, "connection", "close"))
		req->keep_alive = false;
	else if (req->minor_version == 1)
		req->keep_alive = true;
	else
		req->keep_alive = LIST_HAS(h, n, "connection", "keep-alive");
	req->upgrade_websocket = req->method == HTTP1_METHOD_GET &&
	    req->minor_version == 1 &&
	    LIST_HAS(h, n, "upgrade", "websocket") &&
	    LIST_HAS(h, n, "connection", "upgrade");
}

static int
finish_request(const char *buf, size_t off, size_t head_len,
    const struct scan *s, size_t nfields, struct http1_request *req)
{
	struct http1_slice	line;
	struct reqline		rl;
	const struct reqline	*r = &s->rl;
	int			rv;

	clear_request(req);
	if (s->whole)
		req->nheaders = nfields;
	else {
		off = next_line(buf, off, head_len, &line);
		if ((rv = parse_request_line(line.p, line.len, &rl)) != 0)
			return rv;
		r = &rl;
		if ((rv = collect_fields(buf, off, head_len, req->headers,
		    &req->nheaders)) != 0)
			return rv;
	}
	req->method = r->method;
	req->method_str = r->method_str;
	req->target_form = r->form;
	req->target = r->target;
	req->path = r->path;
	req->minor_version = r->minor;
	req->head_len = head_len;
	if ((rv = request_host(req, r)) != 0 ||
	    (rv = check_framing(req->headers, req->nheaders, r->minor,
	    &req->body, &req->content_length)) != 0 ||
	    (rv = request_expect(req)) != 0)
		return rv;
	request_connection(req);
	return HTTP1_DONE;
}

int
http1_parse_request(struct http1_parser *p, const char *buf, size_t len,
    const struct http1_limits *lim, struct http1_request *req)
{
	struct scan	s;
	int		rv;

	scan_setup(&s, buf, lim, true, p, req->headers);
	if ((rv = scan_head(p, &s, len)) != HTTP1_DONE)
		return rv;
	/* each skipped empty line is one CRLF */
	return finish_request(buf, p->skip * 2, p->scanned + 1, &s,
	    p->nfields, req);
}

/*
 * Responses.
 */

/* RFC 9112 6.3 rules 1 and 2: no body whatever the fields say. */
static bool
response_has_no_body(enum http1_method method, int status)
{
	return method == HTTP1_METHOD_HEAD || status < 200 || status == 204 ||
	    status == 304 ||
	    (method == HTTP1_METHOD_CONNECT && status < 300);
}

static void
response_connection(struct http1_response *resp, enum http1_method method)
{
	const struct http1_header	*h = resp->headers;
	size_t				 n = resp->nheaders;

	if (LIST_HAS(h, n, "connection", "close"))
		resp->keep_alive = false;
	else if (resp->minor_version == 1)
		resp->keep_alive = true;
	else
		resp->keep_alive = LIST_HAS(h, n, "connection", "keep-alive");
	/* After these the connection no longer carries HTTP/1.1 messages. */
	if (resp->body == HTTP1_BODY_CLOSE || resp->status == 101 ||
	    (method == HTTP1_METHOD_CONNECT && resp->status / 100 == 2))
		resp->keep_alive = false;
}

static int
finish_response(const char *buf, size_t head_len, enum http1_method method,
    const struct scan *s, size_t nfields, struct http1_response *resp)
{
	struct http1_slice	 line;
	struct statusline	 sl;
	const struct statusline	*r = &s->sl;
	size_t			 off;
	int			 rv;

	clear_response(resp);
	if (s->whole)
		resp->nheaders = nfields;
	else {
		off = next_line(buf, 0, head_len, &line);
		if ((rv = parse_status_line(line.p, line.len, &sl)) != 0)
			return rv;
		r = &sl;
		if ((rv = collect_fields(buf, off, head_len, resp->headers,
		    &resp->nheaders)) != 0)
			return rv;
	}
	resp->minor_version = r->minor;
	resp->status = r->status;
	resp->reason = r->reason;
	resp->head_len = head_len;
	/* Framing fields are checked even where they do not frame. */
	if ((rv = check_framing(resp->headers, resp->nheaders, r->minor,
	    &resp->body, &resp->content_length)) != 0)
		return rv;
	if (response_has_no_body(method, r->status)) {
		resp->body = HTTP1_BODY_NONE;
		resp->content_length = 0;
	} else if (resp->body == HTTP1_BODY_NONE)
		resp->body = HTTP1_BODY_CLOSE;
	response_connection(resp, method);
	return HTTP1_DONE;
}

int
http1_parse_response(struct http1_parser *p, const char *buf, size_t len,
    const struct http1_limits *lim, enum http1_method request_method,
    struct http1_response *resp)
{
	struct scan	s;
	int		rv;

	scan_setup(&s, buf, lim, false, p, resp->headers);
	if ((rv = scan_head(p, &s, len)) != HTTP1_DONE)
		return rv;
	return finish_response(buf, p->scanned + 1, request_method, &s,
	    p->nfields, resp);
}

/*
 * Small public helpers.
 */

void
http1_parser_init(struct http1_parser *p)
{
	memset(p, 0, sizeof(*p));
}

void
http1_limits_default(struct http1_limits *lim)
{
	lim->max_request_line = DEFAULT_MAX_REQUEST_LINE;
	lim->max_head = DEFAULT_MAX_HEAD;
	lim->max_headers = DEFAULT_MAX_HEADERS;
}

const struct http1_header *
http1_find_header(const struct http1_header *h, size_t n, const char *name)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (span_is(h[i].name.p, h[i].name.len, name))
			return &h[i];
	return NULL;
}

/*
 * Chunked bodies.  A byte-at-a-time state machine, so that no framing byte
 * needs to be kept between calls; only chunk data is returned, as spans of
 * the input.  A negative state is a sticky error.
 */

enum chunk_state {
	CH_SIZE = 0,	/* hex digits of chunk-size (0 from _init) */
	CH_EXT_NAME0,	/* after ';': first byte of an extension name */
	CH_EXT_NAME,
	CH_EXT_VAL0,	/* after '=' */
	CH_EXT_TOKEN,
	CH_EXT_QSTR,
	CH_EXT_QESC,	/* after '\' in a quoted-string */
	CH_EXT_QEND,	/* after the closing '"' */
	CH_SIZE_LF,	/* CR of the size line seen */
	CH_DATA,
	CH_DATA_CR,	/* chunk data done, CRLF must follow */
	CH_DATA_LF,
	CH_TR_START,	/* start of a trailer line, or of the final CRLF */
	CH_TR_NAME,
	CH_TR_VALUE,
	CH_TR_LF,	/* CR of a trailer field seen */
	CH_END_LF,	/* CR of the final CRLF seen */
	CH_DONE,
};

/* Size-line bytes before the CRLF; the CRLF itself must still fit. */
static int
chunk_line_byte(struct http1_chunked *c)
{
	if (++c->line_len > HTTP1_CHUNK_LINE_MAX - 2)
		return HTTP1_E_CHUNK_EXT;
	return 0;
}

static int
chunk_size_byte(struct http1_chunked *c, unsigned char ch)
{
	int	d;

	if ((d = util_hex_value(ch)) >= 0) {
		if (c->ndigits >= CHUNK_MAX_DIGITS ||
		    c->remaining > ((uint64_t)INT64_MAX - d) / 16)
			return HTTP1_E_CHUNK_SIZE;
		c->remaining = c->remaining * 16 + d;
		c->ndigits++;
		return chunk_line_byte(c);
	}
	/* no sign, "0x", or whitespace: only ';' or CR may end the size */
	if (c->ndigits == 0 || (ch != ';' && ch != '\r'))
		return HTTP1_E_CHUNK_SIZE;
	if (ch == '\r') {
		c->state = CH_SIZE_LF;
		return 0;
	}
	c->state = CH_EXT_NAME0;
	return chunk_line_byte(c);
}

/* qdtext and the octets a quoted-pair may escape (RFC 9110 5.6.4). */
static int
chunk_qstr_byte(struct http1_chunked *c, unsigned char ch)
{
	if (c->state == CH_EXT_QESC) {
		if (!is_field_char(ch))
			return HTTP1_E_CHUNK_EXT;
		c->state = CH_EXT_QSTR;
	} else if (ch == '"')
		c->state = CH_EXT_QEND;
	else if (ch == '\\')
		c->state = CH_EXT_QESC;
	else if (!is_field_char(ch))
		return HTTP1_E_CHUNK_EXT;
	return chunk_line_byte(c);
}

/* *( ";" token [ "=" ( token / quoted-string ) ] ), no BWS anywhere. */
static int
chunk_ext_byte(struct http1_chunked *c, unsigned char ch)
{
	int	st = c->state;

	if (st == CH_EXT_QSTR || st == CH_EXT_QESC)
		return chunk_qstr_byte(c, ch);
	if (st == CH_EXT_NAME0 || st == CH_EXT_VAL0) {
		if (st == CH_EXT_VAL0 && ch == '"')
			c->state = CH_EXT_QSTR;
		else if (is_tchar(ch))
			c->state = st == CH_EXT_NAME0 ? CH_EXT_NAME :
			    CH_EXT_TOKEN;
		else
			return HTTP1_E_CHUNK_EXT;
		return chunk_line_byte(c);
	}
	if (ch == '\r') {
		c->state = CH_SIZE_LF;
		return 0;
	}
	if (ch == ';')
		c->state = CH_EXT_NAME0;
	else if (ch == '=' && st == CH_EXT_NAME)
		c->state = CH_EXT_VAL0;
	else if (!is_tchar(ch) || st == CH_EXT_QEND)
		return HTTP1_E_CHUNK_EXT;
	return chunk_line_byte(c);
}

/* Trailer fields are checked like header fields, then dropped. */
static int
chunk_trailer_byte(struct http1_chunked *c, unsigned char ch)
{
	if (++c->trailer_len > HTTP1_TRAILER_MAX)
		return HTTP1_E_TRAILER;
	switch (c->state) {
	case CH_TR_START:
		if (ch == '\r')
			c->state = CH_END_LF;
		else if (is_tchar(ch))
			c->state = CH_TR_NAME;
		else
			return HTTP1_E_TRAILER;
		return 0;
	case CH_TR_NAME:
		if (ch == ':')
			c->state = CH_TR_VALUE;
		else if (!is_tchar(ch))
			return HTTP1_E_TRAILER;
		return 0;
	case CH_TR_VALUE:
		if (ch == '\r')
			c->state = CH_TR_LF;
		else if (!is_field_char(ch))
			return HTTP1_E_TRAILER;
		return 0;
	case CH_TR_LF:
		if (ch != '\n')
			return HTTP1_E_TRAILER;
		c->state = CH_TR_START;
		return 0;
	default:		/* CH_END_LF */
		if (ch != '\n')
			return HTTP1_E_TRAILER;
		c->state = CH_DONE;
		return HTTP1_CHUNK_END;
	}
}

/* One framing byte: 0, HTTP1_CHUNK_END or an error. */
static int
chunk_byte(struct http1_chunked *c, unsigned char ch)
{
	switch (c->state) {
	case CH_SIZE:
		return chunk_size_byte(c, ch);
	case CH_SIZE_LF:
		if (ch != '\n')
			return HTTP1_E_CHUNK_SIZE;
		c->state = c->remaining == 0 ? CH_TR_START : CH_DATA;
		c->line_len = 0;
		c->ndigits = 0;
		return 0;
	case CH_DATA_CR:
		if (ch != '\r')
			return HTTP1_E_CHUNK_FRAMING;
		c->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (ch != '\n')
			return HTTP1_E_CHUNK_FRAMING;
		c->state = CH_SIZE;
		return 0;
	case CH_TR_START:
	case CH_TR_NAME:
	case CH_TR_VALUE:
	case CH_TR_LF:
	case CH_END_LF:
		return chunk_trailer_byte(c, ch);
	default:
		return chunk_ext_byte(c, ch);
	}
}

void
http1_chunked_init(struct http1_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

int
http1_chunked_decode(struct http1_chunked *c, const char *in, size_t len,
    size_t *consumed, const char **data, size_t *data_len)
{
	size_t	i, n;
	int	rv;

	*consumed = 0;
	*data = NULL;
	*data_len = 0;
	if (c->state < 0)
		return c->state;
	if (c->state == CH_DONE)
		return HTTP1_CHUNK_END;
	for (i = 0; i < len; i++) {
		if (c->state == CH_DATA) {
			n = len - i < c->remaining ? len - i : c->remaining;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			*data = in + i;
			*data_len = n;
			*consumed = i + n;
			return HTTP1_CHUNK_DATA;
		}
		if ((rv = chunk_byte(c, in[i])) < 0)
			c->state = rv;
		if (rv != 0) {
			*consumed = i + 1;
			return rv;
		}
	}
	*consumed = len;
	return HTTP1_CHUNK_MORE;
}

/*
 * Result codes.
 */

int
http1_error_status(int err)
{
	switch (err) {
	case HTTP1_E_LINE_TOO_LONG:
		return 414;
	case HTTP1_E_HEAD_TOO_LARGE:
	case HTTP1_E_TOO_MANY_HEADERS:
		return 431;
	case HTTP1_E_VERSION:
		return 505;
	case HTTP1_E_EXPECT:
		return 417;
	default:
		/* also for a non-error code: a misuse still answers 400 */
		return 400;
	}
}

const char *
http1_strerror(int err)
{
	switch (err) {
	case HTTP1_DONE:		return "complete";
	case HTTP1_INCOMPLETE:		return "incomplete";
	case HTTP1_E_REQUEST_LINE:	return "malformed request line";
	case HTTP1_E_METHOD:		return "invalid method";
	case HTTP1_E_TARGET:		return "invalid request target";
	case HTTP1_E_VERSION:		return "unsupported HTTP version";
	case HTTP1_E_LINE_TOO_LONG:	return "request line too long";
	case HTTP1_E_HEAD_TOO_LARGE:	return "header section too large";
	case HTTP1_E_TOO_MANY_HEADERS:	return "too many header fields";
	case HTTP1_E_BARE_LF:		return "LF without CR";
	case HTTP1_E_BARE_CR:		return "CR without LF";
	case HTTP1_E_HEADER_NAME:	return "invalid field name";
	case HTTP1_E_SPACE_BEFORE_COLON: return "whitespace before colon";
	case HTTP1_E_OBS_FOLD:		return "obsolete line folding";
	case HTTP1_E_HEADER_VALUE:	return "invalid field value";
	case HTTP1_E_HOST_MISSING:	return "missing Host";
	case HTTP1_E_HOST_DUPLICATE:	return "duplicate Host";
	case HTTP1_E_HOST_INVALID:	return "invalid Host";
	case HTTP1_E_CL_INVALID:	return "invalid Content-Length";
	case HTTP1_E_CL_DUPLICATE:	return "duplicate Content-Length";
	case HTTP1_E_TE_AND_CL:		return "Transfer-Encoding with "
					    "Content-Length";
	case HTTP1_E_TE_UNSUPPORTED:	return "unsupported Transfer-Encoding";
	case HTTP1_E_TE_HTTP10:		return "Transfer-Encoding in HTTP/1.0";
	case HTTP1_E_EXPECT:		return "unsupported Expect";
	case HTTP1_E_STATUS_LINE:	return "malformed status line";
	case HTTP1_E_CHUNK_SIZE:	return "invalid chunk size";
	case HTTP1_E_CHUNK_EXT:		return "invalid chunk extension";
	case HTTP1_E_CHUNK_FRAMING:	return "missing CRLF after chunk";
	case HTTP1_E_TRAILER:		return "invalid trailer section";
	default:			return "unknown error";
	}
}
