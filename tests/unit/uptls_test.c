/*
 * uptls_test.c - HTTPS to upstreams (uptls.c) and its connections in the
 * pool (upstream.c), by real handshakes: a uptls_conn against an
 * in-process GnuTLS server over a socketpair, with a CA and certificates
 * made here.  Verification (a good chain, a wrong name, an expired
 * certificate, an unknown issuer, verification off, an IP address
 * against the IP SANs and no SNI for it), session resumption from the
 * worker's cache (and never across tags), tags, the trust check of
 * config.c, and what a pooled TLS connection may receive while idle: a
 * session ticket keeps it, application data, the end of the stream or
 * half a record do not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "config.h"
#include "upstream.h"
#include "uptls.h"

struct pem {
	char	cert[4096];
	char	key[1024];
};

static gnutls_x509_crt_t ca_crt;
static gnutls_x509_privkey_t ca_key;
static struct pem ca, other_ca;
/* up.test, expired up.test, 127.0.0.1 (IP SAN), up.test by another CA. */
static struct pem leaf, expired, ipleaf, stranger, client;

static void
export(gnutls_x509_crt_t crt, gnutls_x509_privkey_t pk, struct pem *out)
{
	size_t len;

	len = sizeof(out->cert);
	assert_int_equal(gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_PEM,
	    out->cert, &len), 0);
	out->cert[len] = '\0';
	len = sizeof(out->key);
	assert_int_equal(gnutls_x509_privkey_export_pkcs8(pk,
	    GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, out->key, &len), 0);
	out->key[len] = '\0';
}

/*
 * A P-256 certificate: a CA (issuer NULL: self-signed) or a leaf for
 * name (a DNS name, or with ip an IPv4 address), valid from `from` to
 * `to` seconds from now, signed by issuer.
 */
static void
make_cert(const char *name, bool is_ca, bool ip, long from, long to,
    gnutls_x509_crt_t issuer, gnutls_x509_privkey_t issuer_key,
    struct pem *out, gnutls_x509_crt_t *crt_out,
    gnutls_x509_privkey_t *key_out)
{
	static unsigned char serial = 1;
	gnutls_x509_privkey_t pk;
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);
	struct in_addr a4;

	assert_int_equal(gnutls_x509_privkey_init(&pk), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	serial++;
	assert_int_equal(gnutls_x509_crt_set_serial(crt, &serial, 1), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now + from),
	    0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + to),
	    0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, name, (unsigned)strlen(name)), 0);
	if (is_ca) {
		assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, 1,
		    -1), 0);
		assert_int_equal(gnutls_x509_crt_set_key_usage(crt,
		    GNUTLS_KEY_KEY_CERT_SIGN), 0);
	} else if (ip) {
		assert_int_equal(inet_pton(AF_INET, name, &a4), 1);
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_IPADDRESS, &a4, 4, GNUTLS_FSAN_SET), 0);
	} else
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_DNSNAME, name, (unsigned)strlen(name),
		    GNUTLS_FSAN_SET), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, pk), 0);
	assert_int_equal(gnutls_x509_crt_sign2(crt, issuer ? issuer : crt,
	    issuer_key ? issuer_key : pk, GNUTLS_DIG_SHA256, 0), 0);
	export(crt, pk, out);
	if (crt_out != NULL) {
		*crt_out = crt;
		*key_out = pk;
	} else {
		gnutls_x509_crt_deinit(crt);
		gnutls_x509_privkey_deinit(pk);
	}
}

/* ---- a configuration: files and https backends ------------------------ */

enum { F_CA, F_OTHER_CA, F_CLIENT_CERT, F_CLIENT_KEY, NFILES };
enum { B_UP, B_NAME, B_NOVERIFY, B_OTHER_CA, B_IP, B_CLIENT, NBACKENDS };

static struct config_file files[NFILES];
static struct config_site sites[NBACKENDS];
/* Each backend's one upstream: only its host matters here. */
static struct config_upstream ups[NBACKENDS];
static struct config_listener listener;
static struct config cfg;
static struct uptls_ctx *ctx;
static struct uptls_cache *cache;
static struct sockaddr_in addr;

static void
file(int i, const char *pem, bool secret)
{
	files[i].data.data = (unsigned char *)(uintptr_t)pem;
	files[i].data.len = strlen(pem);
	files[i].secret = secret;
}

/* An https backend to host, trusting file ca. */
static void
backend(int i, const char *host, const char *server_name, bool verify,
    uint32_t ca_file)
{
	struct config_backend *be = &sites[i].be;

	ups[i].host = (char *)(uintptr_t)host;
	be->ups = &ups[i];
	be->nups = 1;
	be->scheme = CONFIG_SCHEME_HTTPS;
	be->server_name = (char *)(uintptr_t)server_name;
	be->verify = verify;
	be->ca = ca_file;
	be->client_cert = be->client_key = CONFIG_NO_FILE;
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	make_cert("Test CA", true, false, -60, 86400, NULL, NULL, &ca,
	    &ca_crt, &ca_key);
	make_cert("Other CA", true, false, -60, 86400, NULL, NULL, &other_ca,
	    NULL, NULL);
	make_cert("up.test", false, false, -60, 86400, ca_crt, ca_key, &leaf,
	    NULL, NULL);
	make_cert("up.test", false, false, -2 * 86400, -86400, ca_crt, ca_key,
	    &expired, NULL, NULL);
	make_cert("127.0.0.1", false, true, -60, 86400, ca_crt, ca_key,
	    &ipleaf, NULL, NULL);
	make_cert("proxy", false, false, -60, 86400, ca_crt, ca_key, &client,
	    NULL, NULL);
	{
		gnutls_x509_crt_t oc;
		gnutls_x509_privkey_t ok;
		struct pem tmp;

		make_cert("Stranger CA", true, false, -60, 86400, NULL, NULL,
		    &tmp, &oc, &ok);
		make_cert("up.test", false, false, -60, 86400, oc, ok,
		    &stranger, NULL, NULL);
		gnutls_x509_crt_deinit(oc);
		gnutls_x509_privkey_deinit(ok);
	}
	file(F_CA, ca.cert, false);
	file(F_OTHER_CA, other_ca.cert, false);
	file(F_CLIENT_CERT, client.cert, false);
	file(F_CLIENT_KEY, client.key, true);
	backend(B_UP, "up.test", NULL, true, F_CA);
	backend(B_NAME, "10.0.0.1", "up.test", true, F_CA);
	backend(B_NOVERIFY, "up.test", "wrong.test", false, F_CA);
	backend(B_OTHER_CA, "up.test", NULL, true, F_OTHER_CA);
	backend(B_IP, "127.0.0.1", NULL, true, F_CA);
	backend(B_CLIENT, "up.test", NULL, true, F_CA);
	sites[B_CLIENT].be.client_cert = F_CLIENT_CERT;
	sites[B_CLIENT].be.client_key = F_CLIENT_KEY;
	listener.sites = sites;
	listener.nsites = NBACKENDS;
	cfg.listeners = &listener;
	cfg.nlisteners = 1;
	cfg.files = files;
	cfg.nfiles = NFILES;
	if ((ctx = uptls_ctx_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "uptls_ctx_new: %s\n", err);
		return -1;
	}
	addr.sin_family = AF_INET;
	addr.sin_port = htons(443);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	uptls_ctx_free(ctx);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_privkey_deinit(ca_key);
	return 0;
}

static int
cache_setup(void **state)
{
	(void)state;
	cache = uptls_cache_new();
	return cache == NULL ? -1 : 0;
}

static int
cache_teardown(void **state)
{
	(void)state;
	uptls_cache_free(cache);
	cache = NULL;
	return 0;
}

/* ---- a server and a client on a socketpair ---------------------------- */

struct pair {
	int			 cfd, sfd;	/* client's, server's */
	gnutls_session_t	 srv;
	gnutls_certificate_credentials_t scred;
	struct uptls_conn	*c;
	uint64_t		 tag;
	int			 client_rc;	/* uptls_handshake's */
	int			 server_rc;	/* gnutls_handshake's */
	char			 sni[256];	/* what the server got; "" */
};

static gnutls_datum_t ticket_key;

/* The server side of pr with cert (its key), TLS 1.3 tickets on. */
static void
server_new(struct pair *pr, const struct pem *cert, bool want_client_cert)
{
	gnutls_datum_t c = { (unsigned char *)(uintptr_t)cert->cert,
	    (unsigned)strlen(cert->cert) };
	gnutls_datum_t k = { (unsigned char *)(uintptr_t)cert->key,
	    (unsigned)strlen(cert->key) };
	gnutls_datum_t t = { (unsigned char *)ca.cert,
	    (unsigned)strlen(ca.cert) };

	if (ticket_key.data == NULL)
		assert_int_equal(gnutls_session_ticket_key_generate(
		    &ticket_key), 0);
	assert_int_equal(gnutls_certificate_allocate_credentials(&pr->scred),
	    0);
	assert_int_equal(gnutls_certificate_set_x509_key_mem(pr->scred, &c,
	    &k, GNUTLS_X509_FMT_PEM), 0);
	assert_true(gnutls_certificate_set_x509_trust_mem(pr->scred, &t,
	    GNUTLS_X509_FMT_PEM) > 0);
	assert_int_equal(gnutls_init(&pr->srv, GNUTLS_SERVER |
	    GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_set_default_priority(pr->srv), 0);
	assert_int_equal(gnutls_credentials_set(pr->srv,
	    GNUTLS_CRD_CERTIFICATE, pr->scred), 0);
	assert_int_equal(gnutls_session_ticket_enable_server(pr->srv,
	    &ticket_key), 0);
	if (want_client_cert)
		gnutls_certificate_server_set_request(pr->srv,
		    GNUTLS_CERT_REQUIRE);
	gnutls_transport_set_int(pr->srv, pr->sfd);
}

/*
 * A handshake of ub's TLS, to host, against a server showing cert; the
 * client end is a uptls_conn with the test's cache.
 */
static void
handshake_with(struct pair *pr, const struct uptls_backend *ub,
    const char *host, const struct pem *cert, bool want_client_cert)
{
	int sv[2], i, ret;
	bool cdone = false, sdone = false;
	size_t len;
	unsigned type;

	memset(pr, 0, sizeof(*pr));
	assert_non_null(ub);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	pr->cfd = sv[0];
	pr->sfd = sv[1];
	server_new(pr, cert, want_client_cert);
	pr->tag = uptls_tag(ub, host);
	assert_non_null(pr->c = uptls_conn_new(ub, cache, pr->cfd,
	    (struct sockaddr *)&addr, sizeof(addr), host, pr->tag));
	pr->server_rc = 1;
	for (i = 0; i < 1000 && (!cdone || !sdone); i++) {
		if (!cdone) {
			uptls_readable(pr->c);
			if ((pr->client_rc = uptls_handshake(pr->c)) != 0)
				cdone = true;
		}
		if (!sdone) {
			ret = gnutls_handshake(pr->srv);
			if (ret == 0 || gnutls_error_is_fatal(ret)) {
				pr->server_rc = ret;
				sdone = true;
			}
		}
		/* A client that gave up: the server sees its alert. */
		if (cdone && pr->client_rc == -1 && !sdone && i > 10)
			break;
	}
	assert_true(cdone);
	len = sizeof(pr->sni) - 1;
	if (gnutls_server_name_get(pr->srv, pr->sni, &len, &type, 0) != 0)
		pr->sni[0] = '\0';
}

/* The same with backend b of the test's config. */
static void
handshake(struct pair *pr, int b, const struct pem *cert,
    bool want_client_cert)
{
	handshake_with(pr, uptls_ctx_backend(ctx, &sites[b].be), ups[b].host,
	    cert, want_client_cert);
}

static void
pair_close(struct pair *pr)
{
	if (pr->c != NULL)
		uptls_conn_free(pr->c);
	if (pr->cfd != -1)
		close(pr->cfd);
	gnutls_deinit(pr->srv);
	gnutls_certificate_free_credentials(pr->scred);
	close(pr->sfd);
}

/* What the client reads now (up to len - 1 bytes, terminated). */
static ssize_t
client_read(struct pair *pr, char *buf, size_t len)
{
	ssize_t n;

	uptls_readable(pr->c);
	n = uptls_read(pr->c, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

static void
server_send(struct pair *pr, const char *s)
{
	assert_int_equal(gnutls_record_send(pr->srv, s, strlen(s)),
	    (ssize_t)strlen(s));
}

/* One request and its answer: the session is in use. */
static void
exchange(struct pair *pr)
{
	char buf[64];
	ssize_t n;

	assert_int_equal(uptls_write(pr->c, "GET", 3), 3);
	n = gnutls_record_recv(pr->srv, buf, sizeof(buf));
	assert_int_equal(n, 3);
	server_send(pr, "200");
	/* The server's tickets come first (TLS 1.3; GnuTLS sends them
	   with its first flight): one read takes them and the answer. */
	assert_int_equal(client_read(pr, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "200");
	assert_false(uptls_pending(pr->c));
}

/* ---- verification ----------------------------------------------------- */

static void
expect_refused(int b, const struct pem *cert, const char *part)
{
	struct pair pr;

	/* Nothing to resume: a session the server takes back is not
	   verified again (the server vouches for it). */
	uptls_cache_free(cache);
	assert_non_null(cache = uptls_cache_new());
	handshake(&pr, b, cert, false);
	assert_int_equal(pr.client_rc, -1);
	if (strstr(uptls_error(pr.c), part) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", uptls_error(pr.c), part);
	pair_close(&pr);
}

static void
test_verify(void **state)
{
	struct pair pr;

	(void)state;
	/* The host is the name: SNI and verified. */
	handshake(&pr, B_UP, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_int_equal(pr.server_rc, 0);
	assert_string_equal(pr.sni, "up.test");
	exchange(&pr);
	pair_close(&pr);
	/* upstream-server-name instead of the host (an address here). */
	handshake(&pr, B_NAME, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_string_equal(pr.sni, "up.test");
	pair_close(&pr);

	expect_refused(B_UP, &ipleaf, "TLS: the certificate for \"up.test\" "
	    "failed verification: The name in the certificate does not match "
	    "the expected.");
	expect_refused(B_UP, &expired, "TLS: the certificate for \"up.test\" "
	    "failed verification: The certificate chain uses expired "
	    "certificate.");
	expect_refused(B_UP, &stranger, "TLS: the certificate for \"up.test\" "
	    "failed verification: The certificate issuer is unknown.");
	expect_refused(B_OTHER_CA, &leaf, "issuer is unknown");

	/* Off: anything goes, the name is still the SNI. */
	handshake(&pr, B_NOVERIFY, &stranger, false);
	assert_int_equal(pr.client_rc, 1);
	assert_string_equal(pr.sni, "wrong.test");
	pair_close(&pr);
	handshake(&pr, B_NOVERIFY, &expired, false);
	assert_int_equal(pr.client_rc, 1);
	pair_close(&pr);
}

/* An IP address: no SNI (RFC 6066), the IP SANs verified. */
static void
test_ip_address(void **state)
{
	struct pair pr;

	(void)state;
	handshake(&pr, B_IP, &ipleaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_string_equal(pr.sni, "");
	exchange(&pr);
	pair_close(&pr);
	expect_refused(B_IP, &leaf, "TLS: the certificate for \"127.0.0.1\" "
	    "failed verification: The name in the certificate does not match "
	    "the expected.");
}

/* A client certificate, when the upstream asks for one. */
static void
test_client_certificate(void **state)
{
	struct pair pr;
	unsigned n;

	(void)state;
	handshake(&pr, B_CLIENT, &leaf, true);
	assert_int_equal(pr.client_rc, 1);
	assert_int_equal(pr.server_rc, 0);
	assert_non_null(gnutls_certificate_get_peers(pr.srv, &n));
	assert_int_equal(n, 1);
	pair_close(&pr);
	/* Without one, a server that requires it ends the handshake (TLS
	   1.3: after the client's side of it is done). */
	handshake(&pr, B_UP, &leaf, true);
	assert_true(pr.server_rc < 0);
	pair_close(&pr);
}

/* ---- sessions --------------------------------------------------------- */

/*
 * A second connection to the same address with the same tag resumes the
 * first one's session (its TLS 1.3 ticket, taken in with the first
 * response); another tag does not, nor another address.
 */
static void
test_resumption(void **state)
{
	struct pair pr;
	struct sockaddr_in keep = addr;

	(void)state;
	handshake(&pr, B_UP, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_false(uptls_resumed(pr.c));
	exchange(&pr);
	pair_close(&pr);

	handshake(&pr, B_UP, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_true(uptls_resumed(pr.c));
	exchange(&pr);
	pair_close(&pr);

	/* The same name by upstream-server-name: the same tag. */
	handshake(&pr, B_NAME, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_true(uptls_resumed(pr.c));
	pair_close(&pr);
	/* Another name, verification off: another tag, a full handshake
	   (a session verified under one name never serves another). */
	handshake(&pr, B_NOVERIFY, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_false(uptls_resumed(pr.c));
	pair_close(&pr);
	/* A client certificate: another tag too. */
	handshake(&pr, B_CLIENT, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_false(uptls_resumed(pr.c));
	pair_close(&pr);

	/* Another address. */
	addr.sin_port = htons(444);
	handshake(&pr, B_UP, &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_false(uptls_resumed(pr.c));
	pair_close(&pr);
	addr = keep;
}

/*
 * A copy of a backend's settings (what the prober keeps across reloads)
 * outlives the context it was copied from: the same tag, the same name,
 * trust and client certificate in a handshake made after the context is
 * gone.
 */
static void
test_backend_copy(void **state)
{
	struct uptls_backend *name, *cl, *nov;
	struct uptls_ctx *gen;
	struct pair pr;
	char err[256];
	unsigned n;

	(void)state;
	assert_non_null(gen = uptls_ctx_new(&cfg, err, sizeof(err)));
	assert_non_null(name = uptls_backend_copy(uptls_ctx_backend(gen,
	    &sites[B_NAME].be)));
	assert_non_null(cl = uptls_backend_copy(uptls_ctx_backend(gen,
	    &sites[B_CLIENT].be)));
	assert_non_null(nov = uptls_backend_copy(uptls_ctx_backend(gen,
	    &sites[B_NOVERIFY].be)));
	assert_true(uptls_tag(name, "10.0.0.1") == uptls_tag(uptls_ctx_backend(
	    ctx, &sites[B_NAME].be), "10.0.0.1"));
	assert_true(uptls_tag(cl, "up.test") != uptls_tag(name, "10.0.0.1"));
	uptls_ctx_free(gen);

	/* The server name copied is the SNI and the name verified. */
	handshake_with(&pr, name, "10.0.0.1", &leaf, false);
	assert_int_equal(pr.client_rc, 1);
	assert_string_equal(pr.sni, "up.test");
	exchange(&pr);
	pair_close(&pr);
	handshake_with(&pr, name, "10.0.0.1", &stranger, false);
	assert_int_equal(pr.client_rc, -1);
	pair_close(&pr);
	/* The client certificate. */
	handshake_with(&pr, cl, "up.test", &leaf, true);
	assert_int_equal(pr.client_rc, 1);
	assert_int_equal(pr.server_rc, 0);
	assert_non_null(gnutls_certificate_get_peers(pr.srv, &n));
	assert_int_equal(n, 1);
	pair_close(&pr);
	/* Verification off, as copied. */
	handshake_with(&pr, nov, "up.test", &stranger, false);
	assert_int_equal(pr.client_rc, 1);
	assert_string_equal(pr.sni, "wrong.test");
	pair_close(&pr);
	uptls_backend_free(name);
	uptls_backend_free(cl);
	uptls_backend_free(nov);
	uptls_backend_free(NULL);
}

/* What a tag stands for: the name, verification, the trust. */
static void
test_tags(void **state)
{
	const struct uptls_backend *up, *name, *nov, *other, *cl;
	struct config_backend plain;

	(void)state;
	memset(&plain, 0, sizeof(plain));
	up = uptls_ctx_backend(ctx, &sites[B_UP].be);
	name = uptls_ctx_backend(ctx, &sites[B_NAME].be);
	nov = uptls_ctx_backend(ctx, &sites[B_NOVERIFY].be);
	other = uptls_ctx_backend(ctx, &sites[B_OTHER_CA].be);
	cl = uptls_ctx_backend(ctx, &sites[B_CLIENT].be);
	assert_true(uptls_tag(up, "up.test") != 0);
	assert_true(uptls_tag(up, "up.test") == uptls_tag(up, "up.test"));
	/* upstream-server-name up.test is the host up.test. */
	assert_true(uptls_tag(up, "up.test") == uptls_tag(name, "10.0.0.1"));
	assert_true(uptls_tag(up, "up.test") != uptls_tag(up, "up2.test"));
	assert_true(uptls_tag(up, "up.test") != uptls_tag(other, "up.test"));
	assert_true(uptls_tag(up, "up.test") != uptls_tag(cl, "up.test"));
	assert_true(uptls_tag(nov, "x") != uptls_tag(up, "wrong.test"));
	/* A plain backend has no TLS. */
	assert_null(uptls_ctx_backend(ctx, &plain));
}

/* config.c's check of a trust store is what the worker does with it. */
static void
test_ca_check(void **state)
{
	struct config_blob b;
	char err[256];

	(void)state;
	b = (struct config_blob){ (unsigned char *)ca.cert, strlen(ca.cert) };
	assert_int_equal(uptls_ca_check(&b, err, sizeof(err)), 0);
	b = (struct config_blob){ (unsigned char *)"garbage\n", 8 };
	assert_int_equal(uptls_ca_check(&b, err, sizeof(err)), -1);
	assert_string_equal(err, "no certificate in it");
	b = (struct config_blob){ (unsigned char *)leaf.key, strlen(leaf.key) };
	assert_int_equal(uptls_ca_check(&b, err, sizeof(err)), -1);
	b = (struct config_blob){ (unsigned char *)"-----BEGIN CERTIFICATE-----"
	    "\nnot base64!\n-----END CERTIFICATE-----\n", 66 };
	assert_int_equal(uptls_ca_check(&b, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
}

/* ---- pooled TLS connections ------------------------------------------- */

struct pooled {
	struct ev_loop		*loop;
	struct upstream_pool	*p;
	struct pair		 pr;
};

/* A connection that served a request, given to the pool. */
static void
pool_one(struct pooled *pl)
{
	pl->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(pl->loop);
	assert_non_null(pl->p = upstream_pool_new(pl->loop));
	handshake(&pl->pr, B_UP, &leaf, false);
	assert_int_equal(pl->pr.client_rc, 1);
	exchange(&pl->pr);
	upstream_put(pl->p, (struct sockaddr *)&addr, sizeof(addr),
	    pl->pr.tag, pl->pr.cfd, pl->pr.c, 4, 60);
	assert_int_equal(upstream_pool_size(pl->p), 1);
}

/* Take it back: its descriptor, or -1. */
static int
pool_take(struct pooled *pl, uint64_t tag)
{
	struct uptls_conn *tls = NULL;
	int fd;

	fd = upstream_take(pl->p, (struct sockaddr *)&addr, sizeof(addr), tag,
	    4, &tls);
	assert_true((fd == -1) == (tls == NULL));
	if (fd != -1)
		assert_ptr_equal(tls, pl->pr.c);
	return fd;
}

static void
pool_end(struct pooled *pl, bool taken)
{
	if (!taken) {
		/* The pool closed (or holds) it: not ours to free. */
		pl->pr.c = NULL;
		pl->pr.cfd = -1;
	}
	upstream_pool_free(pl->p);
	ev_loop_destroy(pl->loop);
	pair_close(&pl->pr);
}

static bool
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/*
 * The pool has closed the connection on fd: its watcher, in a loop
 * iteration (watcher), or the take that found something in it.
 */
static void
expect_closed(struct pooled *pl, int fd, bool watcher)
{
	if (watcher) {
		ev_run(pl->loop, EVRUN_NOWAIT);
		assert_int_equal(upstream_pool_size(pl->p), 0);
	} else
		assert_int_equal(pool_take(pl, pl->pr.tag), -1);
	assert_false(is_open(fd));
	pool_end(pl, false);
}

/*
 * A TLS 1.3 server sends session tickets whenever it likes: one that
 * comes while the connection is pooled is taken in (the pool's watcher
 * reads it), and the connection stays and serves the next request.  Its
 * session is the one the cache keeps.
 */
static void
test_pool_keeps_after_ticket(void **state)
{
	struct pooled pl;
	char buf[16];
	int fd;

	(void)state;
	pool_one(&pl);
	assert_int_equal(gnutls_session_ticket_send(pl.pr.srv, 1, 0), 0);
	ev_run(pl.loop, EVRUN_NOWAIT);
	assert_int_equal(upstream_pool_size(pl.p), 1);
	/* Another ticket the watcher has not seen yet: taken in on take. */
	assert_int_equal(gnutls_session_ticket_send(pl.pr.srv, 1, 0), 0);
	fd = pool_take(&pl, pl.pr.tag);
	assert_int_equal(fd, pl.pr.cfd);
	assert_false(uptls_pending(pl.pr.c));
	exchange(&pl.pr);
	/* No byte was lost or made up: the stream goes on. */
	server_send(&pl.pr, "more");
	assert_int_equal(client_read(&pl.pr, buf, sizeof(buf)), 4);
	pool_end(&pl, true);
}

/* Application data while idle: closed, by the watcher or on take. */
static void
test_pool_drops_data(void **state)
{
	struct pooled pl;
	int fd;

	(void)state;
	pool_one(&pl);
	fd = pl.pr.cfd;
	server_send(&pl.pr, "HTTP/1.1 200 OK\r\n");
	expect_closed(&pl, fd, true);
	/* Given back and taken within one loop iteration. */
	pool_one(&pl);
	fd = pl.pr.cfd;
	server_send(&pl.pr, "x");
	expect_closed(&pl, fd, false);
}

/* The upstream's close_notify, or a bare EOF, while idle. */
static void
test_pool_drops_eof(void **state)
{
	struct pooled pl;
	int fd;

	(void)state;
	pool_one(&pl);
	fd = pl.pr.cfd;
	assert_int_equal(gnutls_bye(pl.pr.srv, GNUTLS_SHUT_WR), 0);
	expect_closed(&pl, fd, true);
	pool_one(&pl);
	fd = pl.pr.cfd;
	shutdown(pl.pr.sfd, SHUT_WR);
	expect_closed(&pl, fd, false);
}

/*
 * Half a record: the watcher waits for the rest (it may be a ticket),
 * but a connection about to be used must hold nothing, not even that.
 */
static void
test_pool_partial_record(void **state)
{
	static const unsigned char half[] = { 0x17, 0x03, 0x03, 0x00, 0x40,
	    1, 2, 3 };
	struct pooled pl;
	int fd;

	(void)state;
	pool_one(&pl);
	fd = pl.pr.cfd;
	assert_int_equal(write(pl.pr.sfd, half, sizeof(half)),
	    (ssize_t)sizeof(half));
	ev_run(pl.loop, EVRUN_NOWAIT);
	assert_int_equal(upstream_pool_size(pl.p), 1);
	expect_closed(&pl, fd, false);
}

/* A connection is taken only under its tag; plain ones have tag 0. */
static void
test_pool_tags(void **state)
{
	struct pooled pl;

	(void)state;
	pool_one(&pl);
	assert_int_equal(pool_take(&pl, 0), -1);
	assert_int_equal(pool_take(&pl, pl.pr.tag + 1), -1);
	assert_int_equal(upstream_pool_size(pl.p), 1);
	assert_int_equal(pool_take(&pl, pl.pr.tag), pl.pr.cfd);
	pool_end(&pl, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verify, cache_setup,
		    cache_teardown),
		cmocka_unit_test_setup_teardown(test_ip_address, cache_setup,
		    cache_teardown),
		cmocka_unit_test_setup_teardown(test_client_certificate,
		    cache_setup, cache_teardown),
		cmocka_unit_test_setup_teardown(test_resumption, cache_setup,
		    cache_teardown),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_backend_copy),
		cmocka_unit_test(test_ca_check),
		cmocka_unit_test_setup_teardown(test_pool_keeps_after_ticket,
		    cache_setup, cache_teardown),
		cmocka_unit_test_setup_teardown(test_pool_drops_data,
		    cache_setup, cache_teardown),
		cmocka_unit_test_setup_teardown(test_pool_drops_eof,
		    cache_setup, cache_teardown),
		cmocka_unit_test_setup_teardown(test_pool_partial_record,
		    cache_setup, cache_teardown),
		cmocka_unit_test_setup_teardown(test_pool_tags, cache_setup,
		    cache_teardown),
	};
	int rc;

	rc = cmocka_run_group_tests(tests, setup, teardown);
	gnutls_free(ticket_key.data);
	return rc;
}
