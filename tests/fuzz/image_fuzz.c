/*
 * image_fuzz.c - libFuzzer target for the config image decoder
 * (src/image.c), which every worker runs on bytes from shared memory.
 *
 * The input is an image.  If image_decode accepts it, the config must be
 * within every limit the worker (or the ACME process) relies on, and the
 * encoder that wrote it (image_encode, or image_encode_acme for an image
 * with EAB keys: image_is_acme says which) must give back exactly the
 * input: the decoder accepts one spelling of each config and nothing the
 * encoder would not write.  Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "image.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_blob(const struct config_blob *b, size_t max)
{
	CHECK(b->len <= max);
	CHECK(b->len == 0 || b->data != NULL);
	/* Terminated: GnuTLS is handed PEM as a string. */
	CHECK(b->data == NULL || b->data[b->len] == '\0');
}

static void
check_printable(const char *s, size_t min, size_t max)
{
	size_t	i, n = strlen(s);

	CHECK(n >= min && n <= max);
	for (i = 0; i < n; i++)
		CHECK(s[i] > 0x20 && s[i] < 0x7f);
}

/* What image_decode() promises of a backend, in a config of nfiles. */
static void
check_backend(const struct config_backend *be, size_t nfiles)
{
	const struct sockaddr *sa;
	size_t i;

	CHECK(be->nups >= 1 && be->nups <= CONFIG_MAX_UPSTREAMS);
	CHECK(be->proxy_protocol == CONFIG_PROXY_NONE ||
	    be->proxy_protocol == CONFIG_PROXY_V1 ||
	    be->proxy_protocol == CONFIG_PROXY_V2);
	for (i = 0; i < be->nups; i++) {
		sa = (const struct sockaddr *)&be->ups[i].addr;
		check_printable(be->ups[i].name, 1, 1024);
		check_printable(be->ups[i].host, 1, CONFIG_HOST_MAX);
		CHECK(sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
		CHECK(be->ups[i].addrlen == (sa->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6)));
		CHECK(be->ups[i].slot < CONFIG_MAX_UPSTREAM_SLOTS);
	}
	CHECK(be->balance <= CONFIG_LB_STICKY);
	CHECK(be->max_fails <= 1000);
	CHECK(be->fail_timeout >= 1 && be->fail_timeout <= 3600);
	CHECK(!be->health.on || (config_health_path_ok(be->health.path) &&
	    be->health.interval >= 1 && be->health.interval <= 3600 &&
	    be->health.timeout >= 1 &&
	    be->health.timeout <= be->health.interval &&
	    be->health.passes >= 1 && be->health.passes <= 100 &&
	    be->health.fails >= 1 && be->health.fails <= 100 &&
	    be->health.status_min >= 100 &&
	    be->health.status_min <= be->health.status_max &&
	    be->health.status_max <= 599));
	/* Every index names a file the worker has; a plain backend has
	   nothing of TLS. */
	CHECK(config_backend_tls_ok(be, nfiles));
	CHECK(be->connect_timeout >= 1 && be->connect_timeout <= 3600);
	CHECK(be->request_timeout >= 1 && be->request_timeout <= 86400);
	CHECK(be->keepalive <= CONFIG_KEEPALIVE_MAX);
	CHECK(be->keepalive_timeout >= 1 && be->keepalive_timeout <= 3600);
}

/* A site's path blocks: the rules config.c enforces, longest first. */
static void
check_paths(const struct config_site *s, size_t nfiles)
{
	size_t i;

	CHECK(s->npaths <= CONFIG_MAX_PATHS);
	for (i = 0; i < s->npaths; i++) {
		const struct config_path *p = &s->paths[i];

		check_printable(p->prefix, 1, CONFIG_PREFIX_MAX);
		CHECK(strlen(p->prefix) == p->prefix_len);
		CHECK(config_path_ok(p->prefix, p->prefix_len, true));
		if (p->replace != NULL) {
			check_printable(p->replace, 1, CONFIG_PREFIX_MAX);
			CHECK(strlen(p->replace) == p->replace_len);
			CHECK(config_path_ok(p->replace, p->replace_len,
			    false));
		}
		CHECK(i == 0 || p->prefix_len <= s->paths[i - 1].prefix_len);
		check_backend(&p->be, nfiles);
	}
}

static void
check_host(const char *h)
{
	CHECK(h != NULL);
	check_printable(h, 1, CONFIG_HOST_MAX);
	CHECK(config_check_hostname(h, strlen(h), false) == 0);
	CHECK(h[0] != '*' && h[strlen(h) - 1] != '.');
}

/* A path: 1..CONFIG_PATH_MAX bytes (any but NUL), absolute if told. */
static void
check_path(const char *p, bool absolute)
{
	size_t	n = strlen(p);

	CHECK(n >= 1 && n <= CONFIG_PATH_MAX);
	CHECK(!absolute || p[0] == '/');
}

/* The listener's certificate, or its ACME part. */
static void
check_acme(const struct config_listener *l, bool secrets)
{
	const struct config_acme	*a = &l->acme;
	size_t				 i;

	if (l->tls_mode == CONFIG_TLS_MANUAL) {
		/* Its key is the signer's: never in an image. */
		CHECK(l->tls.cert.len > 0 && l->tls.key.len == 0);
		CHECK(a->ndomains == 0 && a->domains == NULL);
		CHECK(a->directory == NULL && a->cache_dir == NULL);
		CHECK(a->eab_kid == NULL && a->eab_hmac_key == NULL);
		CHECK(l->nacme_certs == 0 && l->nchallenges == 0);
		return;
	}
	CHECK(l->tls_mode == CONFIG_TLS_ACME);
	CHECK(l->tls.cert.len == 0 && l->tls.key.len == 0);
	CHECK(a->ndomains >= 1 && a->ndomains <= CONFIG_MAX_SITES);
	for (i = 0; i < a->ndomains; i++)
		check_host(a->domains[i]);
	CHECK(a->directory != NULL && config_acme_url_ok(a->directory));
	CHECK(a->contact == NULL || config_acme_contact_ok(a->contact));
	CHECK(a->challenge == CONFIG_ACME_TLS_ALPN_01 ||
	    a->challenge == CONFIG_ACME_HTTP_01);
	CHECK(a->cache_dir != NULL);
	check_path(a->cache_dir, true);
	if (a->ca_file != NULL)
		check_path(a->ca_file, false);
	check_blob(&a->ca, CONFIG_PEM_MAX);
	CHECK(a->renew_days <= 365);
	if (a->eab_kid != NULL)
		check_printable(a->eab_kid, 1, CONFIG_ACME_EAB_MAX);
	/* The key only in the ACME process's copy, and with its id. */
	if (secrets)
		CHECK((a->eab_kid == NULL) == (a->eab_hmac_key == NULL));
	else
		CHECK(a->eab_hmac_key == NULL);
	if (a->eab_hmac_key != NULL)
		CHECK(config_base64url_ok(a->eab_hmac_key,
		    CONFIG_ACME_EAB_MAX));
	CHECK(l->nacme_certs <= CONFIG_MAX_SITES);
	for (i = 0; i < l->nacme_certs; i++) {
		check_host(l->acme_certs[i].name);
		check_blob(&l->acme_certs[i].cert, CONFIG_PEM_MAX);
		check_blob(&l->acme_certs[i].key, CONFIG_PEM_MAX);
		CHECK(l->acme_certs[i].cert.len > 0 &&
		    l->acme_certs[i].key.len == 0);
	}
	CHECK(l->nchallenges <= 2 * CONFIG_MAX_SITES);
	for (i = 0; i < l->nchallenges; i++) {
		const struct config_challenge *c = &l->challenges[i];

		CHECK(c->type == CONFIG_ACME_TLS_ALPN_01 ||
		    c->type == CONFIG_ACME_HTTP_01);
		check_host(c->name);
		if (c->token != NULL)
			CHECK(config_base64url_ok(c->token,
			    CONTROL_TOKEN_MAX));
		if (c->keyauth != NULL)
			check_printable(c->keyauth, 1,
			    CONTROL_KEYAUTH_MAX);
		if (c->type == CONFIG_ACME_HTTP_01)
			CHECK(c->token != NULL && c->keyauth != NULL);
	}
}

static void
check_decoded(const struct config *c, bool secrets)
{
	size_t	i, j;

	CHECK(c->path == NULL && c->user == NULL && c->log_file == NULL &&
	    c->admin_socket == NULL);
	CHECK(c->workers <= CONFIG_MAX_WORKERS);
	CHECK(c->nfiles <= CONFIG_MAX_FILES);
	for (i = 0; i < c->nfiles; i++) {
		CHECK(c->files[i].path == NULL);
		check_blob(&c->files[i].data, CONFIG_CA_MAX);
	}
	CHECK(c->max_connections >= 16 && c->max_connections <= 1000000);
	CHECK(c->shutdown_timeout <= 3600);
	CHECK(c->log_level <= LOG_LEVEL_DEBUG);
	CHECK(c->log_format <= LOG_FORMAT_JSON);
	CHECK(isfinite(c->rate_rps) && c->rate_rps > 0 && c->rate_rps <= 1e6);
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
	CHECK(c->nlisteners >= 1 && c->nlisteners <= CONFIG_MAX_LISTENERS);
	for (i = 0; i < c->nlisteners; i++) {
		const struct config_listener *l = &c->listeners[i];

		CHECK(l->family == AF_INET || l->family == AF_INET6);
		CHECK(l->https_port != 0 && l->https_port != l->http_port);
		check_printable(l->bind, 1, INET6_ADDRSTRLEN + 2);
		check_blob(&l->tls.cert, CONFIG_PEM_MAX);
		check_blob(&l->tls.key, CONFIG_PEM_MAX);
		check_acme(l, secrets);
		CHECK(l->tls.cert_path == NULL && l->tls.key_path == NULL);
		CHECK(l->nsites >= 1 && l->nsites <= CONFIG_MAX_SITES);
		for (j = 0; j < l->nsites; j++) {
			const struct config_site *s = &l->sites[j];

			check_printable(s->host, 1, CONFIG_HOST_MAX);
			CHECK(config_check_hostname(s->host, strlen(s->host),
			    s->wildcard) == 0);
			CHECK(s->wildcard == (s->host[0] == '*'));
			check_backend(&s->be, c->nfiles);
			check_paths(s, c->nfiles);
			check_blob(&s->tls.cert, CONFIG_PEM_MAX);
			check_blob(&s->tls.key, CONFIG_PEM_MAX);
			CHECK(s->tls.key.len == 0);
			/* client-auth: its CA among the files, or none. */
			CHECK(config_client_auth_ok(s, c->nfiles));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*cfg = (struct config *)&size;
	unsigned char	*again;
	size_t		 len;
	uint64_t	 gen;
	int		 secrets;

	if (image_decode(data, size, &cfg, &gen) == -1) {
		CHECK(cfg == NULL);
		return 0;
	}
	CHECK(cfg != NULL);
	secrets = image_is_acme(data, size);
	CHECK(secrets == 0 || secrets == 1);
	check_decoded(cfg, secrets == 1);
	if (secrets == 1)
		CHECK(image_encode_acme(cfg, gen, &again, &len) == 0);
	else
		CHECK(image_encode(cfg, gen, &again, &len) == 0);
	CHECK(len == size);
	CHECK(memcmp(again, data, size) == 0);
	free(again);
	config_free(cfg);
	return 0;
}
