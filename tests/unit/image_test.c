/*
 * image_test.c - the flat config image: round trips both ways, and a
 * decoder that trusts nothing: every truncation, every flipped byte,
 * every field out of range, counts that promise more than the buffer
 * holds (without allocating for them), magic, version, trailing bytes.
 *
 * Configurations come from config_parse_buffer in pure mode (IP-literal
 * upstreams are resolved, nothing is read), with PEM blobs filled in by
 * hand.  Hostile images come from a small writer that follows the layout
 * in image.c field by field.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "image.h"
#include "shm.h"
#include "util.h"

/*
 * Allocation sizes, where ASan lets us watch them: a hostile count must
 * not make the decoder allocate for it.
 */
#if UTIL_ASAN
int __sanitizer_install_malloc_and_free_hooks(
    void (*)(const volatile void *, size_t), void (*)(const volatile void *));

static size_t	biggest_alloc;

static void
on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	if (n > biggest_alloc)
		biggest_alloc = n;
}

static void
on_free(const volatile void *p)
{
	(void)p;
}
#endif

static int
setup_hooks(void **state)
{
	(void)state;
#if UTIL_ASAN
	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
#endif
	return 0;
}

/*
 * Decoding, always from an exact-size heap copy so that ASan sees any
 * read past the end.  Returns the decoder's result; *biggest (if ASan
 * can tell) is the largest single allocation it made.
 */
static int
decode(const unsigned char *img, size_t len, struct config **cfg,
    uint64_t *gen, size_t *biggest)
{
	unsigned char	*copy = malloc(len > 0 ? len : 1);
	int		 rc;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, img, len);
	*cfg = (struct config *)&rc;	/* must be overwritten */
#if UTIL_ASAN
	biggest_alloc = 0;
#endif
	rc = image_decode(copy, len, cfg, gen);
#if UTIL_ASAN
	if (biggest != NULL)
		*biggest = biggest_alloc;
#else
	if (biggest != NULL)
		*biggest = 0;
#endif
	free(copy);
	assert_true(rc == 0 || rc == -1);
	if (rc == -1)
		assert_null(*cfg);
	else
		assert_non_null(*cfg);
	return rc;
}

static void
expect_decode_fails(const unsigned char *img, size_t len, const char *what)
{
	struct config	*cfg;
	uint64_t	 gen;
	size_t		 biggest;

	if (decode(img, len, &cfg, &gen, &biggest) != -1) {
		config_free(cfg);
		fail_msg("decoded a bad image: %s", what);
	}
	/* Nothing in proportion to a count or length it was lied to. */
	if (biggest > 16 * len + 4096)
		fail_msg("%s: allocated %zu bytes for a %zu-byte image", what,
		    biggest, len);
}

/*
 * Configurations.
 */

static void
blob_set(struct config_blob *b, const char *s)
{
	b->len = strlen(s);
	b->data = (unsigned char *)strdup(s);
	assert_non_null(b->data);
}

static char *
xstrdup(const char *s)
{
	char	*d = strdup(s);

	assert_non_null(d);
	return d;
}

/*
 * What the master adds to an ACME listener: a certificate for its first
 * domain, and one challenge of each kind.
 */
static void
fill_acme_state(struct config_listener *l)
{
	struct config_challenge	*c;
	size_t			 i;

	if (l->acme.ca_file != NULL)
		blob_set(&l->acme.ca, "-----BEGIN CERTIFICATE-----\nca\n"
		    "-----END CERTIFICATE-----\n");
	l->acme_certs = calloc(1, sizeof(*l->acme_certs));
	assert_non_null(l->acme_certs);
	l->nacme_certs = 1;
	l->acme_certs[0].name = xstrdup(l->acme.domains[0]);
	blob_set(&l->acme_certs[0].cert, "-----BEGIN CERTIFICATE-----\n"
	    "issued\n-----END CERTIFICATE-----\n");
	blob_set(&l->acme_certs[0].key, "-----BEGIN PRIVATE KEY-----\n"
	    "acmesecret\n-----END PRIVATE KEY-----\n");
	c = l->challenges = calloc(2, sizeof(*l->challenges));
	assert_non_null(c);
	l->nchallenges = 2;
	c[0].type = CONFIG_ACME_HTTP_01;
	c[0].name = xstrdup(l->acme.domains[0]);
	c[0].token = xstrdup("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0");
	c[0].keyauth = xstrdup("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0."
	    "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI");
	c[1].type = CONFIG_ACME_TLS_ALPN_01;
	c[1].name = xstrdup(l->acme.domains[l->acme.ndomains - 1]);
	for (i = 0; i < sizeof(c[1].digest); i++)
		c[1].digest[i] = (unsigned char)(0xa0 + i);
}

/* What config_load would have read: PEM bytes for every cert/key path. */
static void
fill_blobs(struct config *cfg)
{
	char	text[64];
	size_t	i, j;

	for (i = 0; i < cfg->nfiles; i++) {
		snprintf(text, sizeof(text), "FILE %zu (%s)", i,
		    cfg->files[i].path);
		blob_set(&cfg->files[i].data, text);
	}
	for (i = 0; i < cfg->nlisteners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		if (l->tls_mode == CONFIG_TLS_ACME)
			fill_acme_state(l);
		else {
			blob_set(&l->tls.cert, "-----BEGIN CERTIFICATE-----\n"
			    "listener\n-----END CERTIFICATE-----\n");
			blob_set(&l->tls.key, "-----BEGIN PRIVATE KEY-----\n"
			    "secret\n-----END PRIVATE KEY-----\n");
		}
		for (j = 0; j < l->nsites; j++) {
			if (l->sites[j].tls.cert_path == NULL)
				continue;
			blob_set(&l->sites[j].tls.cert, l->sites[j].host);
			/* Binary, with a NUL inside, terminated as read. */
			l->sites[j].tls.key.data = malloc(5);
			assert_non_null(l->sites[j].tls.key.data);
			memcpy(l->sites[j].tls.key.data, "\x01\x02\x00\xff", 5);
			l->sites[j].tls.key.len = 4;
		}
	}
}

static struct config *
make_config(const char *text)
{
	const struct config_opts opts = { .pure = true,
	    .allow_wildcard_bind = true };
	struct config_errors	 e = { 0 };
	struct config		*cfg;
	size_t			 i;

	if (config_parse_buffer("image.conf", text, strlen(text), &opts, &cfg,
	    &e) != 0) {
		for (i = 0; i < e.n; i++)
			print_message("  %s\n", e.msgs[i]);
		config_errors_free(&e);
		fail_msg("test configuration refused");
	}
	config_errors_free(&e);		/* warnings (upstream-verify) */
	fill_blobs(cfg);
	return cfg;
}

static const char rich_config[] =
    "workers = 7\n"
    "max-connections = 1000000\n"
    "shutdown-timeout = 3600\n"
    "health-check-port = 0\n"
    "logging { level = \"debug\" format = \"json\" }\n"
    "rate-limit { requests-per-second = 0.125 burst = 1 table-size = 1024 }\n"
    "body { limit-bytes = 1125899906842624 }\n"
    "http { max-request-line = 256 max-header-size = 65536 max-headers = 128 "
    "handshake-timeout = 300 header-timeout = 1 idle-timeout = 3600 "
    "client-timeout = 1 tunnel-idle-timeout = 86400 }\n"
    "listener {\n"
    "  bind = \"192.0.2.10\"\n"
    "  https-port = 65535\n"
    "  http-port = 0\n"
    "  proxy-protocol = true\n"
    "  trusted-proxies = { \"10.0.0.0/8\", \"2001:db8::/32\", \"0.0.0.0/0\","
    " \"::/0\", \"192.0.2.1\" }\n"
    "  real-ip-header = \"X-Forwarded-For\"\n"
    "  tls { cert = \"/c\" key = \"/k\" }\n"
    "  site \"www.example.com\" { upstream = \"127.0.0.1:3000\"\n"
    "    deny = { \"10.0.0.0/8\", \"2001:db8::/32\" }\n"
    "    allow = { \"10.1.0.0/16\", \"2001:db8:1::1\" }\n"
    "    response-header = { \"Strict-Transport-Security: max-age=1\", "
    "\"X-A:b c\" }\n"
    "    hide-response-header = { \"Server\" }\n"
    "    request-header = { \"X-Env: prod\" }\n"
    "    path \"/static/\" { upstream = \"127.0.0.1:3001\"\n"
    "      allow = { \"0.0.0.0/0\" } response-header = { } }\n"
    "    path \"/api\" { upstream = \"[2001:db8::2]:9\" "
    "replace-path = \"/v2;x/%2F/\" connect-timeout = 3600 "
    "request-timeout = 86400 upstream-keepalive = 1024 "
    "upstream-keepalive-timeout = 3600 upstream-proxy-protocol = \"v1\" }\n"
    "    path \"/\" { upstream = \"127.0.0.1:3002\" replace-path = \"/\" }\n"
    "    path \"/api/%C3%A9/\" { upstream = \"127.0.0.1:3003\" } }\n"
    "  site \"*.apps.example.com\" { upstream = \"[2001:db8::1]:8080\" "
    "connect-timeout = 3600 request-timeout = 86400 "
    "upstream-keepalive = 1024 upstream-keepalive-timeout = 3600 }\n"
    "  site \"own.example\" { upstream = \"10.1.2.3:1\" cert = \"/s\" "
    "key = \"/t\" connect-timeout = 1 request-timeout = 1 "
    "upstream-keepalive = 0 upstream-keepalive-timeout = 1 "
    "rate-limit { requests-per-second = 0.5 burst = 7 } }\n"
    "  site \"tls.example\" { upstream = \"10.9.9.9:8443\"\n"
    "    upstream-scheme = \"https\" upstream-ca-file = \"/ca.pem\"\n"
    "    upstream-server-name = \"app.internal\"\n"
    "    upstream-client-cert = \"/client.pem\" "
    "upstream-client-key = \"/client.key\"\n"
    "    path \"/v/\" { upstream = \"10.0.0.5:443\" "
    "upstream-verify = false }\n"
    "    path \"/s/\" { upstream = \"[2001:db8::5]:443\" "
    "upstream-ca-file = \"/ca.pem\" upstream-client-cert = \"/c2.pem\" "
    "upstream-client-key = \"/client.key\" }\n"
    "    path \"/h/\" { upstream = \"127.0.0.1:80\" "
    "upstream-scheme = \"http\" } }\n"
    "  site \"sys.example\" { upstream = \"192.0.2.1:443\" "
    "upstream-scheme = \"https\" upstream-proxy-protocol = \"v2\" }\n"
    "  site \"mtls.example\" { upstream = \"192.0.2.2:80\" "
    "client-ca-file = \"/ca.pem\" client-auth = \"required\" }\n"
    "  site \"mtls2.example\" { upstream = \"192.0.2.3:80\" "
    "client-ca-file = \"/clients.pem\" client-auth = \"optional\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"[::]\"\n"
    "  trusted-proxies = { \"::1\" }\n"
    "  real-ip-header = \"X-Real-IP\"\n"
    "  https-port = 1\n"
    "  http-port = 2\n"
    "  redirect-port = 443\n"
    "  tls { cert = \"/c6\" key = \"/k6\" }\n"
    "  site \"v6.example\" { upstream = \"[::1]:65535\" }\n"
    "}\n";

#define EAB_KEY	"c2VjcmV0LWhtYWMta2V5"

/* ACME listeners with every option, with the defaults, and a manual one. */
static const char acme_config[] =
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  tls { mode = \"acme\" acme-domains = { \"a.example\", "
    "\"x.w.example\" } acme-directory = \"https://ca.test:14000/dir\" "
    "acme-contact = \"mailto:admin@example.com\" "
    "acme-challenge = \"http-01\" acme-cache-dir = \"/var/lib/p acme\" "
    "acme-ca-file = \"/etc/p/ca.pem\" acme-renew-days = 365 "
    "acme-eab-kid = \"kid-1\" acme-eab-hmac-key = \"" EAB_KEY "\" }\n"
    "  site \"a.example\" { upstream = \"127.0.0.1:1\" }\n"
    "  site \"*.w.example\" { upstream = \"127.0.0.1:2\" }\n"
    "  site \"own.example\" { upstream = \"127.0.0.1:3\" cert = \"/s\" "
    "key = \"/t\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"127.0.0.2\"\n"
    "  tls { cert = \"/c\" key = \"/k\" }\n"
    "  site \"m.example\" { upstream = \"127.0.0.1:4\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"::1\"\n"
    "  http-port = 0\n"
    "  tls { mode = \"acme\" }\n"
    "  site \"d.example\" { upstream = \"127.0.0.1:5\" }\n"
    "  site \"e.example\" { upstream = \"127.0.0.1:6\" }\n"
    "}\n";

static const char small_config[] =
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  tls { cert = \"/c\" key = \"/k\" }\n"
    "  site \"a.example\" { upstream = \"127.0.0.1:8080\" }\n"
    "}\n";

static void
assert_blob_equal(const struct config_blob *a, const struct config_blob *b)
{
	assert_int_equal(a->len, b->len);
	if (a->len > 0)
		assert_memory_equal(a->data, b->data, a->len);
	/* The decoder always terminates: GnuTLS reads PEM as a string. */
	if (b->data != NULL)
		assert_int_equal(b->data[b->len], '\0');
}

static void
assert_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_backend_equal(const struct config_backend *a,
    const struct config_backend *b)
{
	size_t i;

	assert_int_equal(a->nups, b->nups);
	for (i = 0; i < a->nups; i++) {
		assert_string_equal(a->ups[i].name, b->ups[i].name);
		assert_string_equal(a->ups[i].host, b->ups[i].host);
		assert_int_equal(a->ups[i].addrlen, b->ups[i].addrlen);
		assert_memory_equal(&a->ups[i].addr, &b->ups[i].addr,
		    a->ups[i].addrlen);
		assert_int_equal(a->ups[i].slot, b->ups[i].slot);
	}
	assert_int_equal(a->balance, b->balance);
	assert_int_equal(a->max_fails, b->max_fails);
	assert_int_equal(a->fail_timeout, b->fail_timeout);
	assert_int_equal(a->health.on, b->health.on);
	assert_str_equal(a->health.path, b->health.path);
	assert_int_equal(a->health.interval, b->health.interval);
	assert_int_equal(a->health.timeout, b->health.timeout);
	assert_int_equal(a->health.passes, b->health.passes);
	assert_int_equal(a->health.fails, b->health.fails);
	assert_int_equal(a->health.status_min, b->health.status_min);
	assert_int_equal(a->health.status_max, b->health.status_max);
	assert_int_equal(a->scheme, b->scheme);
	assert_str_equal(a->server_name, b->server_name);
	assert_int_equal(a->verify, b->verify);
	assert_int_equal(a->ca, b->ca);
	assert_int_equal(a->client_cert, b->client_cert);
	assert_int_equal(a->client_key, b->client_key);
	assert_int_equal(a->connect_timeout, b->connect_timeout);
	assert_int_equal(a->request_timeout, b->request_timeout);
	assert_int_equal(a->keepalive, b->keepalive);
	assert_int_equal(a->keepalive_timeout, b->keepalive_timeout);
	assert_int_equal(a->proxy_protocol, b->proxy_protocol);
}

static void
assert_fields_equal(const struct config_fields *a,
    const struct config_fields *b)
{
	size_t i;

	assert_int_equal(a->own, b->own);
	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->f[i].name.len, b->f[i].name.len);
		assert_memory_equal(a->f[i].name.p, b->f[i].name.p,
		    a->f[i].name.len);
		assert_int_equal(a->f[i].value.len, b->f[i].value.len);
		if (a->f[i].value.len > 0)
			assert_memory_equal(a->f[i].value.p, b->f[i].value.p,
			    a->f[i].value.len);
	}
}

/* allow, deny and the header options: what a request would get. */
static void
assert_edge_equal(const struct config_access *aa,
    const struct config_edits *ea, const struct config_access *ab,
    const struct config_edits *eb)
{
	assert_int_equal(aa->own, ab->own);
	assert_int_equal(aa->nranges, ab->nranges);
	assert_int_equal(aa->nfirst, ab->nfirst);
	assert_int_equal(aa->first_allow, ab->first_allow);
	assert_int_equal(aa->whitelist, ab->whitelist);
	if (aa->nranges > 0)
		assert_memory_equal(aa->ranges, ab->ranges,
		    aa->nranges * sizeof(*aa->ranges));
	assert_fields_equal(&ea->resp_add, &eb->resp_add);
	assert_fields_equal(&ea->resp_hide, &eb->resp_hide);
	assert_fields_equal(&ea->req_add, &eb->req_add);
	assert_int_equal(ea->edit_resp.nadd, eb->edit_resp.nadd);
	assert_int_equal(ea->edit_resp.nhide, eb->edit_resp.nhide);
	assert_int_equal(ea->edit_req.nadd, eb->edit_req.nadd);
}

static void
assert_paths_equal(const struct config_site *a, const struct config_site *b)
{
	size_t i;

	assert_int_equal(a->npaths, b->npaths);
	for (i = 0; i < a->npaths; i++) {
		assert_string_equal(a->paths[i].prefix, b->paths[i].prefix);
		assert_int_equal(a->paths[i].prefix_len,
		    b->paths[i].prefix_len);
		if (a->paths[i].replace == NULL)
			assert_null(b->paths[i].replace);
		else
			assert_string_equal(a->paths[i].replace,
			    b->paths[i].replace);
		assert_int_equal(a->paths[i].replace_len,
		    b->paths[i].replace_len);
		assert_backend_equal(&a->paths[i].be, &b->paths[i].be);
		assert_edge_equal(&a->paths[i].access, &a->paths[i].edits,
		    &b->paths[i].access, &b->paths[i].edits);
	}
}

/* A listener's ACME part; the EAB key only if the image has secrets. */
static void
assert_acme_equal(const struct config_listener *la,
    const struct config_listener *lb, bool secrets)
{
	const struct config_acme	*a = &la->acme, *b = &lb->acme;
	size_t				 i;

	assert_int_equal(la->tls_mode, lb->tls_mode);
	assert_int_equal(a->ndomains, b->ndomains);
	for (i = 0; i < a->ndomains; i++)
		assert_string_equal(a->domains[i], b->domains[i]);
	assert_int_equal(a->domains_set, b->domains_set);
	assert_str_equal(a->directory, b->directory);
	assert_str_equal(a->contact, b->contact);
	assert_int_equal(a->challenge, b->challenge);
	assert_str_equal(a->cache_dir, b->cache_dir);
	assert_str_equal(a->ca_file, b->ca_file);
	assert_blob_equal(&a->ca, &b->ca);
	assert_int_equal(a->renew_days, b->renew_days);
	assert_str_equal(a->eab_kid, b->eab_kid);
	assert_str_equal(secrets ? a->eab_hmac_key : NULL, b->eab_hmac_key);
	assert_int_equal(la->nacme_certs, lb->nacme_certs);
	for (i = 0; i < la->nacme_certs; i++) {
		assert_string_equal(la->acme_certs[i].name,
		    lb->acme_certs[i].name);
		assert_blob_equal(&la->acme_certs[i].cert,
		    &lb->acme_certs[i].cert);
		/* The key is the signer's: never in an image. */
		assert_int_equal(lb->acme_certs[i].key.len, 0);
	}
	assert_int_equal(la->nchallenges, lb->nchallenges);
	for (i = 0; i < la->nchallenges; i++) {
		const struct config_challenge *ca = &la->challenges[i];
		const struct config_challenge *cb = &lb->challenges[i];

		assert_int_equal(ca->type, cb->type);
		assert_string_equal(ca->name, cb->name);
		assert_str_equal(ca->token, cb->token);
		assert_str_equal(ca->keyauth, cb->keyauth);
		assert_memory_equal(ca->digest, cb->digest, sizeof(ca->digest));
	}
}

/* Every field the image carries, compared. */
static void
assert_image_fields_equal(const struct config *a, const struct config *b,
    bool secrets)
{
	size_t	i, j;

	assert_int_equal(a->workers, b->workers);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->shutdown_timeout, b->shutdown_timeout);
	assert_int_equal(a->health_port, b->health_port);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_format, b->log_format);
	assert_int_equal(a->log_access, b->log_access);
	assert_memory_equal(&a->rate_rps, &b->rate_rps, sizeof(double));
	assert_int_equal(a->rate_burst, b->rate_burst);
	assert_int_equal(a->rate_table_size, b->rate_table_size);
	assert_true(a->body_limit == b->body_limit);
	assert_int_equal(a->http.max_request_line, b->http.max_request_line);
	assert_int_equal(a->http.max_header_size, b->http.max_header_size);
	assert_int_equal(a->http.max_headers, b->http.max_headers);
	assert_int_equal(a->http.handshake_timeout, b->http.handshake_timeout);
	assert_int_equal(a->http.header_timeout, b->http.header_timeout);
	assert_int_equal(a->http.idle_timeout, b->http.idle_timeout);
	assert_int_equal(a->http.client_timeout, b->http.client_timeout);
	assert_int_equal(a->http.tunnel_timeout, b->http.tunnel_timeout);
	assert_int_equal(a->http.h2, b->http.h2);
	assert_int_equal(a->http.h2_max_streams, b->http.h2_max_streams);
	/* The files, without their paths (a worker opens none). */
	assert_int_equal(a->nfiles, b->nfiles);
	for (i = 0; i < a->nfiles; i++) {
		assert_int_equal(a->files[i].secret, b->files[i].secret);
		if (a->files[i].secret)
			assert_int_equal(b->files[i].data.len, 0);
		else
			assert_blob_equal(&a->files[i].data, &b->files[i].data);
		assert_null(b->files[i].path);
	}
	assert_int_equal(a->nlisteners, b->nlisteners);
	for (i = 0; i < a->nlisteners; i++) {
		const struct config_listener *la = &a->listeners[i];
		const struct config_listener *lb = &b->listeners[i];

		assert_int_equal(la->family, lb->family);
		assert_memory_equal(&la->addr, &lb->addr, la->family == AF_INET
		    ? 4 : 16);
		assert_int_equal(la->https_port, lb->https_port);
		assert_int_equal(la->http_port, lb->http_port);
		assert_int_equal(la->redirect_port, lb->redirect_port);
		assert_int_equal(la->max_conns_per_client,
		    lb->max_conns_per_client);
		assert_string_equal(la->bind, lb->bind);
		assert_blob_equal(&la->tls.cert, &lb->tls.cert);
		assert_int_equal(lb->tls.key.len, 0);
		assert_acme_equal(la, lb, secrets);
		assert_int_equal(la->proxy_protocol, lb->proxy_protocol);
		assert_int_equal(la->ntrusted, lb->ntrusted);
		if (la->ntrusted > 0)
			assert_memory_equal(la->trusted, lb->trusted,
			    la->ntrusted * sizeof(*la->trusted));
		if (la->real_ip_header == NULL)
			assert_null(lb->real_ip_header);
		else
			assert_string_equal(la->real_ip_header,
			    lb->real_ip_header);
		assert_int_equal(la->nsites, lb->nsites);
		for (j = 0; j < la->nsites; j++) {
			const struct config_site *sa = &la->sites[j];
			const struct config_site *sb = &lb->sites[j];

			assert_string_equal(sa->host, sb->host);
			assert_int_equal(sa->wildcard, sb->wildcard);
			assert_int_equal(sa->metrics_slot, sb->metrics_slot);
			assert_backend_equal(&sa->be, &sb->be);
			assert_paths_equal(sa, sb);
			assert_blob_equal(&sa->tls.cert, &sb->tls.cert);
			assert_int_equal(sb->tls.key.len, 0);
			assert_int_equal(sa->rate_own, sb->rate_own);
			assert_memory_equal(&sa->rate_rps, &sb->rate_rps,
			    sizeof(double));
			assert_int_equal(sa->rate_burst, sb->rate_burst);
			assert_int_equal(sa->client_auth, sb->client_auth);
			assert_int_equal(sa->client_ca, sb->client_ca);
			assert_edge_equal(&sa->access, &sa->edits,
			    &sb->access, &sb->edits);
		}
	}
}

/* image_encode, or with secrets image_encode_acme. */
static void
encode_as(const struct config *cfg, uint64_t gen, bool secrets,
    unsigned char **img, size_t *len)
{
	*img = NULL;
	*len = 0;
	if (secrets)
		assert_int_equal(image_encode_acme(cfg, gen, img, len), 0);
	else
		assert_int_equal(image_encode(cfg, gen, img, len), 0);
	assert_non_null(*img);
	assert_true(*len > 0);
	assert_int_equal(image_is_acme(*img, *len), secrets ? 1 : 0);
}

static void
encode(const struct config *cfg, uint64_t gen, unsigned char **img,
    size_t *len)
{
	encode_as(cfg, gen, false, img, len);
}

static void
round_trip(const char *text, uint64_t gen, bool secrets)
{
	struct config	*cfg = make_config(text), *dec;
	unsigned char	*img, *again;
	size_t		 len, len2;
	uint64_t	 got;

	encode_as(cfg, gen, secrets, &img, &len);
	assert_int_equal(decode(img, len, &dec, &got, NULL), 0);
	assert_true(got == gen);
	assert_image_fields_equal(cfg, dec, secrets);
	encode_as(dec, gen, secrets, &again, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, img, len);
	free(again);
	free(img);
	config_free(dec);
	config_free(cfg);
}

static void
test_round_trip(void **state)
{
	(void)state;
	round_trip(small_config, 1, false);
	round_trip(rich_config, 0x0123456789abcdefULL, false);
	round_trip(rich_config, UINT64_MAX, false);
	round_trip(rich_config, 0, false);
	round_trip(small_config, 1, true);
	round_trip(rich_config, 2, true);
	round_trip(acme_config, 3, false);
	round_trip(acme_config, 4, true);
}

/*
 * The EAB key goes only into the ACME process's image; its key id, the
 * rest of ACME and what the master adds go into both.
 */
static void
test_eab_key_only_for_acme_process(void **state)
{
	struct config		*cfg = make_config(acme_config), *dec;
	struct config_listener	*l;
	unsigned char		*img, *aimg;
	size_t			 len, alen;
	uint64_t		 gen;

	(void)state;
	encode(cfg, 8, &img, &len);
	encode_as(cfg, 8, true, &aimg, &alen);
	assert_null(memmem(img, len, EAB_KEY, strlen(EAB_KEY)));
	assert_non_null(memmem(aimg, alen, EAB_KEY, strlen(EAB_KEY)));
	assert_non_null(memmem(img, len, "kid-1", 5));
	assert_null(memmem(img, len, "acmesecret", 10));
	/* A key field for each ACME listener, the second one empty. */
	assert_int_equal(alen, len + 4 + strlen(EAB_KEY) + 4);

	assert_int_equal(decode(img, len, &dec, &gen, NULL), 0);
	l = &dec->listeners[0];
	assert_int_equal(l->tls_mode, CONFIG_TLS_ACME);
	assert_string_equal(l->acme.eab_kid, "kid-1");
	assert_null(l->acme.eab_hmac_key);
	assert_string_equal(l->acme.cache_dir, "/var/lib/p acme");
	assert_int_equal(l->nacme_certs, 1);
	assert_int_equal(l->nchallenges, 2);
	assert_int_equal(l->tls.cert.len, 0);
	config_free(dec);

	assert_int_equal(decode(aimg, alen, &dec, &gen, NULL), 0);
	assert_string_equal(dec->listeners[0].acme.eab_hmac_key, EAB_KEY);
	assert_null(dec->listeners[2].acme.eab_hmac_key);
	config_free(dec);
	/* Not an image: too short, bad magic, other version. */
	assert_int_equal(image_is_acme(img, 16), -1);
	img[0] ^= 1;
	assert_int_equal(image_is_acme(img, len), -1);
	img[0] ^= 1;
	img[4] ^= 1;
	assert_int_equal(image_is_acme(img, len), -1);
	free(aimg);
	free(img);
	config_free(cfg);
}

/* A manual listener carries nothing of what the master adds for ACME. */
static void
test_manual_listener_has_no_acme_state(void **state)
{
	struct config	*cfg = make_config(small_config), *dec;
	struct config_listener *l = &cfg->listeners[0];
	unsigned char	*img;
	size_t		 len;
	uint64_t	 gen;

	(void)state;
	l->acme.domains = calloc(1, sizeof(char *));
	assert_non_null(l->acme.domains);
	l->acme.domains[0] = xstrdup("a.example");
	l->acme.ndomains = 1;
	fill_acme_state(l);
	encode(cfg, 1, &img, &len);
	assert_null(memmem(img, len, "acmesecret", 10));
	assert_int_equal(decode(img, len, &dec, &gen, NULL), 0);
	assert_int_equal(dec->listeners[0].nacme_certs, 0);
	assert_int_equal(dec->listeners[0].nchallenges, 0);
	assert_int_equal(dec->listeners[0].acme.ndomains, 0);
	free(img);
	config_free(dec);
	config_free(cfg);
}

/* A worker gets no path: it never opens a config or key file. */
static void
test_decoded_has_no_paths(void **state)
{
	struct config	*cfg = make_config(rich_config), *dec;
	unsigned char	*img;
	size_t		 len, i, j;
	uint64_t	 gen;

	(void)state;
	encode(cfg, 5, &img, &len);
	assert_int_equal(decode(img, len, &dec, &gen, NULL), 0);
	assert_null(dec->path);
	assert_null(dec->user);
	assert_null(dec->admin_socket);
	assert_null(dec->log_file);
	for (i = 0; i < dec->nlisteners; i++) {
		assert_null(dec->listeners[i].tls.cert_path);
		assert_null(dec->listeners[i].tls.key_path);
		for (j = 0; j < dec->listeners[i].nsites; j++) {
			assert_null(dec->listeners[i].sites[j].tls.cert_path);
			assert_null(dec->listeners[i].sites[j].tls.key_path);
		}
	}
	/* ... nor any private key (issue 19: the signer has them). */
	assert_null(memmem(img, len, "PRIVATE KEY", 11));
	assert_null(memmem(img, len, "client.key)", 11));
	assert_null(memmem(img, len, "\x01\x02\x00\xff", 4));
	assert_null(memmem(img, len, "/k", 2));
	assert_null(memmem(img, len, "image.conf", 10));
	free(img);
	config_free(dec);
	config_free(cfg);
}

static void
test_frame(void **state)
{
	struct config	*cfg = make_config(small_config);
	unsigned char	*img;
	uint32_t	 v32;
	uint64_t	 v64;
	size_t		 len;

	(void)state;
	encode(cfg, 42, &img, &len);
	memcpy(&v32, img, 4);
	assert_int_equal(v32, IMAGE_MAGIC);
	memcpy(&v32, img + 4, 4);
	assert_int_equal(v32, IMAGE_VERSION);
	memcpy(&v64, img + 8, 8);
	assert_true(v64 == 42);
	memcpy(&v32, img + len - 4, 4);
	assert_int_equal(v32, IMAGE_MAGIC);
	free(img);
	config_free(cfg);
}

/*
 * Whole-image hostility.
 */

static void
every_truncation(const char *text, bool secrets)
{
	struct config	*cfg = make_config(text);
	unsigned char	*img;
	size_t		 len, n;
	char		 what[64];

	encode_as(cfg, 9, secrets, &img, &len);
	for (n = 0; n < len; n++) {
		snprintf(what, sizeof(what), "cut to %zu of %zu bytes", n, len);
		expect_decode_fails(img, n, what);
	}
	free(img);
	config_free(cfg);
}

static void
test_every_truncation(void **state)
{
	(void)state;
	every_truncation(rich_config, false);
	every_truncation(acme_config, false);
	every_truncation(acme_config, true);
}

static void
test_trailing_garbage(void **state)
{
	struct config	*cfg = make_config(small_config);
	unsigned char	*img, *more;
	size_t		 len, extra;
	uint32_t	 magic = IMAGE_MAGIC;

	(void)state;
	encode(cfg, 1, &img, &len);
	more = malloc(len + 64);
	assert_non_null(more);
	memcpy(more, img, len);
	memset(more + len, 0, 64);
	for (extra = 1; extra <= 64; extra *= 2)
		expect_decode_fails(more, len + extra, "trailing zeros");
	memcpy(more + len, &magic, 4);
	expect_decode_fails(more, len + 4, "a second end magic");
	memcpy(more + len, img, len < 64 ? len : 64);
	expect_decode_fails(more, len + 64, "two images back to back");
	free(more);
	free(img);
	config_free(cfg);
}

static void
test_magic_and_version(void **state)
{
	struct config	*cfg = make_config(small_config);
	unsigned char	*img, *bad;
	uint32_t	 v;
	size_t		 len, i;
	static const uint32_t versions[] = { 0, IMAGE_VERSION - 1,
	    IMAGE_VERSION + 1, UINT32_MAX, IMAGE_MAGIC };

	(void)state;
	encode(cfg, 1, &img, &len);
	bad = malloc(len);
	assert_non_null(bad);
	for (i = 0; i < 4; i++) {
		memcpy(bad, img, len);
		bad[i] ^= 0x20;
		expect_decode_fails(bad, len, "start magic");
		memcpy(bad, img, len);
		bad[len - 4 + i] ^= 0x01;
		expect_decode_fails(bad, len, "end magic");
	}
	for (i = 0; i < nitems(versions); i++) {
		memcpy(bad, img, len);
		v = versions[i];
		memcpy(bad + 4, &v, 4);
		expect_decode_fails(bad, len, "version");
	}
	/* Byte-swapped: an image from a machine of the other endianness. */
	memcpy(bad, img, len);
	v = __builtin_bswap32(IMAGE_MAGIC);
	memcpy(bad, &v, 4);
	expect_decode_fails(bad, len, "swapped magic");
	expect_decode_fails((const unsigned char *)"PCIM", 4, "magic only");
	free(bad);
	free(img);
	config_free(cfg);
}

static void
check_host_sane(const char *h)
{
	assert_non_null(h);
	assert_int_equal(config_check_hostname(h, strlen(h), false), 0);
	assert_true(h[0] != '*');
}

/* A backend, decoded from anything, in a config with nfiles files. */
static void
check_backend_sane(const struct config_backend *be, size_t nfiles)
{
	const struct sockaddr *sa;
	size_t i;

	assert_true(be->nups >= 1 && be->nups <= CONFIG_MAX_UPSTREAMS);
	for (i = 0; i < be->nups; i++) {
		sa = (const struct sockaddr *)&be->ups[i].addr;
		assert_non_null(be->ups[i].name);
		assert_non_null(be->ups[i].host);
		assert_true(sa->sa_family == AF_INET ||
		    sa->sa_family == AF_INET6);
		assert_true(be->ups[i].addrlen == (sa->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6)));
		assert_true(be->ups[i].slot < CONFIG_MAX_UPSTREAM_SLOTS);
	}
	assert_true(be->balance <= CONFIG_LB_STICKY);
	assert_true(!be->health.on ||
	    be->health.timeout <= be->health.interval);
	assert_true(config_backend_tls_ok(be, nfiles));
	assert_true(be->connect_timeout >= 1 && be->connect_timeout <= 3600);
	assert_true(be->request_timeout >= 1 &&
	    be->request_timeout <= 86400);
	assert_true(be->keepalive <= CONFIG_KEEPALIVE_MAX);
	assert_true(be->keepalive_timeout >= 1 &&
	    be->keepalive_timeout <= 3600);
}

/* A site's path blocks, decoded from anything: longest prefix first. */
static void
check_paths_sane(const struct config_site *s, size_t nfiles)
{
	size_t i;

	assert_true(s->npaths <= CONFIG_MAX_PATHS);
	for (i = 0; i < s->npaths; i++) {
		const struct config_path *p = &s->paths[i];

		assert_int_equal(strlen(p->prefix), p->prefix_len);
		assert_true(config_path_ok(p->prefix, p->prefix_len, true));
		assert_true(p->replace == NULL ||
		    config_path_ok(p->replace, p->replace_len, false));
		assert_true(i == 0 ||
		    p->prefix_len <= s->paths[i - 1].prefix_len);
		check_backend_sane(&p->be, nfiles);
	}
}

/* A listener's certificate and ACME part, decoded from anything. */
static void
check_acme_sane(const struct config_listener *l)
{
	const struct config_acme	*a = &l->acme;
	size_t				 i;

	assert_true(l->tls_mode == CONFIG_TLS_MANUAL ||
	    l->tls_mode == CONFIG_TLS_ACME);
	if (l->tls_mode == CONFIG_TLS_MANUAL) {
		assert_true(l->tls.cert.len > 0 && l->tls.key.len == 0);
		assert_int_equal(a->ndomains, 0);
		assert_null(a->directory);
		assert_int_equal(l->nacme_certs, 0);
		assert_int_equal(l->nchallenges, 0);
		return;
	}
	assert_true(l->tls.cert.len == 0 && l->tls.key.len == 0);
	assert_true(a->ndomains >= 1 && a->ndomains <= CONFIG_MAX_SITES);
	for (i = 0; i < a->ndomains; i++)
		check_host_sane(a->domains[i]);
	assert_true(config_acme_url_ok(a->directory));
	assert_true(a->contact == NULL || config_acme_contact_ok(a->contact));
	assert_true(a->challenge <= CONFIG_ACME_HTTP_01);
	assert_true(a->cache_dir != NULL && a->cache_dir[0] == '/');
	assert_true(a->renew_days <= 365);
	assert_true((a->eab_hmac_key == NULL) || (a->eab_kid != NULL &&
	    config_base64url_ok(a->eab_hmac_key, CONFIG_ACME_EAB_MAX)));
	assert_true(l->nacme_certs <= CONFIG_MAX_SITES);
	for (i = 0; i < l->nacme_certs; i++) {
		check_host_sane(l->acme_certs[i].name);
		assert_true(l->acme_certs[i].cert.len > 0 &&
		    l->acme_certs[i].key.len == 0);
	}
	assert_true(l->nchallenges <= 2 * CONFIG_MAX_SITES);
	for (i = 0; i < l->nchallenges; i++) {
		const struct config_challenge *c = &l->challenges[i];

		assert_true(c->type <= CONFIG_ACME_HTTP_01);
		check_host_sane(c->name);
		if (c->type == CONFIG_ACME_HTTP_01)
			assert_true(c->token != NULL && c->keyauth != NULL);
	}
}

/* What every decoded config must satisfy, whatever bytes it came from. */
static void
check_decoded_sane(const struct config *c)
{
	size_t	i, j;

	assert_true(c->workers <= CONFIG_MAX_WORKERS);
	assert_true(c->nfiles <= CONFIG_MAX_FILES);
	for (i = 0; i < c->nfiles; i++)
		assert_true(c->files[i].data.len <= CONFIG_CA_MAX);
	assert_true(c->max_connections >= 16 && c->max_connections <= 1000000);
	assert_true(c->shutdown_timeout <= 3600);
	assert_true(c->log_level <= LOG_LEVEL_DEBUG);
	assert_true(c->log_format <= LOG_FORMAT_JSON);
	assert_true(isfinite(c->rate_rps) && c->rate_rps > 0 &&
	    c->rate_rps <= 1e6);
	assert_true(c->rate_burst >= 1 && c->rate_burst <= 1000000);
	assert_true(c->rate_table_size >= 1024 &&
	    c->rate_table_size <= 16777216);
	assert_true(c->body_limit <= ((uint64_t)1 << 50));
	assert_true(c->http.max_request_line >= 256 &&
	    c->http.max_request_line <= c->http.max_header_size);
	assert_true(c->http.max_header_size <= 65536);
	assert_true(c->http.max_headers >= 8 && c->http.max_headers <= 128);
	assert_true(c->http.handshake_timeout >= 1 &&
	    c->http.handshake_timeout <= 300);
	assert_true(c->http.header_timeout >= 1 &&
	    c->http.header_timeout <= 300);
	assert_true(c->http.idle_timeout >= 1 && c->http.idle_timeout <= 3600);
	assert_true(c->http.client_timeout >= 1 &&
	    c->http.client_timeout <= 3600);
	assert_true(c->http.tunnel_timeout >= 1 &&
	    c->http.tunnel_timeout <= 86400);
	assert_true(c->nlisteners >= 1 &&
	    c->nlisteners <= CONFIG_MAX_LISTENERS);
	for (i = 0; i < c->nlisteners; i++) {
		const struct config_listener *l = &c->listeners[i];

		assert_true(l->family == AF_INET || l->family == AF_INET6);
		assert_true(l->https_port != 0 &&
		    l->https_port != l->http_port);
		assert_non_null(l->bind);
		assert_true(strlen(l->bind) >= 1);
		check_acme_sane(l);
		assert_true(l->nsites >= 1 && l->nsites <= CONFIG_MAX_SITES);
		for (j = 0; j < l->nsites; j++) {
			const struct config_site *s = &l->sites[j];
			size_t hl = strlen(s->host);

			assert_true(hl >= 1 && hl <= CONFIG_HOST_MAX);
			assert_int_equal(config_check_hostname(s->host, hl,
			    s->wildcard), 0);
			assert_int_equal(s->wildcard, s->host[0] == '*');
			check_backend_sane(&s->be, c->nfiles);
			check_paths_sane(s, c->nfiles);
			assert_true(config_client_auth_ok(s, c->nfiles));
			assert_int_equal(s->tls.key.len, 0);
		}
	}
}

/*
 * Every byte flipped three ways: an error, or a sane config that encodes
 * back to the same bytes.
 */
static void
flipped_bytes(const char *text, bool secrets)
{
	static const unsigned char masks[] = { 0x01, 0x80, 0xff };
	struct config	*cfg = make_config(text), *dec;
	unsigned char	*img, *bad, *again;
	size_t		 len, len2, i, m, accepted = 0;
	uint64_t	 gen;

	encode_as(cfg, 3, secrets, &img, &len);
	bad = malloc(len);
	assert_non_null(bad);
	for (i = 0; i < len; i++) {
		for (m = 0; m < sizeof(masks); m++) {
			memcpy(bad, img, len);
			bad[i] ^= masks[m];
			if (decode(bad, len, &dec, &gen, NULL) == -1)
				continue;
			accepted++;
			check_decoded_sane(dec);
			encode_as(dec, gen, image_is_acme(bad, len) == 1,
			    &again, &len2);
			assert_int_equal(len2, len);
			assert_memory_equal(again, bad, len);
			free(again);
			config_free(dec);
		}
	}
	/* Some flips (a port, a timeout, a PEM byte) are legitimately fine. */
	assert_true(accepted > 0);
	free(bad);
	free(img);
	config_free(cfg);
}

static void
test_flipped_bytes(void **state)
{
	(void)state;
	flipped_bytes(rich_config, false);
	flipped_bytes(acme_config, false);
	flipped_bytes(acme_config, true);
}

/*
 * Field by field, with a writer that follows image.c.
 */

struct wb {
	unsigned char	 buf[8192];
	size_t		 len;
};

static void
w_put(struct wb *w, const void *p, size_t n)
{
	assert_true(w->len + n <= sizeof(w->buf));
	if (n > 0)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void w_u8(struct wb *w, uint8_t v) { w_put(w, &v, 1); }
static void w_u16(struct wb *w, uint16_t v) { w_put(w, &v, 2); }
static void w_u32(struct wb *w, uint32_t v) { w_put(w, &v, 4); }
static void w_u64(struct wb *w, uint64_t v) { w_put(w, &v, 8); }

/* A length-prefixed field; wire >= 0 lies about its length. */
struct field {
	const void	*p;
	size_t		 n;
	int64_t		 wire;
};

#define F(s)		{ (s), sizeof(s) - 1, -1 }
#define FNONE		{ NULL, 0, -1 }

static void
w_field(struct wb *w, const struct field *f)
{
	w_u32(w, f->wire >= 0 ? (uint32_t)f->wire : (uint32_t)f->n);
	w_put(w, f->p, f->n);
}

/* A backend, as written. */
struct spec_backend {
	uint32_t	 nups;		/* as written; one is present */
	struct field	 upstream, host;
	uint32_t	 alen;		/* as written */
	unsigned char	 sa[sizeof(struct sockaddr_storage) + 16];
	size_t		 sa_n;		/* bytes present */
	uint32_t	 slot;
	uint8_t		 lb;
	uint32_t	 max_fails, fail_timeout;
	uint8_t		 hc_on;		/* 1: the rest of the check follows */
	struct field	 hc_path;
	uint32_t	 hc[6];		/* interval timeout passes fails
					   status-min status-max */
	uint32_t	 ct, rt;
	uint32_t	 ka, kt;	/* upstream-keepalive(-timeout) */
	uint8_t		 pp;		/* upstream-proxy-protocol */
	uint8_t		 scheme;	/* 1 (https): the TLS part follows */
	bool		 tls_present;	/* written, whatever scheme says */
	struct field	 sname;		/* upstream-server-name */
	uint8_t		 verify;
	uint32_t	 ca, ccert, ckey;	/* file indexes */
};

/* A file upstream TLS names, as written. */
struct spec_file {
	uint8_t		 secret;
	struct field	 data;
};

/* allow, deny and the header options, as written (issue 18). */
struct spec_range {
	uint8_t		 family, bits;
	unsigned char	 addr[16];
};

struct spec_edge {
	uint8_t		 acc_own;	/* 1: the rest of the rules follow */
	uint8_t		 first;
	uint32_t	 nfirst, nranges;	/* as written */
	size_t		 ranges_n;	/* present */
	struct spec_range range[2];
	uint8_t		 own[3];	/* response, hide, request */
	uint32_t	 n[3];		/* as written */
	bool		 present[3];	/* one field is */
	struct field	 name[3], value[3];
};

/* A path block, as written. */
struct spec_path {
	struct field	 prefix, replace;
	struct spec_backend be;
	struct spec_edge edge;
};

struct spec {
	uint32_t	 magic, version;
	uint64_t	 gen;
	uint32_t	 workers, maxconn, shutdown;
	uint16_t	 health;
	uint8_t		 level, format, access;
	double		 rps;
	uint32_t	 burst;
	uint32_t	 table;		/* rate-limit table-size */
	uint64_t	 body;
	uint32_t	 hc[10];		/* config_http, in order */
	uint32_t	 nfiles;	/* as written */
	size_t		 files_n;	/* present */
	struct spec_file file[3];
	uint32_t	 nlisteners;	/* as written; one is present */
	uint8_t		 family;
	unsigned char	 addr[16];
	uint16_t	 https, http, redirect;
	uint32_t	 conncap;	/* max-connections-per-client */
	struct field	 bind, cert;	/* no key: the signer's */
	uint32_t	 nsites;	/* as written; one is present */
	struct field	 host;
	uint8_t		 wildcard;
	uint16_t	 mslot;		/* metrics-slot */
	struct spec_backend be;
	struct field	 scert;
	uint8_t		 rate_own;	/* 1: srps and sburst follow */
	double		 srps;
	uint32_t	 sburst;
	uint8_t		 cauth;		/* client-auth */
	uint32_t	 cca;		/* client-ca-file, an index */
	struct spec_edge edge;
	uint32_t	 npaths;	/* as written */
	size_t		 paths_n;	/* path blocks present */
	struct spec_path path[2];
	uint8_t		 secrets;	/* in the header */
	uint8_t		 mode;		/* tls-mode; 1: the ACME part */
	uint32_t	 ndomains;	/* as written; one is present */
	struct field	 domain;
	uint8_t		 domains_set;
	struct field	 directory, contact;
	uint8_t		 challenge;
	struct field	 cache_dir, ca_file, ca;
	uint32_t	 renew;
	struct field	 kid;
	bool		 hmac_present;	/* written */
	struct field	 hmac;
	uint32_t	 ncerts;	/* as written */
	bool		 cert_present;	/* one is */
	struct field	 cname, ccert;
	uint32_t	 nchal;		/* as written */
	bool		 chal_present;	/* one is */
	uint8_t		 ctype;
	struct field	 chname, token, keyauth;
	size_t		 digest_n;	/* bytes present */
	/* proxy-protocol, trusted-proxies (one present), real-ip-header. */
	uint8_t		 pp;
	uint32_t	 ntrusted;	/* as written */
	bool		 trusted_present;
	uint8_t		 tfamily, tbits;
	unsigned char	 taddr[16];
	struct field	 realip;
	uint32_t	 endmagic;
};

/* 127.0.0.1:port with the default timeouts and keep-alive. */
static struct spec_backend
good_backend(uint16_t port)
{
	struct spec_backend	be;
	struct sockaddr_in	sin;

	memset(&be, 0, sizeof(be));
	be.nups = 1;
	be.upstream = (struct field)F("127.0.0.1:8080");
	be.host = (struct field)F("127.0.0.1");
	be.slot = port % CONFIG_MAX_UPSTREAM_SLOTS;
	be.lb = CONFIG_LB_ROUND_ROBIN;
	be.max_fails = 1;
	be.fail_timeout = 10;
	be.hc_on = 1;
	be.hc_path = (struct field)F("/healthz");
	be.hc[0] = 5;
	be.hc[1] = 2;
	be.hc[2] = 2;
	be.hc[3] = 3;
	be.hc[4] = 200;
	be.hc[5] = 299;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memcpy(be.sa, &sin, sizeof(sin));
	be.alen = sizeof(sin);
	be.sa_n = sizeof(sin);
	be.ct = 5;
	be.rt = 60;
	be.ka = 256;
	be.kt = 60;
	return be;
}

static struct spec
good_spec(void)
{
	struct spec		s;

	memset(&s, 0, sizeof(s));
	s.magic = s.endmagic = IMAGE_MAGIC;
	s.version = IMAGE_VERSION;
	s.gen = 77;
	s.workers = 2;
	s.maxconn = 4096;
	s.shutdown = 30;
	s.health = 9900;
	s.level = LOG_LEVEL_INFO;
	s.format = LOG_FORMAT_TEXT;
	s.access = 1;
	s.rps = 10.0;
	s.burst = 20;
	s.table = 262144;
	s.body = 1000;
	s.hc[0] = 8192;		/* max-request-line */
	s.hc[1] = 16384;		/* max-header-size */
	s.hc[2] = 100;		/* max-headers */
	s.hc[3] = 10;			/* handshake-timeout */
	s.hc[4] = 20;			/* header-timeout */
	s.hc[5] = 60;			/* idle-timeout */
	s.hc[6] = 60;			/* client-timeout */
	s.hc[7] = 300;		/* tunnel-idle-timeout */
	s.hc[8] = 1;			/* http2 */
	s.hc[9] = 100;		/* http2-max-concurrent-streams */
	s.nlisteners = 1;
	s.family = AF_INET;
	s.addr[0] = 127;
	s.addr[3] = 1;
	s.https = 443;
	s.http = 80;
	s.bind = (struct field)F("127.0.0.1");
	s.cert = (struct field)F("CERT");
	s.nsites = 1;
	s.host = (struct field)F("a.example");
	s.wildcard = 0;
	s.be = good_backend(8080);
	s.scert = (struct field)FNONE;
	s.cca = CONFIG_NO_FILE;
	s.realip = (struct field)FNONE;
	return s;
}

/* The same listener in ACME mode, from the ACME process's image. */
static struct spec
acme_spec(void)
{
	struct spec	s = good_spec();

	s.secrets = 1;
	s.mode = 1;
	s.cert = (struct field)FNONE;
	s.ndomains = 1;
	s.domain = (struct field)F("a.example");
	s.domains_set = 1;
	s.directory = (struct field)F("https://ca.test/dir");
	s.contact = (struct field)F("mailto:a@example.com");
	s.challenge = CONFIG_ACME_HTTP_01;
	s.cache_dir = (struct field)F("/var/lib/acme");
	s.ca_file = (struct field)F("/ca.pem");
	s.ca = (struct field)F("CA");
	s.renew = 30;
	s.kid = (struct field)F("kid");
	s.hmac_present = true;
	s.hmac = (struct field)F("a2V5");
	s.ncerts = 1;
	s.cert_present = true;
	s.cname = (struct field)F("a.example");
	s.ccert = (struct field)F("CHAIN");
	s.nchal = 1;
	s.chal_present = true;
	s.ctype = CONFIG_ACME_HTTP_01;
	s.chname = (struct field)F("a.example");
	s.token = (struct field)F("tok_en-1");
	s.keyauth = (struct field)F("tok_en-1.thumb");
	s.digest_n = 32;
	return s;
}

/*
 * The site over https to app.internal (a name of its own), with a client
 * certificate; its path block over https with the defaults (the system
 * store, the upstream's host): three files, the key secret (no bytes).
 */
static struct spec
tls_spec(void)
{
	struct spec	s = good_spec();

	s.nfiles = 3;
	s.files_n = 3;
	s.file[0].data = (struct field)F("CA PEM");
	s.file[1].data = (struct field)F("CLIENT CERT");
	s.file[2].secret = 1;		/* the signer has its bytes */
	s.file[2].data = (struct field)FNONE;
	s.be.scheme = 1;
	s.be.tls_present = true;
	s.be.sname = (struct field)F("app.internal");
	s.be.verify = 1;
	s.be.ca = 0;
	s.be.ccert = 1;
	s.be.ckey = 2;
	s.npaths = 1;
	s.paths_n = 1;
	s.path[0].prefix = (struct field)F("/api/");
	s.path[0].replace = (struct field)FNONE;
	s.path[0].be = good_backend(9001);
	s.path[0].be.host = (struct field)F("up.example");
	s.path[0].be.scheme = 1;
	s.path[0].be.tls_present = true;
	s.path[0].be.sname = (struct field)FNONE;
	s.path[0].be.verify = 0;
	s.path[0].be.ca = 0;
	s.path[0].be.ccert = CONFIG_NO_FILE;
	s.path[0].be.ckey = CONFIG_NO_FILE;
	return s;
}

/* The site with two path blocks, the longer prefix first. */
static struct spec
paths_spec(void)
{
	struct spec	s = good_spec();

	s.npaths = 2;
	s.paths_n = 2;
	s.path[0].prefix = (struct field)F("/api/v2/");
	s.path[0].replace = (struct field)FNONE;
	s.path[0].be = good_backend(9002);
	s.path[1].prefix = (struct field)F("/api/");
	s.path[1].replace = (struct field)F("/");
	s.path[1].be = good_backend(9001);
	return s;
}

static void
w_backend(struct wb *w, const struct spec_backend *be)
{
	size_t i;

	w_u32(w, be->nups);
	w_field(w, &be->upstream);
	w_field(w, &be->host);
	w_u32(w, be->alen);
	w_put(w, be->sa, be->sa_n);
	w_u32(w, be->slot);
	w_u8(w, be->lb);
	w_u32(w, be->max_fails);
	w_u32(w, be->fail_timeout);
	w_u8(w, be->hc_on);
	if (be->hc_on == 1) {
		w_field(w, &be->hc_path);
		for (i = 0; i < 6; i++)
			w_u32(w, be->hc[i]);
	}
	w_u32(w, be->ct);
	w_u32(w, be->rt);
	w_u32(w, be->ka);
	w_u32(w, be->kt);
	w_u8(w, be->pp);
	w_u8(w, be->scheme);
	if (!be->tls_present)
		return;
	w_field(w, &be->sname);
	w_u8(w, be->verify);
	w_u32(w, be->ca);
	w_u32(w, be->ccert);
	w_u32(w, be->ckey);
}

static void
w_edge(struct wb *w, const struct spec_edge *e)
{
	size_t i;

	w_u8(w, e->acc_own);
	if (e->acc_own == 1) {
		w_u8(w, e->first);
		w_u32(w, e->nfirst);
		w_u32(w, e->nranges);
		for (i = 0; i < e->ranges_n; i++) {
			w_u8(w, e->range[i].family);
			w_u8(w, e->range[i].bits);
			w_put(w, e->range[i].addr, 16);
		}
	}
	for (i = 0; i < 3; i++) {
		w_u8(w, e->own[i]);
		if (e->own[i] != 1)
			continue;
		w_u32(w, e->n[i]);
		if (e->present[i]) {
			w_field(w, &e->name[i]);
			w_field(w, &e->value[i]);
		}
	}
}

static void
w_acme(struct wb *w, const struct spec *s)
{
	static const unsigned char digest[32] = { 1, 2, 3 };

	w_u32(w, s->ndomains);
	w_field(w, &s->domain);
	w_u8(w, s->domains_set);
	w_field(w, &s->directory);
	w_field(w, &s->contact);
	w_u8(w, s->challenge);
	w_field(w, &s->cache_dir);
	w_field(w, &s->ca_file);
	w_field(w, &s->ca);
	w_u32(w, s->renew);
	w_field(w, &s->kid);
	if (s->hmac_present)
		w_field(w, &s->hmac);
	w_u32(w, s->ncerts);
	if (s->cert_present) {
		w_field(w, &s->cname);
		w_field(w, &s->ccert);
	}
	w_u32(w, s->nchal);
	if (s->chal_present) {
		w_u8(w, s->ctype);
		w_field(w, &s->chname);
		w_field(w, &s->token);
		w_field(w, &s->keyauth);
		w_put(w, digest, s->digest_n);
	}
}

static size_t
build(const struct spec *s, unsigned char *out, size_t outsz)
{
	struct wb	*w = calloc(1, sizeof(*w));
	uint64_t	 rps;
	size_t		 len, i;

	assert_non_null(w);
	w_u32(w, s->magic);
	w_u32(w, s->version);
	w_u64(w, s->gen);
	w_u8(w, s->secrets);
	w_u32(w, s->workers);
	w_u32(w, s->maxconn);
	w_u32(w, s->shutdown);
	w_u16(w, s->health);
	w_u8(w, s->level);
	w_u8(w, s->format);
	w_u8(w, s->access);
	memcpy(&rps, &s->rps, 8);
	w_u64(w, rps);
	w_u32(w, s->burst);
	w_u32(w, s->table);
	w_u64(w, s->body);
	for (i = 0; i < nitems(s->hc); i++)
		w_u32(w, s->hc[i]);
	w_u32(w, s->nfiles);
	for (i = 0; i < s->files_n; i++) {
		w_u8(w, s->file[i].secret);
		w_field(w, &s->file[i].data);
	}
	w_u32(w, s->nlisteners);
	w_u8(w, s->family);
	w_put(w, s->addr, 16);
	w_u16(w, s->https);
	w_u16(w, s->http);
	w_u16(w, s->redirect);
	w_u32(w, s->conncap);
	w_field(w, &s->bind);
	w_u8(w, s->mode);
	w_field(w, &s->cert);
	w_u32(w, s->nsites);
	w_field(w, &s->host);
	w_u8(w, s->wildcard);
	w_u16(w, s->mslot);
	w_backend(w, &s->be);
	w_field(w, &s->scert);
	w_u8(w, s->rate_own);
	if (s->rate_own == 1) {
		memcpy(&rps, &s->srps, 8);
		w_u64(w, rps);
		w_u32(w, s->sburst);
	}
	w_u8(w, s->cauth);
	w_u32(w, s->cca);
	w_edge(w, &s->edge);
	w_u32(w, s->npaths);
	for (i = 0; i < s->paths_n; i++) {
		w_field(w, &s->path[i].prefix);
		w_field(w, &s->path[i].replace);
		w_backend(w, &s->path[i].be);
		w_edge(w, &s->path[i].edge);
	}
	if (s->mode == 1)
		w_acme(w, s);
	w_u8(w, s->pp);
	w_u32(w, s->ntrusted);
	if (s->trusted_present) {
		w_u8(w, s->tfamily);
		w_u8(w, s->tbits);
		w_put(w, s->taddr, 16);
	}
	w_field(w, &s->realip);
	w_u32(w, s->endmagic);
	assert_true(w->len <= outsz);
	memcpy(out, w->buf, w->len);
	len = w->len;
	free(w);
	return len;
}

static bool
spec_decodes(const struct spec *s)
{
	unsigned char	 img[8192];
	struct config	*cfg;
	uint64_t	 gen;
	size_t		 len = build(s, img, sizeof(img)), biggest;
	int		 rc = decode(img, len, &cfg, &gen, &biggest);

	unsigned char	*again;
	size_t		 len2;

	if (rc == 0) {
		check_decoded_sane(cfg);
		/* Only canonical images: encode(decode(x)) == x. */
		encode_as(cfg, gen, s->secrets == 1, &again, &len2);
		assert_int_equal(len2, len);
		assert_memory_equal(again, img, len);
		free(again);
		config_free(cfg);
	}
	if (biggest > 16 * len + 4096)
		fail_msg("allocated %zu bytes for a %zu-byte image", biggest,
		    len);
	return rc == 0;
}

/* The writer agrees with the encoder, byte for byte. */
static void
test_writer_matches_encoder(void **state)
{
	struct spec	 s = good_spec(), a = acme_spec();
	unsigned char	 img[8192], *again;
	struct config	*cfg;
	uint64_t	 gen;
	size_t		 len, len2, biggest;

	(void)state;
	/* The ACME listener, in both images. */
	len = build(&a, img, sizeof(img));
	assert_int_equal(decode(img, len, &cfg, &gen, NULL), 0);
	assert_string_equal(cfg->listeners[0].acme.eab_hmac_key, "a2V5");
	assert_string_equal(cfg->listeners[0].challenges[0].keyauth,
	    "tok_en-1.thumb");
	assert_int_equal(cfg->listeners[0].challenges[0].digest[2], 3);
	assert_int_equal(image_encode_acme(cfg, gen, &again, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, img, len);
	free(again);
	config_free(cfg);
	a.secrets = 0;
	a.hmac_present = false;
	len = build(&a, img, sizeof(img));
	assert_int_equal(decode(img, len, &cfg, &gen, NULL), 0);
	assert_null(cfg->listeners[0].acme.eab_hmac_key);
	assert_int_equal(image_encode(cfg, gen, &again, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, img, len);
	free(again);
	config_free(cfg);

	len = build(&s, img, sizeof(img));
	assert_int_equal(decode(img, len, &cfg, &gen, &biggest), 0);
#if UTIL_ASAN
	/* The allocation watch works (so its limits above can fail). */
	assert_true(biggest >= sizeof(struct config));
#endif
	assert_true(gen == 77);
	assert_string_equal(cfg->listeners[0].sites[0].host, "a.example");
	assert_int_equal(image_encode(cfg, gen, &again, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, img, len);
	free(again);
	config_free(cfg);

	/* Path blocks. */
	s = paths_spec();
	len = build(&s, img, sizeof(img));
	assert_int_equal(decode(img, len, &cfg, &gen, NULL), 0);
	assert_int_equal(cfg->listeners[0].sites[0].npaths, 2);
	assert_string_equal(cfg->listeners[0].sites[0].paths[1].prefix,
	    "/api/");
	assert_string_equal(cfg->listeners[0].sites[0].paths[1].replace, "/");
	assert_null(cfg->listeners[0].sites[0].paths[0].replace);
	assert_int_equal(ntohs(((struct sockaddr_in *)&cfg->listeners[0]
	    .sites[0].paths[0].be.ups[0].addr)->sin_port), 9002);
	assert_int_equal(image_encode(cfg, gen, &again, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, img, len);
	free(again);
	config_free(cfg);
}

/*
 * Apply a mutation (statements) to the image make() describes; expect
 * the outcome.  From good_spec(), acme_spec() (an ACME listener) and
 * paths_spec() (a site with path blocks).
 */
#define SPEC_EXPECT(make, what, cond, ...) do {				\
	struct spec s = make();						\
	__VA_ARGS__;							\
	if (spec_decodes(&s) != (cond))					\
		fail_msg("%s%s: %s", what, (cond) ? "refused" :		\
		    "accepted", #__VA_ARGS__);				\
} while (0)
#define EXPECT(cond, ...) SPEC_EXPECT(good_spec, "", cond, __VA_ARGS__)
#define ACCEPT(...)	EXPECT(true, __VA_ARGS__)
#define REJECT(...)	EXPECT(false, __VA_ARGS__)
#define ACME_EXPECT(cond, ...)						\
	SPEC_EXPECT(acme_spec, "acme: ", cond, __VA_ARGS__)
#define ACME_ACCEPT(...) ACME_EXPECT(true, __VA_ARGS__)
#define ACME_REJECT(...) ACME_EXPECT(false, __VA_ARGS__)
#define PATHS_EXPECT(cond, ...)						\
	SPEC_EXPECT(paths_spec, "paths: ", cond, __VA_ARGS__)
#define PATHS_ACCEPT(...) PATHS_EXPECT(true, __VA_ARGS__)
#define PATHS_REJECT(...) PATHS_EXPECT(false, __VA_ARGS__)
#define TLS_EXPECT(cond, ...)						\
	SPEC_EXPECT(tls_spec, "tls: ", cond, __VA_ARGS__)
#define TLS_ACCEPT(...) TLS_EXPECT(true, __VA_ARGS__)
#define TLS_REJECT(...) TLS_EXPECT(false, __VA_ARGS__)
#define PROXY_EXPECT(cond, ...)						\
	SPEC_EXPECT(proxy_spec, "proxy: ", cond, __VA_ARGS__)
#define PROXY_ACCEPT(...) PROXY_EXPECT(true, __VA_ARGS__)
#define PROXY_REJECT(...) PROXY_EXPECT(false, __VA_ARGS__)

static void
test_globals(void **state)
{
	(void)state;
	ACCEPT(s.workers = CONFIG_MAX_WORKERS);
	REJECT(s.workers = CONFIG_MAX_WORKERS + 1);
	REJECT(s.workers = UINT32_MAX);
	ACCEPT(s.maxconn = 16);
	ACCEPT(s.maxconn = 1000000);
	REJECT(s.maxconn = 15);
	REJECT(s.maxconn = 1000001);
	ACCEPT(s.shutdown = 3600);
	REJECT(s.shutdown = 3601);
	ACCEPT(s.health = 0);
	ACCEPT(s.level = LOG_LEVEL_DEBUG);
	REJECT(s.level = LOG_LEVEL_DEBUG + 1);
	REJECT(s.level = 255);
	ACCEPT(s.format = LOG_FORMAT_JSON);
	REJECT(s.format = LOG_FORMAT_JSON + 1);
	ACCEPT(s.access = 0);
	REJECT(s.access = 2);
	ACCEPT(s.rps = 1e6);
	ACCEPT(s.rps = 1e-300);
	REJECT(s.rps = 0);
	REJECT(s.rps = -0.0);
	REJECT(s.rps = -1);
	REJECT(s.rps = 1e6 + 1);
	REJECT(s.rps = NAN);
	REJECT(s.rps = -NAN);
	REJECT(s.rps = INFINITY);
	REJECT(s.rps = -INFINITY);
	ACCEPT(s.burst = 1);
	ACCEPT(s.burst = 1000000);
	REJECT(s.burst = 0);
	REJECT(s.burst = 1000001);
	ACCEPT(s.table = 1024);
	ACCEPT(s.table = 16777216);
	REJECT(s.table = 1023);
	REJECT(s.table = 16777217);
	REJECT(s.table = 0);
	ACCEPT(s.body = 0);
	ACCEPT(s.body = (uint64_t)1 << 50);
	REJECT(s.body = ((uint64_t)1 << 50) + 1);
	REJECT(s.body = UINT64_MAX);
}

static void
test_http_fields(void **state)
{
	(void)state;
	ACCEPT(s.hc[0] = 256);
	REJECT(s.hc[0] = 255);
	ACCEPT(s.hc[0] = 16384);		/* == max-header-size */
	REJECT(s.hc[0] = 16385);		/* > max-header-size */
	ACCEPT(s.hc[0] = 65536; s.hc[1] = 65536);
	REJECT(s.hc[0] = 65537; s.hc[1] = 65536);
	ACCEPT(s.hc[0] = 1024; s.hc[1] = 1024);
	REJECT(s.hc[0] = 256; s.hc[1] = 1023);
	REJECT(s.hc[1] = 65537);
	ACCEPT(s.hc[2] = 8);
	ACCEPT(s.hc[2] = 128);
	REJECT(s.hc[2] = 7);
	REJECT(s.hc[2] = 129);
	ACCEPT(s.hc[3] = 1);
	ACCEPT(s.hc[3] = 300);
	REJECT(s.hc[3] = 0);
	REJECT(s.hc[3] = 301);
	ACCEPT(s.hc[4] = 1);
	ACCEPT(s.hc[4] = 300);
	REJECT(s.hc[4] = 0);
	REJECT(s.hc[4] = 301);
	ACCEPT(s.hc[5] = 1);
	ACCEPT(s.hc[5] = 3600);
	REJECT(s.hc[5] = 0);
	REJECT(s.hc[5] = 3601);
	ACCEPT(s.hc[6] = 1);
	ACCEPT(s.hc[6] = 3600);
	REJECT(s.hc[6] = 0);
	REJECT(s.hc[6] = 3601);
	ACCEPT(s.hc[7] = 1);
	ACCEPT(s.hc[7] = 86400);
	REJECT(s.hc[7] = 0);
	REJECT(s.hc[7] = 86401);
	ACCEPT(s.hc[8] = 0);
	REJECT(s.hc[8] = 2);		/* a bool: 0 or 1 only */
	ACCEPT(s.hc[9] = 1);
	ACCEPT(s.hc[9] = 1000);
	REJECT(s.hc[9] = 0);
	REJECT(s.hc[9] = 1001);
	REJECT(s.hc[7] = UINT32_MAX);
}

static void
test_listener_fields(void **state)
{
	(void)state;
	REJECT(s.nlisteners = 0);
	REJECT(s.nlisteners = 2);		/* only one is there */
	REJECT(s.nlisteners = CONFIG_MAX_LISTENERS);
	REJECT(s.nlisteners = CONFIG_MAX_LISTENERS + 1);
	REJECT(s.nlisteners = UINT32_MAX);
	REJECT(s.family = 0);
	REJECT(s.family = AF_UNIX);
	REJECT(s.family = 255);
	ACCEPT(s.family = AF_INET6; s.bind = (struct field)F("::1"));
	REJECT(s.https = 0);
	REJECT(s.http = 443);			/* == https */
	ACCEPT(s.http = 0);
	ACCEPT(s.https = 65535);
	ACCEPT(s.conncap = 1);
	ACCEPT(s.conncap = CONFIG_MAX_CONNS_PER_CLIENT);
	REJECT(s.conncap = CONFIG_MAX_CONNS_PER_CLIENT + 1);
	REJECT(s.conncap = UINT32_MAX);
	REJECT(s.bind = (struct field)F(""));
	REJECT(s.bind = (struct field)F("127.0.0.1 "));
	REJECT(s.bind = (struct field)F("127.0.0\n1"));
	REJECT(s.bind = (struct field)F("127.0.0\x7f"));
	REJECT(s.bind = (struct field)F("127.0.0.\xb9"));
	ACCEPT(s.bind = (struct field)F("[0000:0000:0000:0000:0000:ffff:"
	    "255.255.255.255]"));
	REJECT(s.bind = (struct field)F("[0000:0000:0000:0000:0000:ffff:"
	    "255.255.255.255]xy"));		/* 49 > INET6_ADDRSTRLEN + 2 */
	/* A listener needs its certificate (its key is the signer's). */
	REJECT(s.cert = (struct field)FNONE);
	/* Lengths that promise more than there is. */
	REJECT(s.bind.wire = 1000);
	REJECT(s.bind.wire = UINT32_MAX);
	REJECT(s.cert.wire = CONFIG_PEM_MAX);
	REJECT(s.cert.wire = CONFIG_PEM_MAX + 1);
	REJECT(s.nsites = 0);
	REJECT(s.nsites = 2);
	REJECT(s.nsites = CONFIG_MAX_SITES);
	REJECT(s.nsites = CONFIG_MAX_SITES + 1);
	REJECT(s.nsites = UINT32_MAX);
}

/* A listener behind a balancer: trusted-proxies as canonical ranges,
   required by proxy-protocol and real-ip-header. */
static struct spec
proxy_spec(void)
{
	struct spec	s = good_spec();

	s.pp = 1;
	s.ntrusted = 1;
	s.trusted_present = true;
	s.tfamily = 4;
	s.tbits = 8;
	s.taddr[0] = 10;
	s.realip = (struct field)F("X-Forwarded-For");
	return s;
}

static void
test_listener_proxy_fields(void **state)
{
	(void)state;
	PROXY_ACCEPT((void)0);
	PROXY_ACCEPT(s.pp = 0);
	PROXY_ACCEPT(s.realip = (struct field)FNONE);
	PROXY_REJECT(s.pp = 2);
	PROXY_ACCEPT(s.tfamily = 6; s.tbits = 32; s.taddr[0] = 0x20;
	    s.taddr[1] = 0x01; s.taddr[2] = 0x0d; s.taddr[3] = 0xb8);
	PROXY_ACCEPT(s.tbits = 0; s.taddr[0] = 0);
	PROXY_ACCEPT(s.tbits = 32; s.taddr[3] = 1);
	PROXY_REJECT(s.tbits = 33);
	PROXY_REJECT(s.tfamily = 6; s.tbits = 129);
	PROXY_REJECT(s.tfamily = 0);
	PROXY_REJECT(s.tfamily = AF_INET);		/* 4 or 6, not AF_* */
	PROXY_REJECT(s.tbits = 6);			/* 10.0.0.0/6: host bits */
	PROXY_REJECT(s.taddr[3] = 1);			/* 10.0.0.1/8 */
	PROXY_REJECT(s.taddr[4] = 1);			/* past an IPv4 address */
	PROXY_REJECT(s.ntrusted = 2);			/* only one is there */
	PROXY_REJECT(s.ntrusted = CONFIG_MAX_TRUSTED + 1);
	/* proxy-protocol and real-ip-header need the list. */
	PROXY_REJECT(s.ntrusted = 0; s.trusted_present = false);
	PROXY_REJECT(s.ntrusted = 0; s.trusted_present = false; s.pp = 0);
	PROXY_ACCEPT(s.ntrusted = 0; s.trusted_present = false; s.pp = 0;
	    s.realip = (struct field)FNONE);
	PROXY_ACCEPT(s.realip = (struct field)F("X-Real-IP"));
	PROXY_REJECT(s.realip = (struct field)F("Forwarded"));
	PROXY_REJECT(s.realip = (struct field)F("host"));
	PROXY_REJECT(s.realip = (struct field)F("X-A:B"));
	PROXY_REJECT(s.realip = (struct field)F("X-Forwarded-For-With-A-Very-Long-"
	    "Name-Of-More-Than-Sixty-Four-Bytes"));
}

static void
test_site_fields(void **state)
{
	struct sockaddr_in6	sin6;

	(void)state;
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(1);
	ACCEPT(s.host = (struct field)F("*.a.example"); s.wildcard = 1);
	/* The row of the request statistics: one of the table's. */
	ACCEPT(s.mslot = SHM_SITE_FIRST);
	ACCEPT(s.mslot = SHM_SITE_ROWS - 1);
	REJECT(s.mslot = SHM_SITE_ROWS);
	REJECT(s.mslot = UINT16_MAX);
	REJECT(s.host = (struct field)F("*.a.example"); s.wildcard = 0);
	REJECT(s.wildcard = 1);
	REJECT(s.host = (struct field)F(""));
	REJECT(s.host = (struct field)F("A.example"));	/* not normalised */
	REJECT(s.host = (struct field)F("a.example."));
	REJECT(s.host = (struct field)F("-a.example"));
	REJECT(s.host = (struct field)F("a..example"));
	REJECT(s.host = (struct field)F("1.2.3.4"));
	REJECT(s.host = (struct field)F("*.com"); s.wildcard = 1);
	REJECT(s.host = (struct field)F("*"); s.wildcard = 1);
	REJECT(s.host = (struct field)F("a example"));
	REJECT(s.host.wire = CONFIG_HOST_MAX + 1);
	REJECT(s.host.wire = UINT32_MAX);
	REJECT(s.be.nups = 0);
	REJECT(s.be.nups = 2);		/* only one is there */
	REJECT(s.be.nups = CONFIG_MAX_UPSTREAMS + 1);
	REJECT(s.be.nups = UINT32_MAX);
	REJECT(s.be.host = (struct field)F(""));
	REJECT(s.be.host.wire = CONFIG_HOST_MAX + 1);
	ACCEPT(s.be.slot = CONFIG_MAX_UPSTREAM_SLOTS - 1);
	REJECT(s.be.slot = CONFIG_MAX_UPSTREAM_SLOTS);
	REJECT(s.be.slot = UINT32_MAX);
	ACCEPT(s.be.lb = CONFIG_LB_STICKY);
	REJECT(s.be.lb = CONFIG_LB_STICKY + 1);
	ACCEPT(s.be.max_fails = 0);
	ACCEPT(s.be.max_fails = 1000; s.be.fail_timeout = 3600);
	REJECT(s.be.max_fails = 1001);
	REJECT(s.be.fail_timeout = 0);
	REJECT(s.be.fail_timeout = 3601);
	ACCEPT(s.be.hc_on = 0);
	REJECT(s.be.hc_on = 2);
	REJECT(s.be.hc_path = (struct field)F(""));
	REJECT(s.be.hc_path = (struct field)F("healthz"));
	REJECT(s.be.hc_path = (struct field)F("/a b"));
	REJECT(s.be.hc[0] = 0);
	REJECT(s.be.hc[0] = 3601);
	REJECT(s.be.hc[1] = 0);
	REJECT(s.be.hc[1] = 6);		/* longer than the interval */
	REJECT(s.be.hc[2] = 0);
	REJECT(s.be.hc[2] = 101);
	REJECT(s.be.hc[3] = 0);
	REJECT(s.be.hc[3] = 101);
	REJECT(s.be.hc[4] = 99);
	REJECT(s.be.hc[5] = 600);
	REJECT(s.be.hc[4] = 300; s.be.hc[5] = 299);
	ACCEPT(s.be.hc[4] = 204; s.be.hc[5] = 204);
	REJECT(s.be.upstream = (struct field)F(""));
	REJECT(s.be.upstream = (struct field)F("a b:80"));
	REJECT(s.be.upstream.wire = 1025);
	REJECT(s.be.upstream.wire = UINT32_MAX);
	/* The upstream address. */
	REJECT(s.be.alen = 0; s.be.sa_n = 0);
	REJECT(s.be.alen = 15; s.be.sa_n = 15);
	REJECT(s.be.alen = 17; s.be.sa_n = 17);
	REJECT(s.be.alen = sizeof(struct sockaddr_storage) + 1;
	    s.be.sa_n = sizeof(struct sockaddr_storage) + 1);
	REJECT(s.be.alen = UINT32_MAX);
	REJECT(((struct sockaddr *)s.be.sa)->sa_family = AF_INET6);
	REJECT(((struct sockaddr *)s.be.sa)->sa_family = AF_UNIX);
	ACCEPT(memcpy(s.be.sa, &sin6, sizeof(sin6)); s.be.alen = sizeof(sin6);
	    s.be.sa_n = sizeof(sin6));
	REJECT(memcpy(s.be.sa, &sin6, sizeof(sin6)); s.be.alen = 16;
	    s.be.sa_n = 16);
	/* Timeouts. */
	ACCEPT(s.be.ct = 1; s.be.rt = 1);
	ACCEPT(s.be.ct = 3600; s.be.rt = 86400);
	REJECT(s.be.ct = 0);
	REJECT(s.be.ct = 3601);
	REJECT(s.be.rt = 0);
	REJECT(s.be.rt = 86401);
	REJECT(s.be.ct = UINT32_MAX);
	/* The upstream pool's limits. */
	ACCEPT(s.be.ka = 0; s.be.kt = 1);
	ACCEPT(s.be.ka = CONFIG_KEEPALIVE_MAX; s.be.kt = 3600);
	REJECT(s.be.ka = CONFIG_KEEPALIVE_MAX + 1);
	REJECT(s.be.ka = UINT32_MAX);
	REJECT(s.be.kt = 0);
	REJECT(s.be.kt = 3601);
	/* upstream-proxy-protocol: none, v1, v2. */
	ACCEPT(s.be.pp = 1);
	ACCEPT(s.be.pp = 2);
	REJECT(s.be.pp = 3);
	REJECT(s.be.pp = 0xff);
	/* A site certificate is optional, never longer than a file. */
	ACCEPT(s.scert = (struct field)F("C"));
	REJECT(s.scert = (struct field)F("C"); s.scert.wire =
	    CONFIG_PEM_MAX + 1);
	/* A limit of its own, in the ranges of the global one. */
	ACCEPT(s.rate_own = 1; s.srps = 0.5; s.sburst = 1);
	ACCEPT(s.rate_own = 1; s.srps = 1e6; s.sburst = 1000000);
	REJECT(s.rate_own = 2);
	REJECT(s.rate_own = 255);
	REJECT(s.rate_own = 1; s.srps = 0; s.sburst = 5);
	REJECT(s.rate_own = 1; s.srps = NAN; s.sburst = 5);
	REJECT(s.rate_own = 1; s.srps = INFINITY; s.sburst = 5);
	REJECT(s.rate_own = 1; s.srps = 1e6 + 1; s.sburst = 5);
	REJECT(s.rate_own = 1; s.srps = 1; s.sburst = 0);
	REJECT(s.rate_own = 1; s.srps = 1; s.sburst = 1000001);
	/* client-auth: with a file there is, or neither. */
	TLS_ACCEPT(s.cauth = CONFIG_CLIENT_AUTH_REQUIRED; s.cca = 0);
	TLS_ACCEPT(s.cauth = CONFIG_CLIENT_AUTH_OPTIONAL; s.cca = 2);
	TLS_REJECT(s.cauth = CONFIG_CLIENT_AUTH_OPTIONAL; s.cca = 3);
	TLS_REJECT(s.cauth = CONFIG_CLIENT_AUTH_REQUIRED);
	TLS_REJECT(s.cauth = CONFIG_CLIENT_AUTH_OPTIONAL + 1; s.cca = 0);
	TLS_REJECT(s.cauth = 255; s.cca = 0);
	TLS_REJECT(s.cca = 0);
	REJECT(s.cauth = CONFIG_CLIENT_AUTH_REQUIRED; s.cca = 0);
	/* The end. */
	REJECT(s.endmagic = 0);
}

/* A site's path blocks: the rules of config.c, counts, order, backends. */
/* The site with rules (allow 192.0.2.0/24 first, deny ::/0) and one
   field in each header list. */
static struct spec
edge_spec(void)
{
	struct spec	s = good_spec();
	struct spec_edge *e = &s.edge;

	e->acc_own = 1;
	e->first = 1;
	e->nfirst = 1;
	e->nranges = 2;
	e->ranges_n = 2;
	e->range[0] = (struct spec_range){ 4, 24, { 192, 0, 2 } };
	e->range[1] = (struct spec_range){ 6, 0, { 0 } };
	e->own[0] = e->own[1] = e->own[2] = 1;
	e->n[0] = e->n[1] = e->n[2] = 1;
	e->present[0] = e->present[1] = e->present[2] = true;
	e->name[0] = (struct field)F("X-Frame-Options");
	e->value[0] = (struct field)F("DENY");
	e->name[1] = (struct field)F("Server");
	e->value[1] = (struct field)FNONE;
	e->name[2] = (struct field)F("X-Env");
	e->value[2] = (struct field)F("prod env");
	return s;
}

#define EDGE_EXPECT(cond, ...)						\
	SPEC_EXPECT(edge_spec, "edge: ", cond, __VA_ARGS__)
#define EDGE_ACCEPT(...) EDGE_EXPECT(true, __VA_ARGS__)
#define EDGE_REJECT(...) EDGE_EXPECT(false, __VA_ARGS__)

/* allow, deny, the header options and redirect-port (issue 18). */
static void
test_edge_fields(void **state)
{
	unsigned char	 img[8192];
	struct config	*cfg;
	uint64_t	 gen;
	struct spec	 good = edge_spec();
	size_t		 len;
	const struct config_site *site;

	(void)state;
	len = build(&good, img, sizeof(img));
	assert_int_equal(decode(img, len, &cfg, &gen, NULL), 0);
	site = &cfg->listeners[0].sites[0];
	assert_int_equal(site->access.nranges, 2);
	assert_true(site->access.whitelist);
	assert_int_equal(site->edits.edit_resp.nadd, 1);
	assert_int_equal(site->edits.edit_resp.nhide, 1);
	assert_int_equal(site->edits.edit_req.nadd, 1);
	assert_memory_equal(site->edits.edit_req.add[0].value.p, "prod env",
	    8);
	config_free(cfg);
	EDGE_ACCEPT();
	EDGE_ACCEPT(s.edge.first = 0);		/* deny first: a whitelist */
	EDGE_ACCEPT(s.edge.nfirst = 2);		/* one list only */
	EDGE_ACCEPT(s.edge.first = 0; s.edge.nfirst = 2);	/* deny only */
	EDGE_REJECT(s.edge.nfirst = 0);
	EDGE_REJECT(s.edge.nfirst = 3);
	EDGE_REJECT(s.edge.nranges = 3);	/* one is missing */
	EDGE_REJECT(s.edge.nranges = UINT32_MAX);
	EDGE_REJECT(s.edge.acc_own = 2);
	EDGE_REJECT(s.edge.first = 2);
	EDGE_REJECT(s.edge.range[0].family = 5);
	EDGE_REJECT(s.edge.range[0].bits = 33);
	EDGE_REJECT(s.edge.range[1].bits = 129);
	EDGE_REJECT(s.edge.range[0].bits = 16);	/* host bits set */
	EDGE_REJECT(s.edge.range[0].addr[5] = 1);	/* past IPv4 */
	EDGE_ACCEPT(s.edge.range[0].bits = 32);
	EDGE_REJECT(s.edge.own[0] = 2);
	EDGE_REJECT(s.edge.n[0] = 2);
	EDGE_REJECT(s.edge.n[0] = HEADERS_EDIT_MAX + 1);
	EDGE_ACCEPT(s.edge.n[0] = 0; s.edge.present[0] = false);
	EDGE_REJECT(s.edge.value[0] = (struct field)F("a\r\nX-B: b"));
	EDGE_REJECT(s.edge.value[0] = (struct field)F(" a"));
	EDGE_REJECT(s.edge.value[0] = (struct field)FNONE);
	EDGE_REJECT(s.edge.value[0] = (struct field)F("a\0b"));
	EDGE_REJECT(s.edge.name[0] = (struct field)F("Content-Length"));
	EDGE_REJECT(s.edge.name[0] = (struct field)F("X A"));
	EDGE_REJECT(s.edge.value[1] = (struct field)F("x"));	/* hide */
	EDGE_REJECT(s.edge.name[1] = (struct field)F("Connection"));
	EDGE_REJECT(s.edge.name[2] = (struct field)F("X-Forwarded-For"));
	EDGE_REJECT(s.edge.name[2] = (struct field)F("Host"));
	EDGE_REJECT(s.edge.value[2].wire = 5000);
	/* redirect-port: any port, with a plain port to redirect from. */
	EDGE_ACCEPT(s.redirect = 443);
	EDGE_ACCEPT(s.redirect = 65535);
	EDGE_REJECT(s.redirect = 443; s.http = 0);
}

static void
test_path_fields(void **state)
{
	char	long_prefix[CONFIG_PREFIX_MAX + 2];

	(void)state;
	memset(long_prefix, 'a', sizeof(long_prefix));
	long_prefix[0] = '/';
	PATHS_ACCEPT();
	/* Counts: what is there, at most CONFIG_MAX_PATHS. */
	ACCEPT(s.npaths = 0);
	REJECT(s.npaths = 1);
	PATHS_REJECT(s.npaths = 1);		/* one left over */
	PATHS_REJECT(s.npaths = 3);
	PATHS_REJECT(s.npaths = CONFIG_MAX_PATHS + 1);
	PATHS_REJECT(s.npaths = UINT32_MAX);
	/* Longest prefix first; equal lengths in any order. */
	PATHS_REJECT(s.path[0].prefix = (struct field)F("/api/");
	    s.path[1].prefix = (struct field)F("/api/v2/"));
	PATHS_ACCEPT(s.path[0].prefix = (struct field)F("/b/");
	    s.path[1].prefix = (struct field)F("/a/"));
	PATHS_ACCEPT(s.path[0].prefix = (struct field)F("/a/");
	    s.path[1].prefix = (struct field)F("/b/"));
	/* A prefix in its normal form for matching, printable, 1..1024. */
	PATHS_ACCEPT(s.path[1].prefix = (struct field)F("/"));
	PATHS_ACCEPT(s.path[1].prefix = (struct field)F("/a"));
	PATHS_ACCEPT(s.path[1].prefix = (struct field)F("/%C3%A9/"));
	PATHS_ACCEPT(s.path[0].prefix = (struct field){ long_prefix,
	    CONFIG_PREFIX_MAX, -1 });
	PATHS_REJECT(s.path[0].prefix = (struct field){ long_prefix,
	    CONFIG_PREFIX_MAX + 1, -1 });
	PATHS_REJECT(s.path[1].prefix = (struct field)F(""));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("api/"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a?b"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a#b"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a b"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a\x80"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a/../b"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/../"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("//a"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/%7e/"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/%c3/"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a%2Fb"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/a;b/"));
	PATHS_REJECT(s.path[1].prefix = (struct field)F("/%zz"));
	PATHS_REJECT(s.path[1].prefix.wire = CONFIG_PREFIX_MAX + 1);
	PATHS_REJECT(s.path[1].prefix.wire = UINT32_MAX);
	/* replace-path: empty is none; else the normal form to forward. */
	PATHS_ACCEPT(s.path[1].replace = (struct field)FNONE);
	PATHS_ACCEPT(s.path[1].replace = (struct field)F("/v2/"));
	PATHS_ACCEPT(s.path[1].replace = (struct field)F("/a;b/%2F"));
	PATHS_REJECT(s.path[1].replace = (struct field)F("v2"));
	PATHS_REJECT(s.path[1].replace = (struct field)F("/a%2fb"));
	PATHS_REJECT(s.path[1].replace = (struct field)F("/a/./b"));
	PATHS_REJECT(s.path[1].replace = (struct field)F("/a?b"));
	PATHS_REJECT(s.path[1].replace = (struct field)F("/a\tb"));
	PATHS_REJECT(s.path[1].replace.wire = CONFIG_PREFIX_MAX + 1);
	/* Each block's backend, checked as a site's. */
	PATHS_REJECT(s.path[1].be.upstream = (struct field)F(""));
	PATHS_REJECT(s.path[1].be.alen = 15; s.path[1].be.sa_n = 15);
	PATHS_REJECT(((struct sockaddr *)s.path[0].be.sa)->sa_family =
	    AF_UNIX);
	PATHS_REJECT(s.path[1].be.ct = 0);
	PATHS_REJECT(s.path[1].be.rt = 86401);
	PATHS_REJECT(s.path[0].be.ka = CONFIG_KEEPALIVE_MAX + 1);
	PATHS_REJECT(s.path[0].be.kt = 0);
	PATHS_ACCEPT(s.path[1].be.pp = 2);
	PATHS_REJECT(s.path[1].be.pp = 3);
}

/*
 * HTTPS to upstreams: the files (each once, at most CONFIG_MAX_FILES, of
 * at most CONFIG_CA_MAX bytes), the scheme, and the TLS part of a
 * backend: a server name by config.c's rule, verify a bool, the trust a
 * file there is, a client certificate and key both or neither.
 */
static void
test_upstream_tls_fields(void **state)
{
	(void)state;
	TLS_ACCEPT();
	/* Files. */
	ACCEPT(s.nfiles = 1; s.files_n = 1;
	    s.file[0].data = (struct field)F("unused"));
	ACCEPT(s.nfiles = 1; s.files_n = 1;
	    s.file[0].data = (struct field)FNONE);
	REJECT(s.nfiles = 1);			/* promised, not there */
	TLS_REJECT(s.nfiles = 2);		/* one left over */
	TLS_REJECT(s.nfiles = 4);
	TLS_REJECT(s.nfiles = CONFIG_MAX_FILES + 1);
	TLS_REJECT(s.nfiles = UINT32_MAX);
	TLS_REJECT(s.file[1].secret = 2);
	TLS_REJECT(s.file[2].secret = 0xff);
	TLS_ACCEPT(s.file[2].secret = 0);
	/* A secret file's bytes (a private key) are never in an image. */
	TLS_REJECT(s.file[2].data = (struct field)F("CLIENT KEY"));
	TLS_ACCEPT(s.file[2].secret = 0; s.file[2].data =
	    (struct field)F("CLIENT CERT"));
	TLS_REJECT(s.file[0].data.wire = CONFIG_CA_MAX + 1);
	TLS_REJECT(s.file[0].data.wire = UINT32_MAX);
	/* The scheme, and the TLS part only with https. */
	REJECT(s.be.scheme = 2);
	REJECT(s.be.scheme = 0xff);
	REJECT(s.be.scheme = 1);		/* without its TLS part */
	REJECT(s.be.tls_present = true);	/* a TLS part for http */
	TLS_REJECT(s.be.scheme = 0);
	/* The server name: none, a DNS name or an address. */
	TLS_ACCEPT(s.be.sname = (struct field)FNONE);
	TLS_ACCEPT(s.be.sname = (struct field)F("10.0.0.5"));
	TLS_ACCEPT(s.be.sname = (struct field)F("2001:db8::1"));
	TLS_ACCEPT(s.be.sname = (struct field)F("A.Example"));
	TLS_REJECT(s.be.sname = (struct field)F("app.internal."));
	TLS_REJECT(s.be.sname = (struct field)F("*.internal"));
	TLS_REJECT(s.be.sname = (struct field)F("a..b"));
	TLS_REJECT(s.be.sname = (struct field)F("[::1]"));
	TLS_REJECT(s.be.sname = (struct field)F("a b"));
	TLS_REJECT(s.be.sname.wire = CONFIG_HOST_MAX + 1);
	/* verify, a bool. */
	TLS_ACCEPT(s.be.verify = 0);
	TLS_REJECT(s.be.verify = 2);
	/* The trust: a file there is. */
	TLS_ACCEPT(s.be.ca = 2);
	TLS_REJECT(s.be.ca = 3);
	TLS_REJECT(s.be.ca = CONFIG_NO_FILE);
	TLS_REJECT(s.path[0].be.ca = 3);
	/* The client certificate: both or neither, files there are. */
	TLS_ACCEPT(s.be.ccert = CONFIG_NO_FILE; s.be.ckey = CONFIG_NO_FILE);
	TLS_REJECT(s.be.ccert = CONFIG_NO_FILE);
	TLS_REJECT(s.be.ckey = CONFIG_NO_FILE);
	TLS_REJECT(s.be.ckey = 3);
	TLS_REJECT(s.be.ccert = 3);
	TLS_REJECT(s.path[0].be.ckey = 1);
}

static void
test_acme_listener_fields(void **state)
{
	(void)state;
	/* The header's flag and the mode. */
	ACCEPT(s.secrets = 1);			/* nothing secret to carry */
	REJECT(s.secrets = 2);
	REJECT(s.secrets = 0xff);
	REJECT(s.mode = 2);
	REJECT(s.mode = 0xff);
	/* ACME: no listener certificate (a site's is fine). */
	ACME_REJECT(s.cert = (struct field)F("C"));
	ACME_ACCEPT(s.scert = (struct field)F("C"));
	/* Manual without a certificate; ACME without its part. */
	ACME_REJECT(s.mode = 0);
	REJECT(s.mode = 1);
	/* Domains. */
	ACME_REJECT(s.ndomains = 0);
	ACME_REJECT(s.ndomains = 2);		/* only one is there */
	ACME_REJECT(s.ndomains = CONFIG_MAX_SITES + 1);
	ACME_REJECT(s.ndomains = UINT32_MAX);
	ACME_REJECT(s.domain = (struct field)F(""));
	ACME_REJECT(s.domain = (struct field)F("A.example"));
	ACME_REJECT(s.domain = (struct field)F("a.example."));
	ACME_REJECT(s.domain = (struct field)F("*.a.example"));
	ACME_REJECT(s.domain = (struct field)F("1.2.3.4"));
	ACME_REJECT(s.domain.wire = CONFIG_HOST_MAX + 1);
	ACME_REJECT(s.domain.wire = UINT32_MAX);
	ACME_ACCEPT(s.domains_set = 0);
	ACME_REJECT(s.domains_set = 2);
	/* Directory and contact. */
	ACME_ACCEPT(s.directory = (struct field)F("https://x"));
	ACME_REJECT(s.directory = (struct field)F(""));
	ACME_REJECT(s.directory = (struct field)F("http://ca.test/dir"));
	ACME_REJECT(s.directory = (struct field)F("https://"));
	ACME_REJECT(s.directory = (struct field)F("https://a b"));
	ACME_REJECT(s.directory.wire = CONFIG_ACME_URL_MAX + 1);
	ACME_ACCEPT(s.contact = (struct field)FNONE);
	ACME_REJECT(s.contact = (struct field)F("a@example.com"));
	ACME_REJECT(s.contact = (struct field)F("mailto:a@b,c@d"));
	ACME_REJECT(s.contact = (struct field)F("mailto:"));
	ACME_REJECT(s.contact.wire = UINT32_MAX);
	/* Challenge type, paths, the CA. */
	ACME_ACCEPT(s.challenge = CONFIG_ACME_TLS_ALPN_01);
	ACME_REJECT(s.challenge = CONFIG_ACME_HTTP_01 + 1);
	ACME_REJECT(s.challenge = 0xff);
	ACME_ACCEPT(s.cache_dir = (struct field)F("/"));
	ACME_ACCEPT(s.cache_dir = (struct field)F("/a b/\xc3\xa9"));
	ACME_REJECT(s.cache_dir = (struct field)F(""));
	ACME_REJECT(s.cache_dir = (struct field)F("var/lib"));
	ACME_REJECT(s.cache_dir = (struct field)F("/a\0b"));
	ACME_REJECT(s.cache_dir.wire = CONFIG_PATH_MAX + 1);
	ACME_ACCEPT(s.ca_file = (struct field)FNONE);
	ACME_ACCEPT(s.ca_file = (struct field)F("ca.pem"));
	ACME_REJECT(s.ca_file = (struct field)F("/ca\0"));
	ACME_ACCEPT(s.ca = (struct field)FNONE);
	ACME_REJECT(s.ca.wire = CONFIG_PEM_MAX + 1);
	ACME_REJECT(s.ca.wire = UINT32_MAX);
	ACME_ACCEPT(s.renew = 0);
	ACME_ACCEPT(s.renew = 365);
	ACME_REJECT(s.renew = 366);
	ACME_REJECT(s.renew = UINT32_MAX);
	/* External Account Binding. */
	ACME_ACCEPT(s.kid = (struct field)FNONE; s.hmac = (struct field)FNONE);
	ACME_REJECT(s.kid = (struct field)FNONE);
	ACME_REJECT(s.hmac = (struct field)FNONE);
	ACME_REJECT(s.hmac = (struct field)F("a+b"));
	ACME_REJECT(s.kid = (struct field)F("k d"));
	ACME_REJECT(s.kid.wire = CONFIG_ACME_EAB_MAX + 1);
	ACME_REJECT(s.hmac.wire = CONFIG_ACME_EAB_MAX + 1);
	/* The workers' copy has the key id and no key. */
	ACME_ACCEPT(s.secrets = 0; s.hmac_present = false);
	ACME_ACCEPT(s.secrets = 0; s.hmac_present = false;
	    s.kid = (struct field)FNONE);
	ACME_REJECT(s.secrets = 0);		/* a key where none goes */
	ACME_REJECT(s.hmac_present = false);	/* no key where one goes */
}

static void
test_acme_state_fields(void **state)
{
	(void)state;
	/* Issued certificates. */
	ACME_ACCEPT(s.ncerts = 0; s.cert_present = false);
	ACME_REJECT(s.ncerts = 2);
	ACME_REJECT(s.ncerts = CONFIG_MAX_SITES + 1);
	ACME_REJECT(s.ncerts = UINT32_MAX);
	ACME_REJECT(s.ncerts = 0);		/* one is there: trailing */
	ACME_REJECT(s.cname = (struct field)F("*.a.example"));
	ACME_REJECT(s.cname = (struct field)F("A.example"));
	ACME_REJECT(s.cname = (struct field)F(""));
	ACME_REJECT(s.ccert = (struct field)FNONE);
	ACME_REJECT(s.ccert.wire = CONFIG_PEM_MAX + 1);
	/* Challenges. */
	ACME_ACCEPT(s.nchal = 0; s.chal_present = false);
	ACME_REJECT(s.nchal = 2);
	ACME_REJECT(s.nchal = 2 * CONFIG_MAX_SITES + 1);
	ACME_REJECT(s.nchal = UINT32_MAX);
	ACME_ACCEPT(s.ctype = CONFIG_ACME_TLS_ALPN_01);
	ACME_ACCEPT(s.ctype = CONFIG_ACME_TLS_ALPN_01;
	    s.token = (struct field)FNONE; s.keyauth = (struct field)FNONE);
	ACME_REJECT(s.ctype = CONFIG_ACME_HTTP_01 + 1);
	ACME_REJECT(s.ctype = 0xff);
	ACME_REJECT(s.chname = (struct field)F("*.a.example"));
	ACME_REJECT(s.chname = (struct field)F("a..example"));
	ACME_REJECT(s.token = (struct field)FNONE);	/* http-01 needs it */
	ACME_REJECT(s.keyauth = (struct field)FNONE);
	ACME_REJECT(s.token = (struct field)F("../x"));
	ACME_REJECT(s.token = (struct field)F("a/b"));
	ACME_REJECT(s.token = (struct field)F("a b"));
	ACME_REJECT(s.keyauth = (struct field)F("a\nb"));
	ACME_REJECT(s.token.wire = 257);
	ACME_REJECT(s.keyauth.wire = 301);
	ACME_REJECT(s.digest_n = 31);
	ACME_REJECT(s.digest_n = 0);
	/* The end. */
	ACME_REJECT(s.endmagic = 0);
}

/* ACME option i (0-4) at its longest, from the characters in big. */
static void
acme_opt_at_limit(size_t i, const char *big, char *opt, size_t sz)
{
	switch (i) {
	case 0:
		snprintf(opt, sz, "acme-directory = \"https://%.2040s\"", big);
		break;
	case 1:
		snprintf(opt, sz, "acme-contact = \"mailto:a@%.2039s\"", big);
		break;
	case 2:
		snprintf(opt, sz, "acme-cache-dir = \"/%.4094s\"", big);
		break;
	case 3:
		snprintf(opt, sz, "acme-ca-file = \"%.4095s\"", big);
		break;
	default:
		snprintf(opt, sz, "acme-eab-kid = \"%.512s\" "
		    "acme-eab-hmac-key = \"%.512s\"", big, big);
	}
}

/*
 * Every ACME configuration the parser accepts, at its limits, survives
 * both encoders: no value the decoder would refuse gets through.
 */
static void
test_every_accepted_acme_config_decodes(void **state)
{
	char		*big, *text;
	struct config	*cfg, *dec;
	unsigned char	*img;
	size_t		 len, i, n;
	uint64_t	 gen;
	int		 secrets;

	(void)state;
	big = malloc(8192);
	text = malloc(16384);
	assert_non_null(big);
	assert_non_null(text);
	/* Letters and, where they may go, spaces and UTF-8. */
	for (i = 0; i < 5; i++) {
		const struct config_opts opts = { .pure = true };
		struct config_errors	 e = { 0 };
		char			 opt[10000];

		memset(big, 'b', 8191);
		big[8191] = '\0';
		if (i == 2 || i == 3)
			memcpy(big + 10, "a b \xc3\xa9", 7);
		acme_opt_at_limit(i, big, opt, sizeof(opt));
		n = (size_t)snprintf(text, 16384, "listener {\n"
		    " bind = \"127.0.0.1\"\n tls { mode = \"acme\" %s }\n"
		    " site \"a.example\" { upstream = \"127.0.0.1:1\" }\n}\n",
		    opt);
		if (config_parse_buffer("t", text, n, &opts, &cfg, &e) != 0) {
			for (size_t k = 0; k < e.n; k++)
				print_message("  %s\n", e.msgs[k]);
			config_errors_free(&e);
			fail_msg("refused: %.60s", opt);
		}
		fill_blobs(cfg);
		for (secrets = 0; secrets < 2; secrets++) {
			encode_as(cfg, 1, secrets, &img, &len);
			if (decode(img, len, &dec, &gen, NULL) != 0)
				fail_msg("accepted by the parser, but no image "
				    "of it decodes: %.60s", opt);
			assert_image_fields_equal(cfg, dec, secrets);
			config_free(dec);
			free(img);
		}
		config_free(cfg);
	}
	free(text);
	free(big);
}

/*
 * image_decode() accepts only what image_encode() writes, so that
 * decode-then-encode gives the same bytes back: no wildcard flag other
 * than 0 or 1, and only zeros after an IPv4 listener address (encode
 * zero-fills 12 of its 16 address bytes).  A corrupt image must not pass
 * as a good one.
 */
static void
test_decode_canonical_wildcard(void **state)
{
	static const struct {
		const char	*host;
		uint8_t		 flag;
	} cases[] = {
		{ "*.a.example", 2 }, { "*.a.example", 0xff },
		{ "a.example", 2 }, { "a.example", 0x80 },
	};
	unsigned char	 img[8192], *again;
	struct config	*cfg;
	uint64_t	 gen;
	size_t		 len, len2, i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		struct spec s = good_spec();

		s.host.p = cases[i].host;
		s.host.n = strlen(cases[i].host);
		s.wildcard = cases[i].flag;
		len = build(&s, img, sizeof(img));
		if (decode(img, len, &cfg, &gen, NULL) == -1)
			continue;
		assert_int_equal(image_encode(cfg, gen, &again, &len2), 0);
		config_free(cfg);
		assert_int_equal(len2, len);
		if (memcmp(again, img, len) != 0) {
			free(again);
			fail_msg("wildcard byte 0x%02x (host %s) accepted and "
			    "re-encoded differently", cases[i].flag,
			    cases[i].host);
		}
		free(again);
	}
}

static void
test_decode_canonical_ipv4_address(void **state)
{
	struct spec	 s = good_spec();
	unsigned char	 img[8192], *again;
	struct config	*cfg;
	uint64_t	 gen;
	size_t		 len, len2;

	(void)state;
	memset(s.addr + 4, 0xee, 12);
	len = build(&s, img, sizeof(img));
	if (decode(img, len, &cfg, &gen, NULL) == -1)
		return;
	assert_int_equal(image_encode(cfg, gen, &again, &len2), 0);
	config_free(cfg);
	assert_int_equal(len2, len);
	if (memcmp(again, img, len) != 0) {
		free(again);
		fail_msg("garbage after an IPv4 listener address accepted and "
		    "dropped");
	}
	free(again);
}

/*
 * Every configuration config_parse_buffer accepts (with every upstream
 * resolved) survives image_encode/image_decode: the parser must not
 * accept a site name no worker will decode ("*.com.", 254-byte wildcards
 * once did).
 */
static void
test_every_accepted_config_decodes(void **state)
{
	char		 long_wild[300], text[1024];
	const char	*names[4];
	struct config	*cfg, *dec;
	unsigned char	*img;
	char		 failed[256] = "";
	uint64_t	 gen;
	size_t		 len, i;

	(void)state;
	/* "*." and 252 more bytes: 254 in all. */
	memcpy(long_wild, "*.", 2);
	memset(long_wild + 2, 'a', 252);
	for (i = 2 + 63; i < 254; i += 64)
		long_wild[i] = '.';
	long_wild[254] = '\0';
	names[0] = "a.example";
	names[1] = "*.a.example";
	names[2] = "*.com.";
	names[3] = long_wild;
	for (i = 0; i < nitems(names); i++) {
		struct config_errors	 e = { 0 };
		const struct config_opts opts = { .pure = true };

		snprintf(text, sizeof(text), "listener {\n"
		    " bind = \"127.0.0.1\"\n"
		    " tls { cert = \"/c\" key = \"/k\" }\n site \"%s\" { "
		    "upstream = \"127.0.0.1:1\" }\n}\n", names[i]);
		if (config_parse_buffer("t", text, strlen(text), &opts, &cfg,
		    &e) == -1) {
			config_errors_free(&e);
			continue;		/* refused: fine */
		}
		fill_blobs(cfg);
		encode(cfg, 1, &img, &len);
		if (decode(img, len, &dec, &gen, NULL) == 0)
			config_free(dec);
		else
			snprintf(failed + strlen(failed), sizeof(failed) -
			    strlen(failed), " \"%.12s%s\" (%zu bytes)",
			    names[i], strlen(names[i]) > 12 ? "..." : "",
			    strlen(names[i]));
		free(img);
		config_free(cfg);
	}
	if (failed[0] != '\0')
		fail_msg("accepted by the parser, but no worker can decode "
		    "their image: site%s", failed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_eab_key_only_for_acme_process),
		cmocka_unit_test(test_manual_listener_has_no_acme_state),
		cmocka_unit_test(test_decoded_has_no_paths),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_magic_and_version),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_writer_matches_encoder),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_http_fields),
		cmocka_unit_test(test_listener_fields),
		cmocka_unit_test(test_listener_proxy_fields),
		cmocka_unit_test(test_site_fields),
		cmocka_unit_test(test_path_fields),
		cmocka_unit_test(test_edge_fields),
		cmocka_unit_test(test_upstream_tls_fields),
		cmocka_unit_test(test_acme_listener_fields),
		cmocka_unit_test(test_acme_state_fields),
		cmocka_unit_test(test_every_accepted_acme_config_decodes),
		cmocka_unit_test(test_decode_canonical_wildcard),
		cmocka_unit_test(test_decode_canonical_ipv4_address),
		cmocka_unit_test(test_every_accepted_config_decodes),
	};

	return cmocka_run_group_tests(tests, setup_hooks, NULL);
}
