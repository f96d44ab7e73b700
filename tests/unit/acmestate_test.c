/*
 * acmestate_test.c - the master's view of ACME: what the ACME process
 * reports is checked before anything is believed, challenges reach a
 * generation and are announced once it is live, certificates come from
 * the cache only, and status says it all.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "acmestate.h"
#include "config.h"
#include "control.h"

#define TOKEN	"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define THUMB	"9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

struct fixture {
	char		 dir[64];	/* the cache directory */
	struct config	*cfg;
	struct acme_state *st;
};

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

/*
 * Listener 0: ACME (tls-alpn-01) for a.test and b.test, cache in dir;
 * listener 1: manual, one site.  Built by hand, freed by config_free.
 */
static struct config *
make_config(const char *dir)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct config_listener *l;

	assert_non_null(cfg);
	cfg->path = xstrdup("test.conf");
	cfg->nlisteners = 2;
	cfg->listeners = calloc(2, sizeof(*cfg->listeners));
	assert_non_null(cfg->listeners);
	l = &cfg->listeners[0];
	l->tls_mode = CONFIG_TLS_ACME;
	l->acme.challenge = CONFIG_ACME_TLS_ALPN_01;
	l->acme.cache_dir = xstrdup(dir);
	l->acme.directory = xstrdup("https://127.0.0.1:14000/dir");
	l->acme.ndomains = 2;
	l->acme.domains = calloc(2, sizeof(char *));
	assert_non_null(l->acme.domains);
	l->acme.domains[0] = xstrdup("a.test");
	l->acme.domains[1] = xstrdup("b.test");
	l->nsites = 2;
	l->sites = calloc(2, sizeof(*l->sites));
	assert_non_null(l->sites);
	l->sites[0].host = xstrdup("a.test");
	l->sites[1].host = xstrdup("b.test");
	l = &cfg->listeners[1];
	l->tls_mode = CONFIG_TLS_MANUAL;
	l->nsites = 1;
	l->sites = calloc(1, sizeof(*l->sites));
	assert_non_null(l->sites);
	l->sites[0].host = xstrdup("m.test");
	return cfg;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/acmestate-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = make_config(f->dir);
	assert_non_null(f->st = acme_state_new());
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	acme_state_free(f->st);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Write a self-signed P-256 certificate for name into the cache. */
static void
cache_cert(const char *dir, const char *name, time_t not_after)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t c, k;
	unsigned char serial[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char path[512];
	FILE *fp;

	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial,
	    sizeof(serial)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt,
	    time(NULL) - 3600), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, not_after),
	    0);
	assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt,
	    GNUTLS_SAN_DNSNAME, name, (unsigned)strlen(name),
	    GNUTLS_FSAN_SET), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
	assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key,
	    GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
	    &c), 0);
	assert_int_equal(gnutls_x509_privkey_export2_pkcs8(key,
	    GNUTLS_X509_FMT_PEM, NULL, 0, &k), 0);
	snprintf(path, sizeof(path), "%s/certs", dir);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/certs/%s", dir, name);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/certs/%s/fullchain.pem", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(c.data, 1, c.size, fp), c.size);
	assert_int_equal(fclose(fp), 0);
	snprintf(path, sizeof(path), "%s/certs/%s/key.pem", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(k.data, 1, k.size, fp), k.size);
	assert_int_equal(fclose(fp), 0);
	gnutls_free(c.data);
	gnutls_free(k.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static struct control_acme
challenge(uint32_t id, const char *name)
{
	struct control_acme a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.listener = 0;
	a.type = CONFIG_ACME_TLS_ALPN_01;
	snprintf(a.name, sizeof(a.name), "%s", name);
	memset(a.digest, 0xab, sizeof(a.digest));
	return a;
}

static enum acme_state_result
report(struct fixture *f, enum control_type type,
    const struct control_acme *a, const char *text, char *why)
{
	return acme_state_report(f->st, f->cfg, type, a, text,
	    (int64_t)time(NULL), why, 256);
}

static int64_t
fixed_not_after(const struct config_blob *cert)
{
	(void)cert;
	return 1800000000;	/* 2027-01-15T08:00:00Z */
}

static void
test_wanted(void **state)
{
	struct fixture *f = *state;

	assert_true(acme_state_wanted(f->cfg));
	f->cfg->listeners[0].tls_mode = CONFIG_TLS_MANUAL;
	assert_false(acme_state_wanted(f->cfg));
	f->cfg->listeners[0].tls_mode = CONFIG_TLS_ACME;
	assert_true(acme_state_has_name(f->cfg, "a.test"));
	assert_true(acme_state_has_name(f->cfg, "b.test"));
	assert_false(acme_state_has_name(f->cfg, "m.test"));
	assert_false(acme_state_has_name(f->cfg, "A.TEST"));
	assert_false(acme_state_has_name(f->cfg, ""));
}

/* Whatever the ACME process claims must fit the configuration. */
static void
test_report_lies(void **state)
{
	struct fixture *f = *state;
	struct control_acme a;
	char why[256];

	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	a = challenge(1, "m.test");		/* not an ACME name */
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	assert_non_null(strstr(why, "m.test"));
	a = challenge(1, "a.test");
	a.listener = 1;				/* a manual listener */
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	a.listener = 7;				/* no such listener */
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	a = challenge(1, "a.test");
	a.type = CONFIG_ACME_HTTP_01;		/* not the listener's type */
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	a = challenge(1, "c.test");		/* a site nobody configured */
	assert_int_equal(report(f, CONTROL_ACME_ISSUED, &a, "", why),
	    ACME_STATE_VIOLATION);
	assert_int_equal(report(f, CONTROL_ACME_STATE, &a, "", why),
	    ACME_STATE_VIOLATION);
	/* Types that only the master sends. */
	a = challenge(1, "a.test");
	assert_int_equal(report(f, CONTROL_ACME_RENEW, &a, "", why),
	    ACME_STATE_VIOLATION);
	assert_int_equal(report(f, CONTROL_READY, &a, "", why),
	    ACME_STATE_VIOLATION);
}

static void
test_http01_checks(void **state)
{
	struct fixture *f = *state;
	struct control_acme a;
	char why[256];

	f->cfg->listeners[0].acme.challenge = CONFIG_ACME_HTTP_01;
	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	a = challenge(5, "a.test");
	a.type = CONFIG_ACME_HTTP_01;
	snprintf(a.token, sizeof(a.token), "%s", TOKEN);
	snprintf(a.keyauth, sizeof(a.keyauth), "%s.%s", TOKEN, THUMB);
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_PUBLISH);
	/* A token that could climb out of the path. */
	snprintf(a.token, sizeof(a.token), "../etc");
	snprintf(a.keyauth, sizeof(a.keyauth), "../etc.%s", THUMB);
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	/* A key authorization of another token. */
	snprintf(a.token, sizeof(a.token), "%s", TOKEN);
	snprintf(a.keyauth, sizeof(a.keyauth), "other.%s", THUMB);
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	/* A thumbprint that is not 43 base64url characters. */
	snprintf(a.keyauth, sizeof(a.keyauth), "%s.%s=", TOKEN, THUMB);
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	snprintf(a.keyauth, sizeof(a.keyauth), "%s.short", TOKEN);
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	a.token[0] = '\0';
	a.keyauth[0] = '\0';
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_VIOLATION);
	/* The good one is still what a generation gets. */
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nchallenges, 1);
	assert_string_equal(f->cfg->listeners[0].challenges[0].token, TOKEN);
	assert_string_equal(f->cfg->listeners[0].challenges[0].keyauth,
	    TOKEN "." THUMB);
	assert_int_equal(f->cfg->listeners[1].nchallenges, 0);
}

/*
 * A challenge goes into the next generation, is announced once that
 * generation is live (not before, and only once), and leaves with its
 * withdrawal.
 */
static void
test_challenge_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct control_acme a, b;
	uint32_t ids[8];
	char why[256];

	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	a = challenge(11, "a.test");
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &a, "", why),
	    ACME_STATE_PUBLISH);
	/* Not in any generation yet: nothing is live. */
	assert_int_equal(acme_state_live(f->st, 5, ids, 8), 0);
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nchallenges, 1);
	assert_string_equal(f->cfg->listeners[0].challenges[0].name,
	    "a.test");
	assert_int_equal(f->cfg->listeners[0].challenges[0].type,
	    CONFIG_ACME_TLS_ALPN_01);
	assert_int_equal(f->cfg->listeners[0].challenges[0].digest[31],
	    0xab);
	acme_state_published(f->st, 6);
	/* Generation 5 is live everywhere, 6 is not yet. */
	assert_int_equal(acme_state_live(f->st, 5, ids, 8), 0);
	assert_int_equal(acme_state_live(f->st, 6, ids, 8), 1);
	assert_int_equal(ids[0], 11);
	assert_int_equal(acme_state_live(f->st, 7, ids, 8), 0);
	/* A second challenge for the same name replaces the first. */
	b = challenge(12, "a.test");
	assert_int_equal(report(f, CONTROL_ACME_CHALLENGE, &b, "", why),
	    ACME_STATE_PUBLISH);
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nchallenges, 1);
	acme_state_published(f->st, 8);
	assert_int_equal(acme_state_live(f->st, 8, ids, 8), 1);
	assert_int_equal(ids[0], 12);
	/* Withdrawn: gone from the next generation. */
	assert_int_equal(report(f, CONTROL_ACME_WITHDRAW, &b, "", why),
	    ACME_STATE_PUBLISH);
	assert_int_equal(report(f, CONTROL_ACME_WITHDRAW, &b, "", why),
	    ACME_STATE_KEEP);
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nchallenges, 0);
}

/* A certificate is taken from the cache, never from a message. */
static void
test_issued_from_cache(void **state)
{
	struct fixture *f = *state;
	struct control_acme a;
	char why[256], from[256], to[256], *json;

	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nacme_certs, 0);
	/* ISSUED with nothing in the cache: noted, nothing published. */
	a = challenge(0, "a.test");
	assert_int_equal(report(f, CONTROL_ACME_ISSUED, &a, "", why),
	    ACME_STATE_KEEP);
	/* A certificate for another name under a.test's directory. */
	cache_cert(f->dir, "b.test", time(NULL) + 86400 * 60);
	snprintf(from, sizeof(from), "%s/certs/b.test", f->dir);
	snprintf(to, sizeof(to), "%s/certs/a.test", f->dir);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(report(f, CONTROL_ACME_ISSUED, &a, "", why),
	    ACME_STATE_KEEP);
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nacme_certs, 0);
	/* The real thing. */
	cache_cert(f->dir, "a.test", time(NULL) + 86400 * 60);
	assert_int_equal(report(f, CONTROL_ACME_ISSUED, &a, "", why),
	    ACME_STATE_PUBLISH);
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nacme_certs, 1);
	assert_string_equal(f->cfg->listeners[0].acme_certs[0].name,
	    "a.test");
	assert_non_null(strstr((char *)f->cfg->listeners[0].acme_certs[0]
	    .cert.data, "BEGIN CERTIFICATE"));
	assert_non_null(f->cfg->listeners[0].acme_certs[0].key.data);
	assert_int_equal(f->cfg->listeners[1].nacme_certs, 0);
	json = acme_state_json(f->st, f->cfg, fixed_not_after);
	assert_non_null(json);
	assert_non_null(strstr(json, "{\"name\":\"a.test\",\"listener\":0,"
	    "\"source\":\"acme\",\"not_after\":\"20"));
	assert_non_null(strstr(json, "{\"name\":\"b.test\",\"listener\":0,"
	    "\"source\":\"acme\",\"not_after\":null"));
	free(json);
}

/* At start (sync) a valid cached certificate is served at once. */
static void
test_sync_reads_cache(void **state)
{
	struct fixture *f = *state;
	struct config *ncfg;

	cache_cert(f->dir, "b.test", time(NULL) + 86400 * 60);
	cache_cert(f->dir, "a.test", time(NULL) - 60);	/* expired */
	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nacme_certs, 1);
	assert_string_equal(f->cfg->listeners[0].acme_certs[0].name,
	    "b.test");
	/* A reload without b.test forgets it; with it again, re-read. */
	ncfg = make_config(f->dir);
	free(ncfg->listeners[0].acme.domains[1]);
	ncfg->listeners[0].acme.ndomains = 1;
	acme_state_sync(f->st, ncfg, (int64_t)time(NULL));
	assert_int_equal(acme_state_attach(f->st, ncfg), 0);
	assert_int_equal(ncfg->listeners[0].nacme_certs, 0);
	config_free(ncfg);
	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	assert_int_equal(acme_state_attach(f->st, f->cfg), 0);
	assert_int_equal(f->cfg->listeners[0].nacme_certs, 1);
}

static void
test_status_json(void **state)
{
	struct fixture *f = *state;
	struct control_acme a;
	char why[256], *json;
	static unsigned char pem[] = "PEM";

	f->cfg->listeners[1].sites[0].tls.cert.data = NULL;
	f->cfg->listeners[1].tls.cert.data = malloc(4);
	assert_non_null(f->cfg->listeners[1].tls.cert.data);
	memcpy(f->cfg->listeners[1].tls.cert.data, pem, 4);
	f->cfg->listeners[1].tls.cert.len = 3;
	acme_state_sync(f->st, f->cfg, (int64_t)time(NULL));
	a = challenge(0, "b.test");
	a.next = 1800000000;
	assert_int_equal(report(f, CONTROL_ACME_STATE, &a,
	    "urn:ietf:params:acme:error:connection \"refused\"", why),
	    ACME_STATE_KEEP);
	json = acme_state_json(f->st, f->cfg, fixed_not_after);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"certificates\":["));
	assert_non_null(strstr(json, "{\"name\":\"b.test\",\"listener\":0,"
	    "\"source\":\"acme\",\"not_after\":null,\"next_renewal\":"
	    "\"2027-01-15T08:00:00Z\",\"last_error\":\"urn:ietf:params:acme:"
	    "error:connection \\\"refused\\\"\"}"));
	assert_non_null(strstr(json, "{\"name\":\"a.test\",\"listener\":0,"
	    "\"source\":\"acme\",\"not_after\":null,\"next_renewal\":null,"
	    "\"last_error\":null}"));
	assert_non_null(strstr(json, "{\"name\":\"m.test\",\"listener\":1,"
	    "\"source\":\"manual\",\"not_after\":\"2027-01-15T08:00:00Z\","
	    "\"next_renewal\":null,\"last_error\":null}"));
	free(json);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wanted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_report_lies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_http01_checks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_challenge_lifecycle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_issued_from_cache, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_reads_cache, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status_json, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
