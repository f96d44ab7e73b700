/*
 * config_fuzz.c - libFuzzer target for the configuration parser
 * (src/config.c) and, through it, the config image (src/image.c).
 *
 * The input is a configuration file, parsed in pure mode (no file reads,
 * user look-ups or DNS).  Either way the result must be consistent:
 * messages prefixed "fuzz.conf:LINE: " in line order, or a config (with
 * warnings at most, said the same way) whose every field is within the
 * limits the rest of the proxy relies on.  An
 * accepted config must also survive the trip a worker sees: with PEM
 * bytes filled in for every certificate path (what config_load reads),
 * image_encode and image_encode_acme must succeed, and when every
 * upstream is an address (pure mode resolves no names) image_decode must
 * give back the same config (the EAB key only from image_encode_acme) and
 * the encoder the same bytes.  Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "image.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NAME	"fuzz.conf"

static void
check_errors(const struct config_errors *e)
{
	size_t	i, total = 0;
	char	*joined;

	CHECK(e->n >= 1 && e->n <= 100 && e->nwarn <= e->n);
	for (i = 0; i < e->n; i++) {
		const char *m = e->msgs[i], *p;

		CHECK(strncmp(m, NAME ":", strlen(NAME ":")) == 0);
		p = m + strlen(NAME ":");
		CHECK(*p >= '0' && *p <= '9');
		while (*p >= '0' && *p <= '9')
			p++;
		CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
		CHECK(e->lines[i] >= 0);
		CHECK(strtol(m + strlen(NAME ":"), NULL, 10) == e->lines[i]);
		if (i > 0)
			CHECK(e->lines[i - 1] <= e->lines[i]);
		total += strlen(m) + 2;
	}
	joined = config_errors_join(e);
	CHECK(joined != NULL);
	CHECK(strlen(joined) == total - 2);
	free(joined);
}

static bool
lower_case(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

static bool
listener_serves(const struct config_listener *l, const char *name)
{
	const char	*up = strchr(name, '.');
	size_t		 i;

	for (i = 0; i < l->nsites; i++)
		if (strcmp(l->sites[i].host, name) == 0 ||
		    (l->sites[i].wildcard && up != NULL &&
		    strcmp(l->sites[i].host + 1, up) == 0))
			return true;
	return false;
}

/* A listener's tls { } as config.c promises it. */
static void
check_tls(const struct config_listener *l)
{
	const struct config_acme	*a = &l->acme;
	size_t				 i, j;

	CHECK(l->nacme_certs == 0 && l->nchallenges == 0);
	if (l->tls_mode == CONFIG_TLS_MANUAL) {
		CHECK(l->tls.cert_path != NULL && l->tls.key_path != NULL);
		CHECK(a->ndomains == 0 && a->directory == NULL &&
		    a->cache_dir == NULL && a->eab_kid == NULL);
		return;
	}
	CHECK(l->tls_mode == CONFIG_TLS_ACME);
	CHECK(l->tls.cert_path == NULL && l->tls.key_path == NULL);
	CHECK(a->ndomains >= 1 && a->ndomains <= CONFIG_MAX_SITES);
	for (i = 0; i < a->ndomains; i++) {
		const char *d = a->domains[i];

		CHECK(config_check_hostname(d, strlen(d), false) == 0);
		CHECK(lower_case(d) && d[strlen(d) - 1] != '.');
		CHECK(listener_serves(l, d));
		for (j = 0; j < i; j++)
			CHECK(strcmp(a->domains[j], d) != 0);
	}
	CHECK(config_acme_url_ok(a->directory));
	CHECK(a->contact == NULL || config_acme_contact_ok(a->contact));
	CHECK(a->challenge == CONFIG_ACME_TLS_ALPN_01 ||
	    (a->challenge == CONFIG_ACME_HTTP_01 && l->http_port != 0));
	CHECK(a->cache_dir != NULL && a->cache_dir[0] == '/' &&
	    strlen(a->cache_dir) <= CONFIG_PATH_MAX);
	CHECK(a->ca_file == NULL || (a->ca_file[0] != '\0' &&
	    strlen(a->ca_file) <= CONFIG_PATH_MAX));
	CHECK(a->renew_days <= 365);
	CHECK((a->eab_kid == NULL) == (a->eab_hmac_key == NULL));
	CHECK(a->eab_hmac_key == NULL ||
	    config_base64url_ok(a->eab_hmac_key, CONFIG_ACME_EAB_MAX));
}

/* What the rest of the proxy relies on in an accepted config. */
/* A backend as loaded: the ranges of its options, its TLS. */
static void
check_backend(const struct config_backend *be, size_t nfiles)
{
	size_t i, j;

	CHECK(be->nups >= 1 && be->nups <= CONFIG_MAX_UPSTREAMS);
	for (i = 0; i < be->nups; i++) {
		CHECK(be->ups[i].name != NULL && be->ups[i].host != NULL);
		for (j = 0; j < i; j++)
			CHECK(strcmp(be->ups[i].name, be->ups[j].name) != 0);
	}
	CHECK(be->balance <= CONFIG_LB_STICKY);
	CHECK(be->max_fails <= 1000);
	CHECK(be->fail_timeout >= 1 && be->fail_timeout <= 3600);
	CHECK(!be->health.on || (config_health_path_ok(be->health.path) &&
	    be->health.timeout <= be->health.interval &&
	    be->health.status_min >= 100 &&
	    be->health.status_min <= be->health.status_max &&
	    be->health.status_max <= 599));
	/* Scheme and TLS: none for "http", indexes of files there are. */
	CHECK(config_backend_tls_ok(be, nfiles));
	CHECK(be->connect_timeout >= 1 && be->connect_timeout <= 3600);
	CHECK(be->request_timeout >= 1 && be->request_timeout <= 86400);
	CHECK(be->keepalive <= CONFIG_KEEPALIVE_MAX);
	CHECK(be->keepalive_timeout >= 1 && be->keepalive_timeout <= 3600);
}

/* A site's path blocks: their rules, longest prefix first. */
static void
check_paths(const struct config_site *s, size_t nfiles)
{
	size_t i;

	CHECK(s->npaths <= CONFIG_MAX_PATHS);
	CHECK((s->npaths == 0) == (s->paths == NULL));
	for (i = 0; i < s->npaths; i++) {
		const struct config_path *p = &s->paths[i];

		CHECK(p->prefix != NULL && strlen(p->prefix) == p->prefix_len);
		CHECK(config_path_ok(p->prefix, p->prefix_len, true));
		CHECK(p->replace == NULL ||
		    (strlen(p->replace) == p->replace_len &&
		    config_path_ok(p->replace, p->replace_len, false)));
		CHECK(i == 0 || p->prefix_len <= s->paths[i - 1].prefix_len);
		check_backend(&p->be, nfiles);
	}
}

static void
check_config(const struct config *c)
{
	char	buf[64];
	size_t	i, j, sites = 0;

	CHECK(c->workers <= CONFIG_MAX_WORKERS);
	/* Files named once each. */
	CHECK(c->nfiles <= CONFIG_MAX_FILES);
	for (i = 0; i < c->nfiles; i++) {
		CHECK(c->files[i].path != NULL);
		for (j = 0; j < i; j++)
			CHECK(strcmp(c->files[i].path, c->files[j].path) != 0);
	}
	CHECK(c->max_connections >= 16 && c->max_connections <= 1000000);
	CHECK(c->shutdown_timeout <= 3600);
	CHECK(c->log_level <= LOG_LEVEL_DEBUG);
	CHECK(c->log_format <= LOG_FORMAT_JSON);
	CHECK(c->rate_rps > 0 && c->rate_rps <= 1e6);
	CHECK(c->rate_burst >= 1 && c->rate_burst <= 1000000);
	CHECK(c->body_limit <= ((uint64_t)1 << 50));
	CHECK(c->http.max_request_line >= 256 &&
	    c->http.max_request_line <= c->http.max_header_size);
	CHECK(c->http.max_header_size <= 65536);
	CHECK(c->http.max_headers >= 8 && c->http.max_headers <= 128);
	CHECK(c->http.handshake_timeout >= 1 &&
	    c->http.handshake_timeout <= 300);
	CHECK(c->http.header_timeout >= 1 && c->http.header_timeout <= 300);
	CHECK(c->http.idle_timeout >= 1 && c->http.idle_timeout <= 3600);
	CHECK(c->http.client_timeout >= 1 && c->http.client_timeout <= 3600);
	CHECK(c->http.tunnel_timeout >= 1 && c->http.tunnel_timeout <= 86400);
	CHECK(c->user != NULL);
	CHECK(c->log_file == NULL || c->log_file[0] == '/');
	CHECK(c->admin_socket == NULL || (c->admin_socket[0] == '/' &&
	    strlen(c->admin_socket) < 108));
	CHECK(c->nlisteners >= 1 && c->nlisteners <= CONFIG_MAX_LISTENERS);
	for (i = 0; i < c->nlisteners; i++) {
		const struct config_listener *l = &c->listeners[i];

		CHECK(l->family == AF_INET || l->family == AF_INET6);
		CHECK(l->bind != NULL);
		CHECK(l->https_port != 0 && l->https_port != l->http_port);
		CHECK(l->nsites >= 1 && l->nsites <= CONFIG_MAX_SITES);
		check_tls(l);
		sites += l->nsites;
		if (!c->allow_wildcard_bind)
			CHECK(l->family == AF_INET ? l->addr.v4.s_addr != 0 :
			    !IN6_IS_ADDR_UNSPECIFIED(&l->addr.v6));
		for (j = 0; j < l->nsites; j++) {
			const struct config_site *s = &l->sites[j];
			size_t hl = strlen(s->host);

			CHECK(config_check_hostname(s->host, hl, s->wildcard)
			    == 0);
			CHECK(hl <= CONFIG_HOST_MAX);
			CHECK(lower_case(s->host) && s->host[hl - 1] != '.');
			CHECK(s->wildcard == (s->host[0] == '*'));
			check_backend(&s->be, c->nfiles);
			CHECK((s->tls.cert_path == NULL) ==
			    (s->tls.key_path == NULL));
			check_paths(s, c->nfiles);
		}
	}
	CHECK(config_site_count(c) == sites);
	CHECK(config_static_change(c, c, buf, sizeof(buf)) == NULL);
}

static void
blob_fill(struct config_blob *b, const char *s)
{
	b->len = strlen(s);
	b->data = (unsigned char *)strdup(s);
	CHECK(b->data != NULL);
}

static void
check_blob(const struct config_blob *a, const struct config_blob *b)
{
	CHECK(a->len == b->len);
	CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Pure loads leave DNS names unresolved: such a config has no image. */
static bool
backend_resolved(const struct config_backend *be)
{
	size_t i;

	for (i = 0; i < be->nups; i++)
		if (be->ups[i].addrlen == 0)
			return false;
	return true;
}

static void
check_str(const char *a, const char *b)
{
	CHECK((a == NULL) == (b == NULL));
	CHECK(a == NULL || strcmp(a, b) == 0);
}

static void
check_same_backend(const struct config_backend *a,
    const struct config_backend *b)
{
	size_t i;

	CHECK(a->nups == b->nups);
	for (i = 0; i < a->nups; i++) {
		CHECK(strcmp(a->ups[i].name, b->ups[i].name) == 0);
		CHECK(strcmp(a->ups[i].host, b->ups[i].host) == 0);
		CHECK(a->ups[i].addrlen == b->ups[i].addrlen);
		CHECK(memcmp(&a->ups[i].addr, &b->ups[i].addr,
		    a->ups[i].addrlen) == 0);
		CHECK(a->ups[i].slot == b->ups[i].slot);
	}
	CHECK(a->balance == b->balance);
	CHECK(a->max_fails == b->max_fails);
	CHECK(a->fail_timeout == b->fail_timeout);
	CHECK(a->health.on == b->health.on);
	check_str(a->health.path, b->health.path);
	CHECK(a->health.interval == b->health.interval);
	CHECK(a->health.timeout == b->health.timeout);
	CHECK(a->health.passes == b->health.passes);
	CHECK(a->health.fails == b->health.fails);
	CHECK(a->health.status_min == b->health.status_min);
	CHECK(a->health.status_max == b->health.status_max);
	CHECK(a->scheme == b->scheme);
	check_str(a->server_name, b->server_name);
	CHECK(a->verify == b->verify);
	CHECK(a->ca == b->ca && a->client_cert == b->client_cert &&
	    a->client_key == b->client_key);
	CHECK(a->connect_timeout == b->connect_timeout);
	CHECK(a->request_timeout == b->request_timeout);
	CHECK(a->keepalive == b->keepalive);
	CHECK(a->keepalive_timeout == b->keepalive_timeout);
}

static void
check_same_paths(const struct config_site *a, const struct config_site *b)
{
	size_t i;

	CHECK(a->npaths == b->npaths);
	for (i = 0; i < a->npaths; i++) {
		const struct config_path *pa = &a->paths[i];
		const struct config_path *pb = &b->paths[i];

		CHECK(strcmp(pa->prefix, pb->prefix) == 0);
		CHECK(pa->prefix_len == pb->prefix_len);
		check_str(pa->replace, pb->replace);
		CHECK(pa->replace_len == pb->replace_len);
		check_same_backend(&pa->be, &pb->be);
	}
}

static void
check_same_acme(const struct config_listener *la,
    const struct config_listener *lb, bool secrets)
{
	const struct config_acme	*a = &la->acme, *b = &lb->acme;
	size_t				 i;

	CHECK(la->tls_mode == lb->tls_mode);
	CHECK(a->ndomains == b->ndomains);
	for (i = 0; i < a->ndomains; i++)
		CHECK(strcmp(a->domains[i], b->domains[i]) == 0);
	CHECK(a->domains_set == b->domains_set);
	check_str(a->directory, b->directory);
	check_str(a->contact, b->contact);
	CHECK(a->challenge == b->challenge);
	check_str(a->cache_dir, b->cache_dir);
	check_str(a->ca_file, b->ca_file);
	check_blob(&a->ca, &b->ca);
	CHECK(a->renew_days == b->renew_days);
	check_str(a->eab_kid, b->eab_kid);
	check_str(secrets ? a->eab_hmac_key : NULL, b->eab_hmac_key);
}

static void
check_same(const struct config *a, const struct config *b, bool secrets)
{
	size_t	i, j;

	CHECK(a->workers == b->workers);
	CHECK(a->max_connections == b->max_connections);
	CHECK(a->shutdown_timeout == b->shutdown_timeout);
	CHECK(a->health_port == b->health_port);
	CHECK(a->log_level == b->log_level && a->log_format == b->log_format);
	CHECK(memcmp(&a->rate_rps, &b->rate_rps, sizeof(double)) == 0);
	CHECK(a->rate_burst == b->rate_burst);
	CHECK(a->body_limit == b->body_limit);
	CHECK(memcmp(&a->http, &b->http, sizeof(a->http)) == 0);
	CHECK(a->nfiles == b->nfiles);
	for (i = 0; i < a->nfiles; i++) {
		CHECK(a->files[i].secret == b->files[i].secret);
		/* A private key is the signer's: no bytes in an image. */
		if (a->files[i].secret)
			CHECK(b->files[i].data.len == 0);
		else
			check_blob(&a->files[i].data, &b->files[i].data);
	}
	CHECK(a->nlisteners == b->nlisteners);
	for (i = 0; i < a->nlisteners; i++) {
		const struct config_listener *la = &a->listeners[i];
		const struct config_listener *lb = &b->listeners[i];

		CHECK(la->family == lb->family);
		CHECK(memcmp(&la->addr, &lb->addr, la->family == AF_INET ? 4 :
		    16) == 0);
		CHECK(la->https_port == lb->https_port);
		CHECK(la->http_port == lb->http_port);
		CHECK(strcmp(la->bind, lb->bind) == 0);
		check_blob(&la->tls.cert, &lb->tls.cert);
		CHECK(lb->tls.key.len == 0);
		check_same_acme(la, lb, secrets);
		CHECK(la->nsites == lb->nsites);
		for (j = 0; j < la->nsites; j++) {
			const struct config_site *sa = &la->sites[j];
			const struct config_site *sb = &lb->sites[j];

			CHECK(strcmp(sa->host, sb->host) == 0);
			CHECK(sa->wildcard == sb->wildcard);
			check_same_backend(&sa->be, &sb->be);
			check_same_paths(sa, sb);
			check_blob(&sa->tls.cert, &sb->tls.cert);
			CHECK(sb->tls.key.len == 0);
		}
	}
}

/*
 * The config as a worker (secrets false) or the ACME process receives
 * it, once every upstream is an address.
 */
static void
check_image_as(const struct config *c, bool secrets)
{
	struct config	*dec;
	unsigned char	*img, *again;
	size_t		 len, len2;
	uint64_t	 gen;

	if (secrets) {
		CHECK(image_encode_acme(c, 42, &img, &len) == 0);
		CHECK(image_decode(img, len, &dec, &gen) == 0);
		CHECK(image_encode_acme(dec, gen, &again, &len2) == 0);
	} else {
		CHECK(image_encode(c, 42, &img, &len) == 0);
		CHECK(image_decode(img, len, &dec, &gen) == 0);
		CHECK(image_encode(dec, gen, &again, &len2) == 0);
	}
	CHECK(image_is_acme(img, len) == (secrets ? 1 : 0));
	CHECK(gen == 42);
	check_same(c, dec, secrets);
	CHECK(len2 == len && memcmp(again, img, len) == 0);
	free(again);
	config_free(dec);
	free(img);
}

/* PEM bytes where config_load would have read them. */
static void
check_image(struct config *c)
{
	unsigned char	*img;
	size_t		 len, i, j, k;
	bool		 resolved = true;

	for (i = 0; i < c->nfiles; i++)
		blob_fill(&c->files[i].data, c->files[i].path);
	for (i = 0; i < c->nlisteners; i++) {
		struct config_listener *l = &c->listeners[i];

		if (l->tls_mode == CONFIG_TLS_MANUAL) {
			blob_fill(&l->tls.cert, "-----BEGIN CERTIFICATE-----\n");
			blob_fill(&l->tls.key, "-----BEGIN PRIVATE KEY-----\n");
		} else if (l->acme.ca_file != NULL)
			blob_fill(&l->acme.ca, "-----BEGIN CERTIFICATE-----\n");
		for (j = 0; j < l->nsites; j++) {
			if (l->sites[j].tls.cert_path != NULL) {
				blob_fill(&l->sites[j].tls.cert, "C");
				blob_fill(&l->sites[j].tls.key, "K");
			}
			if (!backend_resolved(&l->sites[j].be))
				resolved = false;
			for (k = 0; k < l->sites[j].npaths; k++)
				if (!backend_resolved(
				    &l->sites[j].paths[k].be))
					resolved = false;
		}
	}
	CHECK(image_encode(c, 42, &img, &len) == 0);
	free(img);
	CHECK(image_encode_acme(c, 42, &img, &len) == 0);
	free(img);
	if (resolved) {
		check_image_as(c, false);
		check_image_as(c, true);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct config_opts opts = { .allow_wildcard_bind = false,
	    .pure = true };
	struct config_errors	 errs;
	struct config		*cfg = NULL;
	int			 rc;

	if (size > CONFIG_FILE_MAX)
		return 0;		/* config_load refuses these */
	memset(&errs, 0, sizeof(errs));
	rc = config_parse_buffer(NAME, (const char *)data, size, &opts, &cfg,
	    &errs);
	CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		CHECK(cfg == NULL);
		check_errors(&errs);
	} else {
		/* Only warnings (upstream-verify = false), each said as
		   one. */
		CHECK(cfg != NULL && errs.n == errs.nwarn);
		if (errs.n > 0)
			check_errors(&errs);
		check_config(cfg);
		check_image(cfg);
	}
	config_free(cfg);
	config_errors_free(&errs);
	return 0;
}
