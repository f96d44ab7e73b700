/*
 * image_seeds.c - makes the image fuzz target's seeds from the config
 * corpus: every configuration there that loads (pure: no file read, no
 * look-up) and whose upstreams are addresses is encoded as the master
 * would publish it (stand-in PEM bytes for the certificates and keys,
 * upstream slots given out), as conf-NAME, and, with an ACME listener,
 * the ACME process's copy too, as acme-NAME.
 *
 *   tests/fuzz/image_seeds CONFIG-CORPUS-DIR OUT-DIR
 *
 * Run it when the image format changes (IMAGE_VERSION): seeds of another
 * version are refused at the version field, and the fuzzer explores
 * nothing past it.  Not run by the tests.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "image.h"
#include "upstate.h"

static int
fill(struct config_blob *b, const char *s)
{
	b->len = strlen(s);
	b->data = (unsigned char *)strdup(s);
	return b->data != NULL ? 0 : -1;
}

static int
resolved(const struct config_backend *be)
{
	size_t i;

	for (i = 0; i < be->nups; i++)
		if (be->ups[i].addrlen == 0)
			return 0;
	return 1;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) ==
	    NULL) {
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int
put(const char *dir, const char *prefix, const char *name,
    const unsigned char *img, size_t len)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s-%s", dir, prefix, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(img, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* The stand-ins, and whether every upstream is an address. */
static int
prepare(struct config *c)
{
	size_t i, j, k;

	for (i = 0; i < c->nfiles; i++)
		if (c->files[i].data.len == 0 && fill(&c->files[i].data,
		    "-----BEGIN CERTIFICATE-----\n") == -1)
			return 0;
	for (i = 0; i < c->nlisteners; i++) {
		struct config_listener *l = &c->listeners[i];

		if (l->tls_mode == CONFIG_TLS_MANUAL &&
		    (fill(&l->tls.cert, "-----BEGIN CERTIFICATE-----\n") ==
		    -1 || fill(&l->tls.key, "-----BEGIN PRIVATE KEY-----\n") ==
		    -1))
			return 0;
		if (l->tls_mode == CONFIG_TLS_ACME && l->acme.ca_file != NULL &&
		    fill(&l->acme.ca, "-----BEGIN CERTIFICATE-----\n") == -1)
			return 0;
		for (j = 0; j < l->nsites; j++) {
			struct config_site *s = &l->sites[j];

			if (s->tls.cert_path != NULL &&
			    (fill(&s->tls.cert, "C") == -1 ||
			    fill(&s->tls.key, "K") == -1))
				return 0;
			if (!resolved(&s->be))
				return 0;
			for (k = 0; k < s->npaths; k++)
				if (!resolved(&s->paths[k].be))
					return 0;
		}
	}
	return 1;
}

int
main(int argc, char **argv)
{
	struct config_opts opts = { .pure = true };
	struct dirent *e;
	DIR *d;
	int n = 0, bad = 0;

	if (argc != 3 || (d = opendir(argv[1])) == NULL) {
		fprintf(stderr, "usage: image_seeds CONFIG-CORPUS-DIR OUT-DIR\n");
		return 2;
	}
	while ((e = readdir(d)) != NULL) {
		struct config_errors errs = { NULL, NULL, 0, 0 };
		struct upstate_alloc *a;
		struct config *c = NULL;
		unsigned char *img;
		char path[4096], *buf;
		size_t len, ilen, i;
		bool acme = false;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		if ((buf = slurp(path, &len)) == NULL)
			continue;
		if (config_parse_buffer("x.conf", buf, len, &opts, &c,
		    &errs) != 0) {
			config_errors_free(&errs);
			free(buf);
			continue;
		}
		config_errors_free(&errs);
		free(buf);
		if (!prepare(c) || (a = upstate_alloc_new()) == NULL) {
			config_free(c);
			continue;
		}
		upstate_assign(a, c);
		upstate_commit(a, NULL);
		if (image_encode(c, 42, &img, &ilen) == 0) {
			bad += put(argv[2], "conf", e->d_name, img, ilen) != 0;
			free(img);
			n++;
		}
		for (i = 0; i < c->nlisteners; i++)
			if (c->listeners[i].tls_mode == CONFIG_TLS_ACME)
				acme = true;
		if (acme && image_encode_acme(c, 43, &img, &ilen) == 0) {
			bad += put(argv[2], "acme", e->d_name, img, ilen) != 0;
			free(img);
			n++;
		}
		upstate_alloc_free(a);
		config_free(c);
	}
	closedir(d);
	printf("%d images\n", n);
	return bad != 0;
}
