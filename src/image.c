/*
 * image.c - the flat config image (see image.h).
 *
 * Layout: a sequence of little fields in host byte order (the image never
 * leaves the machine), strings and blobs as a u32 length and the bytes:
 *
 *   magic version generation secrets
 *   workers max-connections shutdown-timeout health-port level format
 *   access-log
 *   rate-rps(bits) rate-burst rate-table-size body-limit
 *   http: max-request-line max-header-size max-headers handshake-timeout
 *         header-timeout idle-timeout client-timeout tunnel-timeout
 *         h2 h2-max-streams
 *   nfiles { secret data (empty when secret) }
 *   nlisteners { family addr[16] https-port http-port redirect-port
 *                max-connections-per-client
 *                bind tls-mode cert
 *                nsites { host wildcard metrics-slot backend cert
 *                         rate-own [rate-rps(bits) rate-burst]
 *                         client-auth client-ca edge
 *                         npaths { prefix replace-path backend edge } }
 *                [tls-mode acme:
 *                 ndomains { domain } domains-set directory contact
 *                 challenge cache-dir ca-file ca renew-days eab-kid
 *                 [secrets 1: eab-hmac-key]
 *                 nacme-certs { name cert }
 *                 nchallenges { type name token keyauth digest[32] }] }
 *   nlisteners times (proxyin.h, in the listeners' order)
 *              { proxy-protocol ntrusted { family bits addr[16] }
 *                real-ip-header }
 *   magic
 *
 * where a backend is:
 *   nups { name host addrlen addr slot } load-balance max-fails
 *   fail-timeout health-on [path interval timeout passes fails
 *   status-min status-max] connect-timeout request-timeout keepalive
 *   keepalive-timeout proxy-protocol scheme [scheme https: server-name
 *   verify ca client-cert client-key]
 * and edge (allow, deny and the header options; a path block's that its
 * site's stand for have own 0, and are its site's once decoded):
 *   access-own [first-allow nfirst nranges { family bits addr[16] }]
 *   response-header hide-response-header request-header
 * each list of fields own [n { name value }] (hide: values empty);
 * the last three indexes in files (the two client ones both
 * CONFIG_NO_FILE without a client certificate), an empty server-name
 * and an empty replace-path none.  Files (upstream-ca-file, the system
 * trust store, client certificates and keys) are there once however many
 * backends name them.  secrets is 1 in the ACME process's copy (image_encode_acme),
 * the only one with the EAB keys; recording it keeps decode-then-encode
 * exact.
 *
 * No private key is ever in an image (issue 19): a certificate's key is
 * found by the SHA-256 of its public key (the certificate's) in the
 * signer (signer.h), which gets the keys from the master alone.  A
 * secret file (an upstream-client-key) keeps its index with no bytes.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "control.h"
#include "image.h"
#include "ratelimit.h"
#include "shm.h"
#include "util.h"

#define IMAGE_MAX	(256u * 1024 * 1024)
#define STR_MAX		1024
/* The fewest bytes a listener / a site can take: bounds counts early. */
#define LISTENER_MIN	(1 + 16 + 2 + 2 + 2 + 4 + 4 + 1 + 4 + 4)
#define EDGE_MIN	4
#define SITE_MIN	(4 + 1 + 2 + BACKEND_MIN + 4 + 1 + 1 + 4 + EDGE_MIN + 4)
#define UPSTREAM_MIN	(4 + 1 + 4 + 1 + 4 + 16 + 4)
#define BACKEND_MIN	(4 + UPSTREAM_MIN + 1 + 4 + 4 + 1 + 16 + 1 + 1)
#define PATH_MIN	(4 + 1 + 4 + BACKEND_MIN + EDGE_MIN)
#define RANGE_MIN	(1 + 1 + 16)
#define FIELD_MIN	(4 + 1 + 4)
#define FILE_MIN	(1 + 4)
#define DOMAIN_MIN	(4 + 1)
#define ACME_CERT_MIN	(4 + 1 + 4 + 1)
#define CHALLENGE_MIN	(1 + 4 + 1 + 4 + 4 + 32)

/* Writes into a buffer of fixed size; with p NULL it only counts. */
struct wbuf {
	unsigned char	*p;
	size_t		 len;
	size_t		 cap;
	bool		 err;
};

struct rbuf {
	const unsigned char *p;
	size_t		 len;
	size_t		 off;
	bool		 err;
	size_t		 nfiles;	/* what a backend's indexes are below */
};

static void
put(struct wbuf *w, const void *d, size_t n)
{
	if (w->err)
		return;
	if (n > IMAGE_MAX - w->len) {
		w->err = true;
		return;
	}
	if (w->p != NULL) {
		if (n > w->cap - w->len) {
			w->err = true;
			return;
		}
		memcpy(w->p + w->len, d, n);
	}
	w->len += n;
}

static void put_u8(struct wbuf *w, uint8_t v) { put(w, &v, sizeof(v)); }
static void put_u16(struct wbuf *w, uint16_t v) { put(w, &v, sizeof(v)); }
static void put_u32(struct wbuf *w, uint32_t v) { put(w, &v, sizeof(v)); }
static void put_u64(struct wbuf *w, uint64_t v) { put(w, &v, sizeof(v)); }

static void
put_bytes(struct wbuf *w, const void *d, size_t n)
{
	if (n > UINT32_MAX) {
		w->err = true;
		return;
	}
	put_u32(w, (uint32_t)n);
	if (n > 0)
		put(w, d, n);
}

static void
put_str(struct wbuf *w, const char *s)
{
	put_bytes(w, s, s != NULL ? strlen(s) : 0);
}

static void
put_rate(struct wbuf *w, double rps)
{
	uint64_t bits;

	memcpy(&bits, &rps, sizeof(bits));
	put_u64(w, bits);
}

static void
put_backend(struct wbuf *w, const struct config_backend *be)
{
	const struct config_health *h = &be->health;
	size_t i;

	put_u32(w, (uint32_t)be->nups);
	for (i = 0; i < be->nups; i++) {
		put_str(w, be->ups[i].name);
		put_str(w, be->ups[i].host);
		put_bytes(w, &be->ups[i].addr, be->ups[i].addrlen);
		put_u32(w, be->ups[i].slot);
	}
	put_u8(w, (uint8_t)be->balance);
	put_u32(w, be->max_fails);
	put_u32(w, be->fail_timeout);
	put_u8(w, h->on);
	if (h->on) {
		put_str(w, h->path);
		put_u32(w, h->interval);
		put_u32(w, h->timeout);
		put_u32(w, h->passes);
		put_u32(w, h->fails);
		put_u32(w, h->status_min);
		put_u32(w, h->status_max);
	}
	put_u32(w, be->connect_timeout);
	put_u32(w, be->request_timeout);
	put_u32(w, be->keepalive);
	put_u32(w, be->keepalive_timeout);
	put_u8(w, (uint8_t)be->proxy_protocol);
	put_u8(w, (uint8_t)be->scheme);
	if (be->scheme != CONFIG_SCHEME_HTTPS)
		return;
	put_str(w, be->server_name);
	put_u8(w, be->verify ? 1 : 0);
	put_u32(w, be->ca);
	put_u32(w, be->client_cert);
	put_u32(w, be->client_key);
}

static void
put_files(struct wbuf *w, const struct config *cfg)
{
	size_t i;

	put_u32(w, (uint32_t)cfg->nfiles);
	for (i = 0; i < cfg->nfiles; i++) {
		put_u8(w, cfg->files[i].secret ? 1 : 0);
		/* A private key goes to the signer, never in an image. */
		if (cfg->files[i].secret)
			put_bytes(w, NULL, 0);
		else
			put_bytes(w, cfg->files[i].data.data,
			    cfg->files[i].data.len);
	}
}

/* allow and deny, and the header options (issue 18). */
static void
put_fields(struct wbuf *w, const struct config_fields *f)
{
	size_t i;

	put_u8(w, f->own ? 1 : 0);
	if (!f->own)
		return;
	put_u32(w, (uint32_t)f->n);
	for (i = 0; i < f->n; i++) {
		put_bytes(w, f->f[i].name.p, f->f[i].name.len);
		put_bytes(w, f->f[i].value.p, f->f[i].value.len);
	}
}

/* A range: family, bits, the 16 address bytes (get_range). */
static void
put_range(struct wbuf *w, const struct cidr *c)
{
	put_u8(w, c->family);
	put_u8(w, c->bits);
	put(w, c->addr, sizeof(c->addr));
}

static void
put_edge(struct wbuf *w, const struct config_access *a,
    const struct config_edits *e)
{
	size_t i;

	put_u8(w, a->own ? 1 : 0);
	if (a->own) {
		put_u8(w, a->first_allow ? 1 : 0);
		put_u32(w, (uint32_t)a->nfirst);
		put_u32(w, (uint32_t)a->nranges);
		for (i = 0; i < a->nranges; i++)
			put_range(w, &a->ranges[i]);
	}
	put_fields(w, &e->resp_add);
	put_fields(w, &e->resp_hide);
	put_fields(w, &e->req_add);
}

static void
put_site(struct wbuf *w, const struct config_site *s)
{
	size_t i;

	put_str(w, s->host);
	put_u8(w, s->wildcard);
	put_u16(w, s->metrics_slot);
	put_backend(w, &s->be);
	put_bytes(w, s->tls.cert.data, s->tls.cert.len);
	put_u8(w, s->rate_own);
	if (s->rate_own) {
		put_rate(w, s->rate_rps);
		put_u32(w, s->rate_burst);
	}
	put_u8(w, (uint8_t)s->client_auth);
	put_u32(w, s->client_ca);
	put_edge(w, &s->access, &s->edits);
	put_u32(w, (uint32_t)s->npaths);
	for (i = 0; i < s->npaths; i++) {
		put_str(w, s->paths[i].prefix);
		put_str(w, s->paths[i].replace);
		put_backend(w, &s->paths[i].be);
		put_edge(w, &s->paths[i].access, &s->paths[i].edits);
	}
}

/* A listener's tls { mode = "acme" } part, and the master's additions. */
static void
put_acme(struct wbuf *w, const struct config_listener *l, bool secrets)
{
	const struct config_acme *a = &l->acme;
	size_t i;

	put_u32(w, (uint32_t)a->ndomains);
	for (i = 0; i < a->ndomains; i++)
		put_str(w, a->domains[i]);
	put_u8(w, a->domains_set ? 1 : 0);
	put_str(w, a->directory);
	put_str(w, a->contact);
	put_u8(w, (uint8_t)a->challenge);
	put_str(w, a->cache_dir);
	put_str(w, a->ca_file);
	put_bytes(w, a->ca.data, a->ca.len);
	put_u32(w, a->renew_days);
	put_str(w, a->eab_kid);
	if (secrets)
		put_str(w, a->eab_hmac_key);
	put_u32(w, (uint32_t)l->nacme_certs);
	for (i = 0; i < l->nacme_certs; i++) {
		put_str(w, l->acme_certs[i].name);
		put_bytes(w, l->acme_certs[i].cert.data,
		    l->acme_certs[i].cert.len);
	}
	put_u32(w, (uint32_t)l->nchallenges);
	for (i = 0; i < l->nchallenges; i++) {
		const struct config_challenge *c = &l->challenges[i];

		put_u8(w, (uint8_t)c->type);
		put_str(w, c->name);
		put_str(w, c->token);
		put_str(w, c->keyauth);
		put(w, c->digest, sizeof(c->digest));
	}
}

static void
put_listener(struct wbuf *w, const struct config_listener *l, bool secrets)
{
	unsigned char addr[16];
	size_t i;

	memset(addr, 0, sizeof(addr));
	memcpy(addr, &l->addr, l->family == AF_INET ? 4 : 16);
	put_u8(w, (uint8_t)l->family);
	put(w, addr, sizeof(addr));
	put_u16(w, l->https_port);
	put_u16(w, l->http_port);
	put_u16(w, l->redirect_port);
	put_u32(w, l->max_conns_per_client);
	put_str(w, l->bind);
	put_u8(w, (uint8_t)l->tls_mode);
	put_bytes(w, l->tls.cert.data, l->tls.cert.len);
	put_u32(w, (uint32_t)l->nsites);
	for (i = 0; i < l->nsites; i++)
		put_site(w, &l->sites[i]);
	if (l->tls_mode == CONFIG_TLS_ACME)
		put_acme(w, l, secrets);
}

/* A listener's proxy-protocol, trusted-proxies and real-ip-header. */
static void
put_listener_proxy(struct wbuf *w, const struct config_listener *l)
{
	size_t i;

	put_u8(w, l->proxy_protocol ? 1 : 0);
	put_u32(w, (uint32_t)l->ntrusted);
	for (i = 0; i < l->ntrusted; i++)
		put_range(w, &l->trusted[i]);
	put_str(w, l->real_ip_header);
}

static void
put_http(struct wbuf *w, const struct config_http *h)
{
	put_u32(w, h->max_request_line);
	put_u32(w, h->max_header_size);
	put_u32(w, h->max_headers);
	put_u32(w, h->handshake_timeout);
	put_u32(w, h->header_timeout);
	put_u32(w, h->idle_timeout);
	put_u32(w, h->client_timeout);
	put_u32(w, h->tunnel_timeout);
	put_u32(w, h->h2);
	put_u32(w, h->h2_max_streams);
}

static int
encode(const struct config *cfg, uint64_t gen, bool secrets,
    unsigned char **out, size_t *outlen)
{
	struct wbuf w = { 0 };
	size_t i;

	/*
	 * A first pass counts, the second writes into a buffer of exactly
	 * that size: no realloc ever leaves a stray copy of a private key
	 * in freed memory.
	 */
	for (int pass = 0; pass < 2; pass++) {
		w.len = 0;
		put_u32(&w, IMAGE_MAGIC);
		put_u32(&w, IMAGE_VERSION);
		put_u64(&w, gen);
		put_u8(&w, secrets ? 1 : 0);
		put_u32(&w, cfg->workers);
		put_u32(&w, cfg->max_connections);
		put_u32(&w, cfg->shutdown_timeout);
		put_u16(&w, cfg->health_port);
		put_u8(&w, (uint8_t)cfg->log_level);
		put_u8(&w, (uint8_t)cfg->log_format);
		put_u8(&w, cfg->log_access ? 1 : 0);
		put_rate(&w, cfg->rate_rps);
		put_u32(&w, cfg->rate_burst);
		put_u32(&w, cfg->rate_table_size);
		put_u64(&w, cfg->body_limit);
		put_http(&w, &cfg->http);
		put_files(&w, cfg);
		put_u32(&w, (uint32_t)cfg->nlisteners);
		for (i = 0; i < cfg->nlisteners; i++)
			put_listener(&w, &cfg->listeners[i], secrets);
		for (i = 0; i < cfg->nlisteners; i++)
			put_listener_proxy(&w, &cfg->listeners[i]);
		put_u32(&w, IMAGE_MAGIC);
		if (w.err)
			break;
		if (pass == 0) {
			if ((w.p = malloc(w.len)) == NULL)
				return -1;
			w.cap = w.len;
		}
	}
	if (w.err || w.len != w.cap) {
		if (w.p != NULL)
			explicit_bzero(w.p, w.cap);
		free(w.p);
		return -1;
	}
	*out = w.p;
	*outlen = w.len;
	return 0;
}

int
image_encode(const struct config *cfg, uint64_t gen, unsigned char **out,
    size_t *outlen)
{
	return encode(cfg, gen, false, out, outlen);
}

int
image_encode_acme(const struct config *cfg, uint64_t gen,
    unsigned char **out, size_t *outlen)
{
	return encode(cfg, gen, true, out, outlen);
}

int
image_is_acme(const unsigned char *buf, size_t len)
{
	uint32_t magic, version;

	if (len < 17)
		return -1;
	memcpy(&magic, buf, 4);
	memcpy(&version, buf + 4, 4);
	if (magic != IMAGE_MAGIC || version != IMAGE_VERSION || buf[16] > 1)
		return -1;
	return buf[16];
}

static const unsigned char *
get(struct rbuf *r, size_t n)
{
	const unsigned char *p;

	if (r->err || n > r->len - r->off) {
		r->err = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

#define GETTER(name, type)						\
static type								\
name(struct rbuf *r)							\
{									\
	const unsigned char *p = get(r, sizeof(type));			\
	type v = 0;							\
									\
	if (p != NULL)							\
		memcpy(&v, p, sizeof(v));				\
	return v;							\
}
GETTER(get_u8, uint8_t)
GETTER(get_u16, uint16_t)
GETTER(get_u32, uint32_t)
GETTER(get_u64, uint64_t)

/* A length-prefixed byte string, copied and NUL-terminated. */
static int
get_blob(struct rbuf *r, size_t max, struct config_blob *b)
{
	uint32_t n = get_u32(r);
	const unsigned char *p;

	if (r->err || n > max || (p = get(r, n)) == NULL) {
		r->err = true;
		return -1;
	}
	if ((b->data = malloc((size_t)n + 1)) == NULL) {
		r->err = true;
		return -1;
	}
	memcpy(b->data, p, n);
	b->data[n] = '\0';
	b->len = n;
	return 0;
}

/* A printable ASCII string of 1..max bytes (0..max if it may be empty). */
static char *
get_str(struct rbuf *r, size_t max, bool may_be_empty)
{
	struct config_blob b = { NULL, 0 };
	size_t i;

	if (get_blob(r, max, &b) == -1)
		return NULL;
	for (i = 0; i < b.len; i++)
		if (b.data[i] < 0x21 || b.data[i] > 0x7e)
			r->err = true;
	if (b.len == 0 && !may_be_empty)
		r->err = true;
	if (r->err) {
		free(b.data);
		return NULL;
	}
	return (char *)b.data;
}

/* get_str, with the empty string as NULL. */
static char *
get_opt_str(struct rbuf *r, size_t max)
{
	char *s = get_str(r, max, true);

	if (s != NULL && s[0] == '\0') {
		free(s);
		return NULL;
	}
	return s;
}

/* A path: 1..CONFIG_PATH_MAX bytes, no NUL (empty: NULL if optional). */
static char *
get_path(struct rbuf *r, bool absolute, bool optional)
{
	struct config_blob b = { NULL, 0 };

	if (get_blob(r, CONFIG_PATH_MAX, &b) == -1)
		return NULL;
	if (memchr(b.data, '\0', b.len) != NULL ||
	    (b.len == 0 && !optional) || (absolute && b.data[0] != '/'))
		r->err = true;
	if (r->err || b.len == 0) {
		free(b.data);
		return NULL;
	}
	return (char *)b.data;
}

/* A certificate (its key is the signer's); required or forbidden when
   told so. */
static void
get_tls(struct rbuf *r, struct config_tls *t, bool required, bool forbidden)
{
	if (get_blob(r, CONFIG_PEM_MAX, &t->cert) == -1)
		return;
	if ((required && t->cert.len == 0) || (forbidden && t->cert.len > 0))
		r->err = true;
}

static bool
host_ok(const char *h, bool wildcard)
{
	size_t i, len = strlen(h);

	for (i = 0; i < len; i++)
		if (h[i] >= 'A' && h[i] <= 'Z')
			return false;
	if (wildcard != (len > 2 && h[0] == '*' && h[1] == '.'))
		return false;
	return config_check_hostname(h, len, wildcard) == 0 &&
	    h[len - 1] != '.';
}

static bool
sockaddr_ok(const struct config_upstream *up)
{
	sa_family_t fam = up->addr.ss_family;

	if (fam == AF_INET)
		return up->addrlen == sizeof(struct sockaddr_in);
	if (fam == AF_INET6)
		return up->addrlen == sizeof(struct sockaddr_in6);
	return false;
}

/* The ranges config.c enforces. */
static bool
rate_ok(double rps, unsigned burst)
{
	return isfinite(rps) && rps > 0 && rps <= 1e6 && burst >= 1 &&
	    burst <= 1000000;
}

static double
get_rate(struct rbuf *r)
{
	uint64_t bits = get_u64(r);
	double rps;

	memcpy(&rps, &bits, sizeof(rps));
	return rps;
}

static void
get_site_limit(struct rbuf *r, struct config_site *s)
{
	uint8_t own = get_u8(r);

	if (own > 1) {
		r->err = true;
		return;
	}
	s->rate_own = own == 1;
	if (!s->rate_own)
		return;
	s->rate_rps = get_rate(r);
	s->rate_burst = get_u32(r);
	if (!rate_ok(s->rate_rps, s->rate_burst))
		r->err = true;
}

/*
 * A count of elements of at least min bytes each, at most max: 0 (and
 * an error) if the rest of the image cannot hold that many.
 */
static uint32_t
get_count(struct rbuf *r, uint32_t max, size_t min)
{
	uint32_t n = get_u32(r);

	if (r->err || n > max || n > (r->len - r->off) / min) {
		r->err = true;
		return 0;
	}
	return n;
}

static void *
get_array(struct rbuf *r, uint32_t n, size_t size)
{
	void *p;

	if (r->err || n == 0)
		return NULL;
	if ((p = calloc(n, size)) == NULL)
		r->err = true;
	return p;
}

/* With scheme https: TLS to the upstream, its files among those read. */
static void
get_backend_tls(struct rbuf *r, struct config_backend *be)
{
	uint8_t verify;

	be->ca = be->client_cert = be->client_key = CONFIG_NO_FILE;
	be->verify = true;
	if (be->scheme != CONFIG_SCHEME_HTTPS)
		return;
	be->server_name = get_opt_str(r, CONFIG_HOST_MAX);
	verify = get_u8(r);
	be->verify = verify == 1;
	be->ca = get_u32(r);
	be->client_cert = get_u32(r);
	be->client_key = get_u32(r);
	if (r->err || verify > 1 || !config_backend_tls_ok(be, r->nfiles))
		r->err = true;
}

/* An upstream: its address one of the kinds config.c resolves. */
static void
get_upstream(struct rbuf *r, struct config_upstream *up)
{
	const unsigned char *a;
	uint32_t alen;

	if ((up->name = get_str(r, STR_MAX, false)) == NULL ||
	    (up->host = get_str(r, CONFIG_HOST_MAX, false)) == NULL)
		return;
	alen = get_u32(r);
	if (alen > sizeof(up->addr) || (a = get(r, alen)) == NULL) {
		r->err = true;
		return;
	}
	memcpy(&up->addr, a, alen);
	up->addrlen = alen;
	if (!sockaddr_ok(up))
		r->err = true;
	if ((up->slot = get_u32(r)) >= CONFIG_MAX_UPSTREAM_SLOTS)
		r->err = true;
}

static void
get_health(struct rbuf *r, struct config_health *h)
{
	uint8_t on = get_u8(r);
	uint32_t smin, smax;

	if (on > 1) {
		r->err = true;
		return;
	}
	if ((h->on = on == 1) == false)
		return;
	if ((h->path = get_str(r, CONFIG_PREFIX_MAX, false)) == NULL)
		return;
	h->interval = get_u32(r);
	h->timeout = get_u32(r);
	h->passes = get_u32(r);
	h->fails = get_u32(r);
	smin = get_u32(r);
	smax = get_u32(r);
	h->status_min = (uint16_t)smin;
	h->status_max = (uint16_t)smax;
	if (!config_health_path_ok(h->path) || h->interval < 1 ||
	    h->interval > 3600 || h->timeout < 1 ||
	    h->timeout > h->interval || h->passes < 1 || h->passes > 100 ||
	    h->fails < 1 || h->fails > 100 || smin < 100 || smax > 599 ||
	    smin > smax)
		r->err = true;
}

/* A backend: the ranges config.c enforces. */
static void
get_backend(struct rbuf *r, struct config_backend *be)
{
	uint32_t n = get_count(r, CONFIG_MAX_UPSTREAMS, UPSTREAM_MIN);
	uint8_t lb, pp, scheme;

	if (n == 0)
		r->err = true;
	be->ups = get_array(r, n, sizeof(*be->ups));
	for (; be->nups < n && !r->err; be->nups++)
		get_upstream(r, &be->ups[be->nups]);
	if (r->err)
		return;
	if ((lb = get_u8(r)) > CONFIG_LB_STICKY)
		r->err = true;
	be->balance = (enum config_balance)lb;
	be->max_fails = get_u32(r);
	be->fail_timeout = get_u32(r);
	if (be->max_fails > 1000 || be->fail_timeout < 1 ||
	    be->fail_timeout > 3600)
		r->err = true;
	get_health(r, &be->health);
	be->connect_timeout = get_u32(r);
	be->request_timeout = get_u32(r);
	be->keepalive = get_u32(r);
	be->keepalive_timeout = get_u32(r);
	pp = get_u8(r);
	be->proxy_protocol = (enum config_proxy_protocol)pp;
	scheme = get_u8(r);
	be->scheme = (enum config_scheme)scheme;
	if (be->connect_timeout < 1 || be->connect_timeout > 3600 ||
	    be->request_timeout < 1 || be->request_timeout > 86400 ||
	    be->keepalive > CONFIG_KEEPALIVE_MAX ||
	    be->keepalive_timeout < 1 || be->keepalive_timeout > 3600 ||
	    pp > CONFIG_PROXY_V2 || scheme > CONFIG_SCHEME_HTTPS) {
		r->err = true;
		return;
	}
	get_backend_tls(r, be);
	if (be->scheme == CONFIG_SCHEME_HTTP &&
	    !config_backend_tls_ok(be, r->nfiles))
		r->err = true;
}

/* The files backends name, each at most as large as config.c reads. */
static void
get_files(struct rbuf *r, struct config *cfg)
{
	uint32_t n = get_count(r, CONFIG_MAX_FILES, FILE_MIN);
	uint8_t secret;

	cfg->files = get_array(r, n, sizeof(*cfg->files));
	for (; cfg->nfiles < n && !r->err; cfg->nfiles++) {
		secret = get_u8(r);
		cfg->files[cfg->nfiles].secret = secret == 1;
		if (secret > 1 || get_blob(r, CONFIG_CA_MAX,
		    &cfg->files[cfg->nfiles].data) == -1) {
			r->err = true;
			break;
		}
		/* A secret (a private key) is the signer's: no bytes.  The
		   file is counted first, so that config_free frees its blob. */
		if (secret == 1 && cfg->files[cfg->nfiles].data.len > 0) {
			cfg->nfiles++;
			r->err = true;
			break;
		}
	}
	r->nfiles = cfg->nfiles;
}

/* A range as cidr_parse() makes them: its canonical form parses back. */
static void
get_range(struct rbuf *r, struct cidr *c)
{
	const unsigned char *a;
	char text[CIDR_TEXT_MAX], why[64];
	struct cidr back;

	c->family = get_u8(r);
	c->bits = get_u8(r);
	if ((a = get(r, sizeof(c->addr))) == NULL)
		return;
	memcpy(c->addr, a, sizeof(c->addr));
	if ((c->family != 4 && c->family != 6) ||
	    c->bits > (c->family == 4 ? 32 : 128)) {
		r->err = true;
		return;
	}
	cidr_format(c, text);
	if (cidr_parse(text, strlen(text), &back, why, sizeof(why)) == -1 ||
	    memcmp(&back, c, sizeof(back)) != 0)
		r->err = true;
}

static void
get_access(struct rbuf *r, struct config_access *a)
{
	uint8_t own = get_u8(r), first;

	if (own > 1) {
		r->err = true;
		return;
	}
	if ((a->own = own == 1) == false)
		return;
	first = get_u8(r);
	a->first_allow = first == 1;
	a->nfirst = get_u32(r);
	a->nranges = get_count(r, 2 * CONFIG_MAX_ACCESS_RULES, RANGE_MIN);
	/* Both lists at most their limit, neither empty when written. */
	if (r->err || first > 1 || a->nfirst == 0 ||
	    a->nfirst > a->nranges || a->nfirst > CONFIG_MAX_ACCESS_RULES ||
	    a->nranges - a->nfirst > CONFIG_MAX_ACCESS_RULES) {
		r->err = true;
		a->nranges = 0;
		return;
	}
	a->whitelist = a->first_allow || a->nranges > a->nfirst;
	if ((a->ranges = get_array(r, (uint32_t)a->nranges,
	    sizeof(*a->ranges))) == NULL) {
		a->nranges = 0;
		return;
	}
	for (size_t i = 0; i < a->nranges && !r->err; i++)
		get_range(r, &a->ranges[i]);
}

/* A list of fields, each as headers_option_check() allows, no name twice. */
static void
get_fields(struct rbuf *r, struct config_fields *f, enum headers_option opt)
{
	struct config_blob names[HEADERS_EDIT_MAX], values[HEADERS_EDIT_MAX];
	const char *np[HEADERS_EDIT_MAX], *vp[HEADERS_EDIT_MAX];
	uint8_t own = get_u8(r);
	uint32_t n, i, j;

	if (own > 1) {
		r->err = true;
		return;
	}
	if ((f->own = own == 1) == false)
		return;
	n = get_count(r, HEADERS_EDIT_MAX, FIELD_MIN);
	memset(names, 0, sizeof(names));
	memset(values, 0, sizeof(values));
	for (i = 0; i < n && !r->err; i++) {
		if (get_blob(r, 128, &names[i]) == -1 ||
		    get_blob(r, 2048, &values[i]) == -1)
			break;
		np[i] = (const char *)names[i].data;
		vp[i] = opt == HEADERS_OPT_HIDE ? NULL :
		    (const char *)values[i].data;
		if (headers_option_check(opt, np[i], names[i].len, vp[i],
		    values[i].len) != NULL ||
		    (opt == HEADERS_OPT_HIDE && values[i].len > 0))
			r->err = true;
		for (j = 0; j < i; j++)
			if (util_strcaseeq(np[i], names[i].len, np[j],
			    names[j].len))
				r->err = true;
	}
	if (!r->err && n > 0 && (f->f = config_fields_make(np, vp, n)) ==
	    NULL)
		r->err = true;
	if (f->f != NULL)
		f->n = n;
	for (i = 0; i < n; i++) {
		free(names[i].data);
		free(values[i].data);
	}
}

static void
get_edge(struct rbuf *r, struct config_access *a, struct config_edits *e)
{
	get_access(r, a);
	get_fields(r, &e->resp_add, HEADERS_OPT_RESPONSE);
	get_fields(r, &e->resp_hide, HEADERS_OPT_HIDE);
	get_fields(r, &e->req_add, HEADERS_OPT_REQUEST);
	config_edits_view(e);
}

/* A path block: the rules config.c enforces. */
static void
get_path_block(struct rbuf *r, struct config_path *p)
{
	if ((p->prefix = get_str(r, CONFIG_PREFIX_MAX, false)) == NULL)
		return;
	p->prefix_len = strlen(p->prefix);
	if (!config_path_ok(p->prefix, p->prefix_len, true))
		r->err = true;
	p->replace = get_opt_str(r, CONFIG_PREFIX_MAX);
	if (p->replace != NULL) {
		p->replace_len = strlen(p->replace);
		if (!config_path_ok(p->replace, p->replace_len, false))
			r->err = true;
	}
	get_backend(r, &p->be);
	get_edge(r, &p->access, &p->edits);
}

/* A site's path blocks, longest prefix first (request.c relies on it). */
static void
get_paths(struct rbuf *r, struct config_site *s)
{
	uint32_t n = get_count(r, CONFIG_MAX_PATHS, PATH_MIN);

	s->paths = get_array(r, n, sizeof(*s->paths));
	for (; s->npaths < n && !r->err; s->npaths++) {
		get_path_block(r, &s->paths[s->npaths]);
		config_path_inherit(s, &s->paths[s->npaths]);
		if (s->npaths > 0 && s->paths[s->npaths].prefix_len >
		    s->paths[s->npaths - 1].prefix_len)
			r->err = true;
	}
}

/* client-auth and its CA, a file among those read (issue 18). */
static void
get_client_auth(struct rbuf *r, struct config_site *s)
{
	uint8_t auth = get_u8(r);

	s->client_ca = get_u32(r);
	s->client_auth = (enum config_client_auth)auth;
	if (r->err || auth > CONFIG_CLIENT_AUTH_OPTIONAL ||
	    !config_client_auth_ok(s, r->nfiles))
		r->err = true;
}

static void
get_site(struct rbuf *r, struct config_site *s)
{
	uint8_t wild;

	if ((s->host = get_str(r, CONFIG_HOST_MAX, false)) == NULL)
		return;
	/* Only canonical encodings: encode(decode(x)) must give back x. */
	if ((wild = get_u8(r)) > 1)
		r->err = true;
	s->wildcard = wild == 1;
	if (!host_ok(s->host, s->wildcard))
		r->err = true;
	/* A row of the statistics (shm.h): bounded here, once. */
	if ((s->metrics_slot = get_u16(r)) >= SHM_SITE_ROWS)
		r->err = true;
	get_backend(r, &s->be);
	if (r->err)
		return;
	get_tls(r, &s->tls, false, false);
	get_site_limit(r, s);
	get_client_auth(r, s);
	get_edge(r, &s->access, &s->edits);
	if (!r->err)
		get_paths(r, s);
}

static char *
get_host(struct rbuf *r)
{
	char *h = get_str(r, CONFIG_HOST_MAX, false);

	if (h != NULL && !host_ok(h, false))
		r->err = true;
	return h;
}

static void
get_acme_config(struct rbuf *r, struct config_acme *a, bool secrets)
{
	uint8_t set, ch;
	uint32_t n;

	n = get_count(r, CONFIG_MAX_SITES, DOMAIN_MIN);
	if (n == 0 || (a->domains = get_array(r, n, sizeof(char *))) == NULL) {
		r->err = true;
		return;
	}
	for (; a->ndomains < n && !r->err; a->ndomains++)
		a->domains[a->ndomains] = get_host(r);
	set = get_u8(r);
	a->domains_set = set == 1;
	a->directory = get_str(r, CONFIG_ACME_URL_MAX, false);
	a->contact = get_opt_str(r, CONFIG_ACME_URL_MAX);
	ch = get_u8(r);
	a->challenge = (enum config_acme_challenge)ch;
	a->cache_dir = get_path(r, true, false);
	a->ca_file = get_path(r, false, true);
	get_blob(r, CONFIG_PEM_MAX, &a->ca);
	a->renew_days = get_u32(r);
	a->eab_kid = get_opt_str(r, CONFIG_ACME_EAB_MAX);
	if (secrets)
		a->eab_hmac_key = get_opt_str(r, CONFIG_ACME_EAB_MAX);
	if (r->err || set > 1 || !config_acme_url_ok(a->directory) ||
	    (a->contact != NULL && !config_acme_contact_ok(a->contact)) ||
	    ch > CONFIG_ACME_HTTP_01 || a->renew_days > 365 ||
	    /* Both or neither, in the copy that has the keys. */
	    (secrets && (a->eab_kid == NULL) != (a->eab_hmac_key == NULL)) ||
	    (a->eab_hmac_key != NULL &&
	    !config_base64url_ok(a->eab_hmac_key, CONFIG_ACME_EAB_MAX)))
		r->err = true;
}

static void
get_acme_cert(struct rbuf *r, struct config_acme_cert *c)
{
	if ((c->name = get_host(r)) == NULL ||
	    get_blob(r, CONFIG_PEM_MAX, &c->cert) == -1)
		return;
	if (c->cert.len == 0)
		r->err = true;
}

static void
get_challenge(struct rbuf *r, struct config_challenge *c)
{
	uint8_t type = get_u8(r);
	const unsigned char *d;

	c->type = (enum config_acme_challenge)type;
	if (type > CONFIG_ACME_HTTP_01 || (c->name = get_host(r)) == NULL)
		goto bad;
	c->token = get_opt_str(r, CONTROL_TOKEN_MAX);
	c->keyauth = get_opt_str(r, CONTROL_KEYAUTH_MAX);
	if ((d = get(r, sizeof(c->digest))) == NULL)
		return;
	memcpy(c->digest, d, sizeof(c->digest));
	/* HTTP-01 answers GET /.well-known/acme-challenge/TOKEN. */
	if (c->token != NULL &&
	    !config_base64url_ok(c->token, CONTROL_TOKEN_MAX))
		goto bad;
	if (c->type == CONFIG_ACME_HTTP_01 &&
	    (c->token == NULL || c->keyauth == NULL))
		goto bad;
	return;
bad:
	r->err = true;
}

static void
get_acme(struct rbuf *r, struct config_listener *l, bool secrets)
{
	uint32_t n;

	get_acme_config(r, &l->acme, secrets);
	n = get_count(r, CONFIG_MAX_SITES, ACME_CERT_MIN);
	l->acme_certs = get_array(r, n, sizeof(*l->acme_certs));
	for (; l->nacme_certs < n && !r->err; l->nacme_certs++)
		get_acme_cert(r, &l->acme_certs[l->nacme_certs]);
	n = get_count(r, 2 * CONFIG_MAX_SITES, CHALLENGE_MIN);
	l->challenges = get_array(r, n, sizeof(*l->challenges));
	for (; l->nchallenges < n && !r->err; l->nchallenges++)
		get_challenge(r, &l->challenges[l->nchallenges]);
}

static void
get_listener(struct rbuf *r, struct config_listener *l, bool secrets)
{
	static const unsigned char zeros[12];
	const unsigned char *addr;
	uint8_t mode;
	uint32_t n, i;

	l->family = get_u8(r);
	if ((addr = get(r, 16)) == NULL)
		return;
	if (l->family != AF_INET && l->family != AF_INET6) {
		r->err = true;
		return;
	}
	memcpy(&l->addr, addr, l->family == AF_INET ? 4 : 16);
	/* An IPv4 address is followed by zeros, as encoded. */
	if (l->family == AF_INET && memcmp(addr + 4, zeros, 12) != 0)
		r->err = true;
	l->https_port = get_u16(r);
	l->http_port = get_u16(r);
	l->redirect_port = get_u16(r);
	if (l->https_port == 0 || l->https_port == l->http_port ||
	    (l->redirect_port != 0 && l->http_port == 0))
		r->err = true;
	l->max_conns_per_client = get_u32(r);
	if (l->max_conns_per_client > CONFIG_MAX_CONNS_PER_CLIENT)
		r->err = true;
	if ((l->bind = get_str(r, INET6_ADDRSTRLEN + 2, false)) == NULL)
		return;
	mode = get_u8(r);
	if (mode > CONFIG_TLS_ACME) {
		r->err = true;
		return;
	}
	l->tls_mode = (enum config_tls_mode)mode;
	/* Manual: the listener's certificate; ACME: none of its own. */
	get_tls(r, &l->tls, l->tls_mode == CONFIG_TLS_MANUAL,
	    l->tls_mode == CONFIG_TLS_ACME);
	n = get_count(r, CONFIG_MAX_SITES, SITE_MIN);
	if (n == 0 || (l->sites = get_array(r, n, sizeof(*l->sites))) ==
	    NULL) {
		r->err = true;
		return;
	}
	l->nsites = n;
	for (i = 0; i < n && !r->err; i++)
		get_site(r, &l->sites[i]);
	if (l->tls_mode == CONFIG_TLS_ACME && !r->err)
		get_acme(r, l, secrets);
}

/*
 * The rules config.c enforces: ranges in canonical form (they print and
 * parse back the same: host bits 0), the list required by proxy-protocol
 * and real-ip-header, a field name real-ip-header accepts.
 */
static void
get_listener_proxy(struct rbuf *r, struct config_listener *l)
{
	uint8_t pp = get_u8(r);
	uint32_t n, i;

	n = get_count(r, CONFIG_MAX_TRUSTED, 2 + 16);
	if (pp > 1) {
		r->err = true;
		return;
	}
	l->proxy_protocol = pp == 1;
	l->trusted = get_array(r, n, sizeof(*l->trusted));
	for (i = 0; i < n && !r->err; i++, l->ntrusted++)
		get_range(r, &l->trusted[i]);
	l->real_ip_header = get_opt_str(r, CONFIG_REAL_IP_MAX);
	if (r->err)
		return;
	if ((l->proxy_protocol || l->real_ip_header != NULL) && n == 0)
		r->err = true;
	if (l->real_ip_header != NULL &&
	    !config_real_ip_header_ok(l->real_ip_header))
		r->err = true;
}

/* The ranges config.c enforces. */
static void
get_http(struct rbuf *r, struct config_http *h)
{
	uint32_t h2;

	h->max_request_line = get_u32(r);
	h->max_header_size = get_u32(r);
	h->max_headers = get_u32(r);
	h->handshake_timeout = get_u32(r);
	h->header_timeout = get_u32(r);
	h->idle_timeout = get_u32(r);
	h->client_timeout = get_u32(r);
	h->tunnel_timeout = get_u32(r);
	h2 = get_u32(r);
	h->h2 = h2 == 1;
	h->h2_max_streams = get_u32(r);
	if (h->max_request_line < 256 || h->max_request_line > 65536 ||
	    h->max_header_size < 1024 || h->max_header_size > 65536 ||
	    h->max_request_line > h->max_header_size ||
	    h->max_headers < 8 || h->max_headers > 128 ||
	    h->handshake_timeout < 1 || h->handshake_timeout > 300 ||
	    h->header_timeout < 1 || h->header_timeout > 300 ||
	    h->idle_timeout < 1 || h->idle_timeout > 3600 ||
	    h->client_timeout < 1 || h->client_timeout > 3600 ||
	    h->tunnel_timeout < 1 || h->tunnel_timeout > 86400 ||
	    h2 > 1 || h->h2_max_streams < 1 || h->h2_max_streams > 1000)
		r->err = true;
}

static void
get_globals(struct rbuf *r, struct config *cfg)
{
	uint8_t lvl, fmt, acc;

	cfg->workers = get_u32(r);
	cfg->max_connections = get_u32(r);
	cfg->shutdown_timeout = get_u32(r);
	cfg->health_port = get_u16(r);
	lvl = get_u8(r);
	fmt = get_u8(r);
	acc = get_u8(r);
	cfg->rate_rps = get_rate(r);
	cfg->rate_burst = get_u32(r);
	cfg->rate_table_size = get_u32(r);
	cfg->body_limit = get_u64(r);
	get_http(r, &cfg->http);
	if (cfg->workers > CONFIG_MAX_WORKERS ||
	    cfg->max_connections < 16 || cfg->max_connections > 1000000 ||
	    cfg->shutdown_timeout > 3600 || lvl > LOG_LEVEL_DEBUG ||
	    fmt > LOG_FORMAT_JSON || acc > 1 || !rate_ok(cfg->rate_rps, cfg->rate_burst) ||
	    cfg->rate_table_size < RATELIMIT_TABLE_MIN ||
	    cfg->rate_table_size > RATELIMIT_TABLE_MAX ||
	    cfg->body_limit > ((uint64_t)1 << 50))
		r->err = true;
	cfg->log_level = (enum log_level)lvl;
	cfg->log_format = (enum log_format)fmt;
	cfg->log_access = acc == 1;
}

int
image_decode(const unsigned char *buf, size_t len, struct config **out,
    uint64_t *gen)
{
	struct rbuf r = { buf, len, 0, false, 0 };
	struct config *cfg;
	uint32_t n, i;
	uint8_t secrets;

	*out = NULL;
	if (get_u32(&r) != IMAGE_MAGIC || get_u32(&r) != IMAGE_VERSION)
		return -1;
	*gen = get_u64(&r);
	if ((secrets = get_u8(&r)) > 1)
		return -1;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return -1;
	get_globals(&r, cfg);
	get_files(&r, cfg);
	n = get_u32(&r);
	if (r.err || n == 0 || n > CONFIG_MAX_LISTENERS ||
	    n > (r.len - r.off) / LISTENER_MIN)
		goto fail;
	if ((cfg->listeners = calloc(n, sizeof(*cfg->listeners))) == NULL)
		goto fail;
	cfg->nlisteners = n;
	for (i = 0; i < n && !r.err; i++)
		get_listener(&r, &cfg->listeners[i], secrets == 1);
	for (i = 0; i < n && !r.err; i++)
		get_listener_proxy(&r, &cfg->listeners[i]);
	if (get_u32(&r) != IMAGE_MAGIC || r.err || r.off != r.len)
		goto fail;
	*out = cfg;
	return 0;
fail:
	config_free(cfg);
	return -1;
}
