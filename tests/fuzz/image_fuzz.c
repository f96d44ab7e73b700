/*
 * image_fuzz.c - libFuzzer target for the config image decoder
 * (src/image.c), which every worker runs on bytes from shared memory.
 *
 * The input is an image.  If image_decode accepts it, the config must be
 * within every limit the worker relies on, and image_encode must give
 * back exactly the input: the decoder accepts one spelling of each config
 * and nothing the encoder would not write.  Any violation abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

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

static void
check_decoded(const struct config *c)
{
	size_t	i, j;

	CHECK(c->path == NULL && c->user == NULL && c->log_file == NULL &&
	    c->admin_socket == NULL);
	CHECK(c->workers <= CONFIG_MAX_WORKERS);
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
		CHECK(l->tls.cert.len > 0 && l->tls.key.len > 0);
		CHECK(l->tls.cert_path == NULL && l->tls.key_path == NULL);
		CHECK(l->nsites >= 1 && l->nsites <= CONFIG_MAX_SITES);
		for (j = 0; j < l->nsites; j++) {
			const struct config_site *s = &l->sites[j];
			const struct sockaddr *sa =
			    (const struct sockaddr *)&s->upstream_addr;

			check_printable(s->host, 1, CONFIG_HOST_MAX);
			CHECK(config_check_hostname(s->host, strlen(s->host),
			    s->wildcard) == 0);
			CHECK(s->wildcard == (s->host[0] == '*'));
			check_printable(s->upstream, 1, 1024);
			CHECK(sa->sa_family == AF_INET ||
			    sa->sa_family == AF_INET6);
			CHECK(s->upstream_addrlen == (sa->sa_family == AF_INET ?
			    sizeof(struct sockaddr_in) :
			    sizeof(struct sockaddr_in6)));
			CHECK(s->connect_timeout >= 1 &&
			    s->connect_timeout <= 3600);
			CHECK(s->request_timeout >= 1 &&
			    s->request_timeout <= 86400);
			CHECK(s->keepalive <= CONFIG_KEEPALIVE_MAX);
			CHECK(s->keepalive_timeout >= 1 &&
			    s->keepalive_timeout <= 3600);
			check_blob(&s->tls.cert, CONFIG_PEM_MAX);
			check_blob(&s->tls.key, CONFIG_PEM_MAX);
			CHECK((s->tls.cert.len == 0) == (s->tls.key.len == 0));
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

	if (image_decode(data, size, &cfg, &gen) == -1) {
		CHECK(cfg == NULL);
		return 0;
	}
	CHECK(cfg != NULL);
	check_decoded(cfg);
	CHECK(image_encode(cfg, gen, &again, &len) == 0);
	CHECK(len == size);
	CHECK(memcmp(again, data, size) == 0);
	free(again);
	config_free(cfg);
	return 0;
}
