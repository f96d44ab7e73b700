/*
 * headers.c - the heads portcullis writes (see headers.h).
 */
#include "autoconf.h"

#include <string.h>

#include "headers.h"
#include "util.h"

/* A name with its length: most comparisons end at the length. */
struct name {
	const char	*s;
	size_t		 len;
};
#define NAME(lit)	{ "" lit "", sizeof(lit) - 1 }

static bool
name_in(const char *name, size_t len, const struct name *tab, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (util_strcaseeq(name, len, tab[i].s, tab[i].len))
			return true;
	return false;
}

/* Is token t listed in some Connection field? */
static bool
connection_lists(const struct http1_header *f, size_t n, const char *t,
    size_t tlen)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *p, *end;

		if (!UTIL_LIT_IS(f[i].name.p, f[i].name.len, "connection"))
			continue;
		p = f[i].value.p;
		end = p + f[i].value.len;
		while (p < end) {
			const char *s, *e;

			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			s = p;
			while (p < end && *p != ',')
				p++;
			e = p;
			while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (util_strcaseeq(s, (size_t)(e - s), t, tlen))
				return true;
		}
	}
	return false;
}

size_t
headers_first_connection(const struct http1_header *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (UTIL_LIT_IS(f[i].name.p, f[i].name.len, "connection"))
			break;
	return i;
}

/* headers_hop_by_hop(), the first Connection field found once a head. */
static bool
hop_by_hop(const char *name, size_t len, const struct http1_header *fields,
    size_t n, size_t conn)
{
	static const struct name hop[] = {
		NAME("connection"), NAME("keep-alive"),
		NAME("proxy-connection"), NAME("te"), NAME("trailer"),
		NAME("transfer-encoding"), NAME("upgrade"),
	};

	if (memchr(name, '_', len) != NULL)
		return true;
	if (name_in(name, len, hop, nitems(hop)))
		return true;
	return connection_lists(fields + conn, n - conn, name, len);
}

bool
headers_hop_by_hop(const char *name, size_t len,
    const struct http1_header *fields, size_t n)
{
	return hop_by_hop(name, len, fields, n,
	    headers_first_connection(fields, n));
}

/* Does name start with one of the prefixes in tab? */
static bool
prefix_in(const char *name, size_t len, const struct name *tab, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (len >= tab[i].len && util_strcaseeq(name, tab[i].len,
		    tab[i].s, tab[i].len))
			return true;
	return false;
}

/*
 * Request fields the proxy sets itself or a client must never set.  An
 * application behind a proxy believes what the proxy tells it of the
 * client: its address, the scheme, host, port and path prefix it asked
 * for, the URL before a rewrite, its TLS client certificate.  As the edge
 * we say that ourselves or nobody does: every X-Forwarded-*, X-Original-*,
 * X-Real-* and X-SSL-* field and Forwarded, and the names below, which
 * frameworks, CDNs and load balancers use for the same (Werkzeug
 * ProxyFix, Symfony's X-Original-URL and X-Rewrite-URL, Rack's
 * X-Forwarded-Ssl and X-Url-Scheme, Tornado's X-Scheme (it outranks
 * X-Forwarded-Proto there), PHP's Client-IP, Akamai's and
 * Cloudflare's True-Client-IP and CF-Connecting-IP ...).  Keep the list
 * in doc/portcullis.8 in step.
 */
static bool
request_drops(const struct http1_header *h)
{
	static const struct name exact[] = {
		NAME("host"), NAME("content-length"), NAME("expect"),
		NAME("forwarded"), NAME("front-end-https"),
		NAME("x-url-scheme"), NAME("x-scheme"), NAME("x-rewrite-url"),
		NAME("true-client-ip"), NAME("x-client-ip"), NAME("client-ip"),
		NAME("x-cluster-client-ip"), NAME("cf-connecting-ip"),
		NAME("fastly-client-ip"), NAME("x-proxyuser-ip"),
		NAME("x-client-cert"), NAME("ssl-client-cert"),
		NAME("x-arr-ssl"), NAME("x-arr-clientcert"),
		/* What client-auth sites get from us (add_client_cert):
		   removed on every site, set only by the proxy. */
		NAME("x-client-verify"), NAME("x-client-subject"),
		NAME("x-client-issuer"), NAME("x-client-serial"),
		NAME("x-client-cert-fingerprint"),
	};
	static const struct name prefix[] = {
		NAME("x-forwarded-"), NAME("x-original-"), NAME("x-real-"),
		NAME("x-ssl-"),
	};

	return name_in(h->name.p, h->name.len, exact, nitems(exact)) ||
	    prefix_in(h->name.p, h->name.len, prefix, nitems(prefix));
}

static bool
request_forwards(const struct http1_header *h,
    const struct http1_header *fields, size_t n, size_t conn)
{
	return !request_drops(h) && !hop_by_hop(h->name.p, h->name.len,
	    fields, n, conn);
}

bool
headers_request_forwards(const struct http1_header *h,
    const struct http1_header *fields, size_t n)
{
	return request_forwards(h, fields, n,
	    headers_first_connection(fields, n));
}

/* One room check for the four parts: this runs for every field. */
static int
add_field(struct buf *out, const struct http1_header *h)
{
	size_t n = h->name.len + h->value.len + 4;
	char *p;

	if ((p = buf_reserve(out, n)) == NULL)
		return -1;
	memcpy(p, h->name.p, h->name.len);
	p += h->name.len;
	*p++ = ':';
	*p++ = ' ';
	memcpy(p, h->value.p, h->value.len);
	p += h->value.len;
	*p++ = '\r';
	*p = '\n';
	buf_produce(out, n);
	return 0;
}

static int
add_framing(struct buf *out, enum headers_framing f, uint64_t len)
{
	switch (f) {
	case HEADERS_FRAME_LENGTH:
		if (buf_addlit(out, "Content-Length: ") == -1 ||
		    buf_adddec(out, len) == -1)
			return -1;
		return buf_add(out, "\r\n", 2);
	case HEADERS_FRAME_CHUNKED:
		return buf_addlit(out, "Transfer-Encoding: chunked\r\n");
	default:
		return 0;
	}
}

/* X-Client-*: what the handshake verified (headers_client_cert). */
static int
add_client_cert(struct buf *out, const struct headers_client_cert *c)
{
	if (buf_addlit(out, "X-Client-Verify: ") == -1 ||
	    buf_addstr(out, c->verify) == -1 || buf_add(out, "\r\n", 2) == -1)
		return -1;
	if (strcmp(c->verify, "SUCCESS") != 0)
		return 0;
	if (buf_addlit(out, "X-Client-Subject: ") == -1 ||
	    buf_addstr(out, c->subject) == -1 ||
	    buf_addlit(out, "\r\nX-Client-Issuer: ") == -1 ||
	    buf_addstr(out, c->issuer) == -1 ||
	    buf_addlit(out, "\r\nX-Client-Serial: ") == -1 ||
	    buf_addstr(out, c->serial) == -1 ||
	    buf_addlit(out, "\r\nX-Client-Cert-Fingerprint: ") == -1 ||
	    buf_addstr(out, c->fingerprint) == -1)
		return -1;
	return buf_add(out, "\r\n", 2);
}

int
headers_escape_value(const unsigned char *in, size_t len, char *out,
    size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;
	bool esc;

	for (i = 0; i < len; i++) {
		esc = in[i] < 0x20 || in[i] > 0x7e ||
		    (in[i] == ' ' && (i == 0 || i == len - 1));
		if (o + (esc ? 3 : 1) >= outsz) {
			if (outsz > 0)
				out[0] = '\0';
			return -1;
		}
		if (esc) {
			out[o++] = '\\';
			out[o++] = hex[in[i] >> 4];
			out[o++] = hex[in[i] & 0xf];
		} else
			out[o++] = (char)in[i];
	}
	if (o >= outsz) {
		if (outsz > 0)
			out[0] = '\0';
		return -1;
	}
	out[o] = '\0';
	return (int)o;
}

int
headers_request_head(struct buf *out, const struct headers_request *r)
{
	const char *proto = r->tls ? "https" : "http";
	size_t i, conn = headers_first_connection(r->fields, r->nfields);

	if (buf_add(out, r->method.p, r->method.len) == -1 ||
	    buf_add(out, " ", 1) == -1 ||
	    buf_add(out, r->path.p, r->path.len) == -1 ||
	    buf_addlit(out, " HTTP/1.1\r\nHost: ") == -1 ||
	    buf_add(out, r->host.p, r->host.len) == -1 ||
	    buf_add(out, "\r\n", 2) == -1)
		return -1;
	for (i = 0; i < r->nfields; i++) {
		const struct http1_header *h = &r->fields[i];

		if (!request_forwards(h, r->fields, r->nfields, conn))
			continue;
		if (add_field(out, h) == -1)
			return -1;
	}
	/* No printf on the hot path. */
	if (buf_addlit(out, "X-Real-IP: ") == -1 ||
	    buf_addstr(out, r->client_ip) == -1 ||
	    buf_addlit(out, "\r\nX-Forwarded-For: ") == -1 ||
	    buf_addstr(out, r->client_ip) == -1 ||
	    buf_addlit(out, "\r\nX-Forwarded-Proto: ") == -1 ||
	    buf_addstr(out, proto) == -1 ||
	    buf_addlit(out, "\r\nX-Forwarded-Host: ") == -1 ||
	    buf_add(out, r->host.p, r->host.len) == -1 ||
	    buf_addlit(out, "\r\nX-Forwarded-Port: ") == -1 ||
	    buf_adddec(out, r->port) == -1 || buf_add(out, "\r\n", 2) == -1 ||
	    add_framing(out, r->framing, r->content_length) == -1)
		return -1;
	if (r->client_cert != NULL && add_client_cert(out, r->client_cert) ==
	    -1)
		return -1;
	if (r->websocket && buf_addlit(out, "Connection: Upgrade\r\n"
	    "Upgrade: websocket\r\n") == -1)
		return -1;
	return buf_add(out, "\r\n", 2);
}

/* Response fields the proxy regenerates. */
static bool
response_drops(const struct http1_header *h, enum headers_framing f)
{
	if (!UTIL_LIT_IS(h->name.p, h->name.len, "content-length"))
		return false;
	/* A HEAD or 304 answer keeps the length of what GET would send. */
	return f != HEADERS_FRAME_PASS;
}

int
headers_response_head(struct buf *out, const struct headers_response *r)
{
	char code[4];
	size_t i, conn = headers_first_connection(r->fields, r->nfields);

	if (r->status < 0 || r->status > 999)
		return -1;
	headers_status_digits(code, r->status);
	code[3] = ' ';
	if (buf_add(out, "HTTP/1.1 ", 9) == -1 || buf_add(out, code, 4) == -1)
		return -1;
	if (r->reason.len > 0) {
		if (buf_add(out, r->reason.p, r->reason.len) == -1)
			return -1;
	} else if (buf_addstr(out, headers_reason(r->status)) == -1)
		return -1;
	if (buf_add(out, "\r\n", 2) == -1)
		return -1;
	for (i = 0; i < r->nfields; i++) {
		const struct http1_header *h = &r->fields[i];

		if (response_drops(h, r->framing) || hop_by_hop(h->name.p,
		    h->name.len, r->fields, r->nfields, conn))
			continue;
		if (add_field(out, h) == -1)
			return -1;
	}
	if (add_framing(out, r->framing, r->content_length) == -1)
		return -1;
	if (r->websocket) {
		if (buf_addlit(out, "Connection: Upgrade\r\nUpgrade: "
		    "websocket\r\n") == -1)
			return -1;
	} else if (r->close && buf_addlit(out, "Connection: close\r\n") == -1)
		return -1;
	return buf_add(out, "\r\n", 2);
}

void
headers_status_digits(char out[3], int status)
{
	out[0] = (char)('0' + status / 100);
	out[1] = (char)('0' + status / 10 % 10);
	out[2] = (char)('0' + status % 10);
}

const char *
headers_reason(int status)
{
	static const struct {
		int		 status;
		const char	*reason;
	} reasons[] = {
		{ 100, "Continue" }, { 101, "Switching Protocols" },
		{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
		{ 204, "No Content" }, { 206, "Partial Content" },
		{ 301, "Moved Permanently" }, { 302, "Found" },
		{ 303, "See Other" }, { 304, "Not Modified" },
		{ 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
		{ 411, "Length Required" }, { 413, "Content Too Large" },
		{ 414, "URI Too Long" }, { 417, "Expectation Failed" },
		{ 421, "Misdirected Request" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
		{ 505, "HTTP Version Not Supported" },
	};
	size_t i;

	for (i = 0; i < nitems(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "";
}
